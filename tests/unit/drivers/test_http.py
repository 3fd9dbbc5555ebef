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

"""HTTP stores: multistore_prefix/drivers/http.py."""

import logging

from glance_store._drivers import http
import pytest

from multistore_prefix import location_map as lmap

STORES = """
    [DEFAULT]
    enabled_backends = web:http, fast:file
    [fast]
    filesystem_store_datadir = /var/lib/glance/images
"""


def test_claims_any_http_authority(build_map, claims):
    the_map = build_map(STORES)
    assert claims(the_map, 'web') == ['http://*']
    assert the_map.stores['web'].location_class is http.StoreLocation
    assert set(the_map.stores['web'].store.schemes) == {'http', 'https'}


@pytest.mark.parametrize('url', [
    'http://images.example.com/cirros.img',
    'https://images.example.com/cirros.img',
    'HTTPS://Images.Example.COM:443/cirros.img',
    'http://[2001:db8::1]:8080/a/b.qcow2?sig=x',
    'https://user:pass@images.example.com/private.img',
    'http://images.example.com',
])
def test_owns_http_and_https_urls(build_map, url):
    assert build_map(STORES).resolve(url) == 'web'


@pytest.mark.parametrize('url, store, reason', [
    ('file:///var/lib/glance/images/x', 'fast', None),
    ('s3://s3.example.com/bucket/x', None, lmap.UNKNOWN_SCHEME),
    ('http://[::1/x', None, lmap.INVALID_URL),
])
def test_leaves_other_schemes_alone(build_map, url, store, reason):
    resolution = build_map(STORES).explain(url)
    assert (resolution.store, resolution.reason) == (store, reason)


def test_two_http_stores_conflict(build_map, caplog):
    with caplog.at_level(logging.WARNING):
        the_map = build_map("""
            [DEFAULT]
            enabled_backends = web:http, mirror:http
        """)
    assert [c.stores for c in the_map.conflicts] == [('mirror', 'web')]
    assert 'mirror, web' in caplog.text
    url = 'https://images.example.com/x'
    assert the_map.resolve(url) is None
    assert the_map.explain(url).reason == lmap.CONFLICT


def test_credentials_are_not_repeated(build_map, caplog):
    url = 'https://user:s3kr1t@[::1/private.img'
    with caplog.at_level(logging.DEBUG):
        the_map = build_map(STORES)
        resolution = the_map.explain(url)
    assert resolution.reason == lmap.INVALID_URL
    assert 's3kr1t' not in resolution.detail
    assert 's3kr1t' not in caplog.text
