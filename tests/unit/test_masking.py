#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Credentials out of what is printed: multistore_prefix/masking.py."""

import pytest

from multistore_prefix import masking
from multistore_prefix import urls


SIG = 'fe0a9c1b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90'
ACCESS = 'AKIAIOSFODNN7EXAMPLE'
TOKEN = 'IQoJb3JpZ2luX2VjEJr-session-token'


@pytest.mark.parametrize('url, masked', [
    # S3 signature v4, pre-signed
    (f'https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256'
     f'&X-Amz-Credential={ACCESS}%2F20250101%2Fus-east-1%2Fs3%2Faws4_request'
     f'&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600'
     f'&X-Amz-Security-Token={TOKEN}&X-Amz-SignedHeaders=host'
     f'&X-Amz-Signature={SIG}',
     'https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256'
     '&X-Amz-Credential=***&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600'
     '&X-Amz-Security-Token=***&X-Amz-SignedHeaders=host'
     '&X-Amz-Signature=***'),
    # S3 signature v2, pre-signed
    (f's3+https://s3.example.com/b/o?AWSAccessKeyId={ACCESS}&Expires=1'
     f'&Signature={SIG}%3D',
     's3+https://s3.example.com/b/o?AWSAccessKeyId=***&Expires=1'
     '&Signature=***'),
    # swift tempurl, GCS, Azure SAS, OAuth-style tokens, libpq password
    (f'https://swift/v1/AUTH_x/c/o?temp_url_sig={SIG}&temp_url_expires=9',
     'https://swift/v1/AUTH_x/c/o?temp_url_sig=***&temp_url_expires=9'),
    (f'https://storage.googleapis.com/b/o?X-Goog-Credential={ACCESS}'
     f'&X-Goog-Signature={SIG}',
     'https://storage.googleapis.com/b/o?X-Goog-Credential=***'
     '&X-Goog-Signature=***'),
    (f'https://a.blob.core.windows.net/c/o?sv=2022-11-02&se=x&sig={SIG}',
     'https://a.blob.core.windows.net/c/o?sv=2022-11-02&se=x&sig=***'),
    (f'https://h/p?access_token={TOKEN}&x=1#id_token={TOKEN}',
     'https://h/p?access_token=***&x=1#id_token=***'),
    (f'postgresql://h/db?password={SIG}&sslmode=require',
     'postgresql://h/db?password=***&sslmode=require'),
    (f'file:///var/lib/glance/x?X%2DAmz%2DSignature={SIG}',
     'file:///var/lib/glance/x?X%2DAmz%2DSignature=***'),
    # not credentials: left alone
    ('vsphere://vc/folder/g/id?dcPath=dc1&dsName=ds1',
     'vsphere://vc/folder/g/id?dcPath=dc1&dsName=ds1'),
    ('https://h/p?signature&sig=&keys', 'https://h/p?signature&sig=&keys'),
    # credentials and a signature at once
    (f'swift+https://user:k?y@auth/c/o?temp_url_sig={SIG}',
     'swift+https://***@auth/c/o?temp_url_sig=***'),
    # a key with white space; a password with a raw '@'
    ('s3://access:se cret@host/bucket/x', 's3://***@host/bucket/x'),
    ('mysql+pymysql://root:Pa55@w0rd-tail@db.example.com/glance',
     'mysql+pymysql://root:***@db.example.com/glance'),
])
def test_mask_url_masks_every_credential(url, masked):
    assert masking.mask_url(url) == masked
    assert masking.mask_text(f'saw {url} twice: {url}.') == (
        f'saw {masked} twice: {masked}.')


@pytest.mark.parametrize('text, secrets', [
    ('bad location s3://access:se cret@host/bucket/x: no store',
     ('se cret', 'cret@', 'access')),
    ("cannot parse 's3://AKIA:a b/c d@host/bucket/x' (row 7)",
     ('a b/c', 'c d@', 'AKIA')),
    ('swift+https://svc:glance:my key with spaces@auth.example.com/v3/c/o'
     ' and file:///var/lib/glance/x',
     ('my key', 'spaces', 'glance:')),
    # SQLAlchemy reads a raw '@' in a password as part of the host, and a
    # driver then names that host.
    ("Can't connect to MySQL server on 'w0rd-tail@127.0.0.1' ([Errno -2])",
     ('w0rd-tail',)),
    ('could not translate host name "w0rd-tail@db" to address',
     ('w0rd-tail',)),
])
def test_mask_text_masks_keys_with_white_space(text, secrets):
    masked = masking.mask_text(text)
    for secret in secrets:
        assert secret not in masked, masked
    assert '***@' in masked


def test_mask_text_keeps_the_rest_of_the_line():
    text = ('2 urls: s3://a:b c@h/x/y and http://h2/p?sig=zz, '
            'then file:///var/x')
    assert masking.mask_text(text) == (
        '2 urls: s3://***@h/x/y and http://h2/p?sig=***, then file:///var/x')
    assert masking.mask_text('plain text, no URL') == 'plain text, no URL'
    assert masking.mask_text('one\nhttp://h:8080/p\nmail a@b') == (
        'one\nhttp://h:8080/p\nmail a@b')


@pytest.mark.parametrize('url', [
    'mysql+pymysql://glance:***@db.example.com/glance',
    'postgresql+psycopg2://postgres:***@127.0.0.1:5432/glance',
])
def test_a_masked_database_url_reads_the_same_everywhere(url):
    # Database.safe_url shows user:***@; a log line or an error that
    # quotes it is masked again on its way out, and must not change it.
    assert masking.mask_url(url) == url
    line = f'database {url}: connection failed while reading (retry 1 of 3)'
    assert masking.mask_text(line) == line


def test_a_driver_message_loses_the_password_alone():
    # MySQL names the user and the host after the URL: neither is a
    # secret, and the operator needs both (and the code) to fix it.
    text = ('cannot reach the database mysql+pymysql://root:***@127.0.0.1/'
            'glance: (1045, "Access denied for user \'root\'@\'127.0.0.1\' '
            '(using password: YES)"); check [database]/connection')
    assert masking.mask_text(text) == text


def test_invalid_url_message_masks_signatures():
    with pytest.raises(urls.InvalidURL) as exc:
        urls.canonicalize(f'http://bad host/x?X-Amz-Signature={SIG}')
    assert SIG not in str(exc.value)
    assert 'X-Amz-Signature=***' in str(exc.value)


@pytest.mark.parametrize('url, masked', [
    ('swift+https://user:key@auth/c/o', 'swift+https://***@auth/c/o'),
    ('s3://a:s@cr@et@h/b/o', 's3://***@h/b/o'),
    ('file:///var/x@y', 'file:///var/x@y'),
    ('user:pw@host/path', '***@host/path'),
    ('http://h/p?u=a@b', 'http://h/p?u=a@b'),
])
def test_mask_url(url, masked):
    assert masking.mask_url(url) == masked


def test_mask_url_never_raises():
    assert masking.mask_url(None) == 'None'
    assert masking.mask_url(b'x') == "b'x'"
