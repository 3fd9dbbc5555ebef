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

"""Cinder stores: multistore_prefix/drivers/cinder.py."""

import logging
import sys

from glance_store._drivers.cinder import store as cinder_store
import glance_store.common
import pytest

from multistore_prefix import location_map as lmap

VOLUME = '5b1c4f9e-0d3a-4b6e-9f2c-7a8d1e3b5c60'

STORES = """
    [DEFAULT]
    enabled_backends = fast:cinder, Slow:cinder
"""


def glance_location(conf, store):
    """A location as glance_store's cinder StoreLocation writes it."""
    return cinder_store.StoreLocation({'volume_id': VOLUME}, conf,
                                      backend_group=store).get_uri()


def test_each_store_claims_its_own_id(load_conf, claims):
    conf = load_conf(STORES)
    the_map = lmap.LocationMap.from_config(conf)
    assert claims(the_map, 'fast') == ['cinder://fast']
    assert claims(the_map, 'Slow') == ['cinder://Slow']
    assert the_map.stores['fast'].location_class is cinder_store.StoreLocation
    assert glance_location(conf, 'Slow') == f'cinder://Slow/{VOLUME}'
    assert the_map.resolve(glance_location(conf, 'fast')) == 'fast'
    assert the_map.resolve(glance_location(conf, 'Slow')) == 'Slow'


@pytest.mark.parametrize('url, store, reason', [
    (f'cinder://slow/{VOLUME}', 'Slow', None),
    (f'CINDER://FAST/{VOLUME}', 'fast', None),
    (f'cinder://fast/x/../{VOLUME}', 'fast', None),
    # single-store locations name no store: only a Cinder lookup can tell
    (f'cinder://{VOLUME}', None, lmap.NO_STORE_IN_URL),
    ('cinder://not-a-volume-id', None, lmap.NO_PREFIX),
    (f'cinder://other/{VOLUME}', None, lmap.NO_PREFIX),
])
def test_resolution(build_map, url, store, reason):
    resolution = build_map(STORES).explain(url)
    assert (resolution.store, resolution.reason) == (store, reason)


def test_legacy_url_reason_says_what_is_missing(build_map):
    why = build_map(STORES).explain(f'cinder://{VOLUME}')
    assert why.detail.startswith('a cinder://<volume id> location names no '
                                 'store; only Cinder can tell')
    assert '--no-backend-lookups' in why.detail


def test_store_ids_differing_in_case_conflict(build_map, caplog):
    with caplog.at_level(logging.WARNING):
        the_map = build_map("""
            [DEFAULT]
            enabled_backends = Vol:cinder, vol:cinder
        """)
    assert [c.stores for c in the_map.conflicts] == [('Vol', 'vol')]
    assert 'Vol, vol' in caplog.text
    assert the_map.explain(f'cinder://vol/{VOLUME}').reason == lmap.CONFLICT


@pytest.mark.parametrize('store_id', ['a@b', 'a%41', 'a?b'])
def test_store_id_that_cannot_be_a_host_is_an_error(config_error, store_id):
    message = config_error(f"""
        [DEFAULT]
        enabled_backends = {store_id}:cinder
    """, store_id, None)
    assert 'cinder://' in message
    assert 'enabled_backends' in message


@pytest.fixture
def without_cinderclient(monkeypatch):
    """Make cinderclient unimportable and forget glance_store's cinder."""
    forgotten = ('glance_store._drivers.cinder',
                 'glance_store.common.cinder_utils')
    before = set(sys.modules)
    for name in list(sys.modules):
        if name.startswith(forgotten):
            monkeypatch.delitem(sys.modules, name)
        elif name.split('.')[0] == 'cinderclient':
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, 'cinderclient', None)
    # "from glance_store.common import cinder_utils" reads the attribute.
    monkeypatch.delattr(glance_store.common, 'cinder_utils', raising=False)
    yield
    # What the failed import left behind goes; monkeypatch then puts the
    # original modules back.
    for name in set(sys.modules) - before:
        if name.startswith(forgotten):
            del sys.modules[name]


def test_missing_cinder_extra_leaves_prefixes_working(
        build_map, claims, without_cinderclient, caplog):
    with caplog.at_level(logging.WARNING):
        the_map = build_map(STORES)
    assert claims(the_map, 'fast') == ['cinder://fast']
    assert the_map.stores['fast'].location_class is None
    assert the_map.resolve(f'cinder://SLOW/{VOLUME}') == 'Slow'
    assert the_map.stores['fast'].store.backend_lookup() is None
    why = the_map.explain(f'cinder://{VOLUME}')
    assert (why.store, why.reason) == (None, lmap.NOT_INSTALLED)
    assert "pip install 'multistore-prefix[cinder]'" in why.detail
    assert the_map.explain('cinder://other/x').reason == lmap.NO_PREFIX
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert all('cinderclient' in w and w.endswith(
        "pip install 'multistore-prefix[cinder]'") for w in warnings)


def test_cinder_imports_again_once_installed(build_map, claims):
    # The fixture above restored the modules; nothing stays broken.
    assert claims(build_map(STORES), 'fast') == ['cinder://fast']
