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

"""Canonical URLs: multistore_prefix/urls.py."""

import pytest

from multistore_prefix import urls


@pytest.mark.parametrize('url, key', [
    ('FILE:///var/lib/glance/images/x', 'file:///var/lib/glance/images/x'),
    ('file://localhost/var/x', 'file:///var/x'),
    ('HTTP://Example.COM:80/a', 'http://example.com/a'),
    ('https://example.com:443/a', 'https://example.com/a'),
    ('https://example.com:80/a', 'https://example.com:80/a'),
    ('http://example.com:0080/a', 'http://example.com/a'),
    ('swift+https://auth.example.com:443/v3/c/o',
     'swift+https://auth.example.com/v3/c/o'),
    ('vsphere://[FE80::1]:443/folder/x', 'vsphere://[fe80::1]/folder/x'),
    ('http://[::1]:8080/a', 'http://[::1]:8080/a'),
    ('file:///var/%7Euser/%2fx', 'file:///var/~user/%2Fx'),
    ('file:///var/lib/./glance//images/', 'file:///var/lib/glance/images'),
    ('file:///var/lib/glance/images/../images2/x',
     'file:///var/lib/glance/images2/x'),
    ('file:///var/lib/%2E%2E/x', 'file:///var/x'),
    ('s3://access:secret@s3.example.com/bucket/obj',
     's3://s3.example.com/bucket/obj'),
    ('swift+config://Ref1/glance/obj', 'swift+config://ref1/glance/obj'),
    ('rbd://FSID/pool/image/snap', 'rbd://fsid/pool/image/snap'),
    ('cinder://volume-id', 'cinder://volume-id'),
    ('http://h/a?x=1#frag', 'http://h/a'),
])
def test_canonical_key(url, key):
    assert urls.canonicalize(url).key == key


def test_percent_encoded_slash_is_data_not_a_separator():
    canon = urls.canonicalize('file:///var/lib/glance/images%2Fx')
    assert canon.segments == ['var', 'lib', 'glance', 'images%2Fx']


def test_credentials_are_noted_and_dropped():
    canon = urls.canonicalize('swift+https://user:key@auth.example.com/c/o')
    assert canon.has_credentials
    assert 'key' not in canon.key
    plain = urls.canonicalize('swift+https://auth.example.com/c')
    assert not plain.has_credentials


def test_query_is_kept_apart():
    canon = urls.canonicalize(
        'vsphere://vc/folder/openstack_glance/id'
        '?dcPath=dc1&dsName=ds1&dsName=x')
    assert canon.key == 'vsphere://vc/folder/openstack_glance/id'
    assert canon.query_params() == {'dcPath': 'dc1', 'dsName': 'ds1'}


@pytest.mark.parametrize('url, reason', [
    ('file:///../etc/passwd', 'climbs above its root'),
    ('file:///var/../../etc', 'climbs above its root'),
    ('no-scheme/path', 'no scheme'),
    ('://x', 'no scheme'),
    ('1http://x', 'bad scheme'),
    ('http://h:port/x', 'bad port'),
    ('http://[::1/x', 'unterminated IPv6'),
    ('http://fe80::1/x', 'without brackets'),
    ('http://h/%zz', 'malformed percent'),
    ('http://h/%4', 'malformed percent'),
    ('http://bad host/x', 'white space'),
])
def test_invalid_urls_say_why(url, reason):
    with pytest.raises(urls.InvalidURL) as exc:
        urls.canonicalize(url)
    assert reason in str(exc.value)


def test_invalid_url_message_masks_credentials():
    with pytest.raises(urls.InvalidURL) as exc:
        urls.canonicalize('s3://AKIA:sekrit@h:bad/bucket')
    assert 'sekrit' not in str(exc.value)
    assert 'AKIA' not in str(exc.value)


def test_not_a_string():
    with pytest.raises(urls.InvalidURL, match='not a string'):
        urls.canonicalize(None)


@pytest.mark.parametrize('url, expected', [
    ('s3://key:secret@host/bucket/o', 's3://host/bucket/o'),
    # A secret may hold '/'; the last '@' before the query ends it.
    ('s3+https://key:se/cr@et@host:9000/b/o?X-Amz-Signature=x#f',
     's3+https://host:9000/b/o'),
    ('s3+http://k:s@h/b/o', 's3+http://h/b/o'),
    # No credentials, an '@' in the query only, another scheme: none.
    ('s3://host/bucket/o', None),
    ('s3://host/b/o?a=b@c', None),
    ('swift://user:key@host/c/o', None),
    ('S3://k:s@h/b/o', None),
    (b's3://k:s@h/b/o', None),
])
def test_s3_without_credentials_is_glances_rewrite(url, expected):
    assert urls.s3_without_credentials(url) == expected
