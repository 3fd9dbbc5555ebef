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

"""S3 stores: multistore_prefix/drivers/s3.py."""

import logging

from glance_store._drivers import s3
import pytest

from multistore_prefix import location_map as lmap

IMAGE = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d'
ACCESS = 'AKIAEXAMPLEACCESS'
SECRET = 'wJalrXUtnFEMIK7MDENGbPxRfiCYsecret'


def s3_store(host, bucket='glance', extra=''):
    return f"""
[DEFAULT]
enabled_backends = obj:s3
[obj]
s3_store_host = {host}
s3_store_bucket = {bucket}
s3_store_access_key = {ACCESS}
s3_store_secret_key = {SECRET}
{extra}
"""


def glance_location(conf, host, bucket='glance'):
    """A location as glance_store's s3 driver writes it (Store.add)."""
    scheme = 's3+https' if host.startswith('https://') else 's3'
    full_host = host if host.startswith(('http://', 'https://')) else (
        'http://' + host)
    return s3.StoreLocation({'scheme': scheme, 'bucket': bucket, 'key': IMAGE,
                             's3serviceurl': full_host},
                            conf, backend_group='obj').get_uri()


@pytest.mark.parametrize('host, prefix', [
    ('https://s3.example.com', 's3+https://s3.example.com/glance'),
    ('https://S3.Example.com:443/', 's3+https://s3.example.com/glance'),
    ('http://s3.example.com:8080', 's3://s3.example.com:8080/glance'),
    ('s3.example.com', 's3://s3.example.com/glance'),
    ('https://ceph.example.com/rgw/',
     's3+https://ceph.example.com/rgw/glance'),
    ('http://[2001:db8::5]:7480', 's3://[2001:db8::5]:7480/glance'),
])
def test_prefix_follows_s3_store_host(load_conf, claims, host, prefix):
    conf = load_conf(s3_store(host))
    the_map = lmap.LocationMap.from_config(conf)
    assert claims(the_map, 'obj') == [prefix]
    assert the_map.stores['obj'].location_class is s3.StoreLocation
    assert the_map.resolve(glance_location(conf, host)) == 'obj'


@pytest.mark.parametrize('url, store', [
    (f's3+https://s3.example.com/glance/{IMAGE}', 'obj'),
    (f's3+https://{ACCESS}:{SECRET}@s3.example.com/glance/{IMAGE}', 'obj'),
    (f's3://{ACCESS}:{SECRET}@S3.EXAMPLE.COM/glance/{IMAGE}', 'obj'),
    (f's3+http://s3.example.com/glance/{IMAGE}', 'obj'),
    (f's3+https://s3.example.com:443/glance/{IMAGE}', 'obj'),
    (f's3+https://s3.example.com/glance/sub/../{IMAGE}', 'obj'),
    (f's3+https://s3.example.com/glance2/{IMAGE}', None),
    (f's3+https://s3.example.com/Glance/{IMAGE}', None),
    (f's3+https://s3.other.example.com/glance/{IMAGE}', None),
])
def test_legacy_and_new_locations_resolve_alike(build_map, url, store):
    the_map = build_map(s3_store('https://s3.example.com'))
    assert the_map.resolve(url) == store


@pytest.mark.parametrize('url_format', ['auto', 'virtual', 'path'])
def test_bucket_url_format_does_not_change_locations(build_map, claims,
                                                     url_format):
    # glance_store hands the format to boto; locations keep the bucket
    # as the first path segment either way.
    the_map = build_map(s3_store(
        'https://s3.example.com',
        extra=f's3_store_bucket_url_format = {url_format}'))
    assert claims(the_map, 'obj') == ['s3+https://s3.example.com/glance']


def test_two_buckets_on_one_host(build_map):
    the_map = build_map("""
        [DEFAULT]
        enabled_backends = a:s3, b:s3
        [a]
        s3_store_host = https://s3.example.com
        s3_store_bucket = images
        [b]
        s3_store_host = s3.example.com:443
        s3_store_bucket = images2
    """)
    assert the_map.conflicts == []
    assert the_map.resolve(f's3+https://s3.example.com/images/{IMAGE}') == 'a'
    assert the_map.resolve(f's3://s3.example.com:443/images2/{IMAGE}') == 'b'
    assert the_map.resolve(f's3://s3.example.com:443/images/{IMAGE}') is None


def test_one_bucket_in_two_stores_conflicts(build_map, caplog):
    with caplog.at_level(logging.WARNING):
        the_map = build_map("""
            [DEFAULT]
            enabled_backends = a:s3, b:s3
            [a]
            s3_store_host = https://s3.example.com
            s3_store_bucket = images
            [b]
            s3_store_host = https://S3.example.com:443
            s3_store_bucket = images
        """)
    assert [c.stores for c in the_map.conflicts] == [('a', 'b')]
    assert 'a, b' in caplog.text
    url = f's3+https://s3.example.com/images/{IMAGE}'
    assert the_map.explain(url).reason == lmap.CONFLICT


@pytest.mark.parametrize('options, option, words', [
    ('s3_store_bucket = glance', 's3_store_host', 'is not set'),
    ('s3_store_host = https://s3.example.com', 's3_store_bucket',
     'is not set'),
    ('s3_store_host = https://s3.example.com\ns3_store_bucket = a/b',
     's3_store_bucket', 'not a bucket name'),
    ('s3_store_host = https://s3.example.com\ns3_store_bucket = /',
     's3_store_bucket', 'not a bucket name'),
    ('s3_store_host = ftp://s3.example.com\ns3_store_bucket = glance',
     's3_store_host', 'not an http(s) address'),
    ('s3_store_host = https://s3.example.com:abc\ns3_store_bucket = glance',
     's3_store_host', 'bad port'),
    (f's3_store_host = https://{ACCESS}:{SECRET}@s3.example.com\n'
     's3_store_bucket = glance', 's3_store_host', 'embeds credentials'),
    ('s3_store_host = https://s3.example.com\ns3_store_bucket = glance\n'
     's3_store_bucket_url_format = subdomain',
     's3_store_bucket_url_format', 'auto, virtual, path'),
])
def test_bad_options_name_the_store_and_option(config_error, options, option,
                                               words):
    message = config_error(f"""
[DEFAULT]
enabled_backends = obj:s3
[obj]
s3_store_secret_key = {SECRET}
{options}
""", 'obj', option)
    assert words in message
    assert SECRET not in message


def test_secret_key_never_reaches_output(build_map, caplog, capsys):
    urls = [f's3://{ACCESS}:{SECRET}@s3.example.com/glance/{IMAGE}',
            f's3://{ACCESS}:{SECRET}@s3.example.com:bad/glance/{IMAGE}',
            f's3://{ACCESS}:{SECRET}@elsewhere.example.com/glance/{IMAGE}']
    with caplog.at_level(logging.DEBUG):
        the_map = build_map(s3_store('https://s3.example.com'))
        explained = [the_map.explain(url) for url in urls]
    assert [r.store for r in explained] == ['obj', None, None]
    seen = ' '.join([caplog.text, *capsys.readouterr(),
                     *(r.detail for r in explained),
                     *(str(p) for p in the_map.stores['obj'].prefixes)])
    assert SECRET not in seen
    assert ACCESS not in seen


# Legacy glance s3 locations wrote the secret key raw ('%s:%s@'), and AWS
# secret keys may contain '/': glance's own parser split such URLs at '@'.
SLASHED = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCY'
SLASHED_URL = f's3://{ACCESS}:{SLASHED}@s3.example.com/glance/{IMAGE}'


def test_legacy_secret_with_a_slash_resolves(build_map):
    the_map = build_map(s3_store('s3.example.com'))
    assert the_map.resolve(SLASHED_URL) == 'obj'


def test_legacy_secret_with_a_slash_is_masked(build_map):
    the_map = build_map(s3_store('s3.example.com'))
    detail = the_map.explain(SLASHED_URL).detail
    for part in SLASHED.split('/'):
        assert part not in detail


def test_driver_never_reads_the_keys(load_conf, monkeypatch):
    conf = load_conf(s3_store('https://s3.example.com'))
    read = []
    real = type(conf).GroupAttr.__getattr__

    def spy(group, name):
        read.append(name)
        return real(group, name)

    monkeypatch.setattr(type(conf).GroupAttr, '__getattr__', spy)
    lmap.LocationMap.from_config(conf)
    assert read and 's3_store_host' in read
    assert not {'s3_store_access_key', 's3_store_secret_key'} & set(read)
