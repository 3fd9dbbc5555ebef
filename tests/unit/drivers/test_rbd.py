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

"""RBD stores: multistore_prefix/drivers/rbd.py."""

import logging

from glance_store._drivers import rbd
import pytest

from multistore_prefix.drivers import rbd as rbd_driver
from multistore_prefix import location_map as lmap

FSID = '6e4b1d2a-3c5f-4e7a-9b8c-0d1e2f3a4b5c'
OTHER_FSID = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee'
CLIENT_KEY = 'AQBsecretkeyringvalue=='

# Written the way ceph-deploy and cephadm write it: tab- and
# space-indented keys, comments, keys with spaces, other sections.
CEPH_CONF = f"""# minimal ceph.conf
[global]
\tmon host = [v2:10.0.0.1:3300/0,v1:10.0.0.1:6789/0]
  fsid = {FSID.upper()}   ; the cluster
\tauth_cluster_required = cephx

[client.glance]
\tkey = {CLIENT_KEY}
\tkeyring = /etc/ceph/ceph.client.glance.keyring
"""

CEPH_CONF_NO_FSID = """[global]
\tmon host = 10.0.0.1
[client.glance]
\tfsid = not-the-global-one
"""


def rbd_store(ceph_conf, pool='images', store='ceph'):
    return f"""
[DEFAULT]
enabled_backends = {store}:rbd
[{store}]
rbd_store_pool = {pool}
rbd_store_ceph_conf = {ceph_conf}
"""


def glance_location(fsid, pool, image='0a1b', snapshot='snap'):
    """A location as glance_store's rbd StoreLocation writes it."""
    return rbd.StoreLocation({'fsid': fsid, 'pool': pool, 'image': image,
                              'snapshot': snapshot}, None).get_uri()


def test_fsid_from_ceph_conf(build_map, claims, write, caplog):
    with caplog.at_level(logging.WARNING):
        the_map = build_map(rbd_store(write('ceph.conf', CEPH_CONF, False)))
    assert claims(the_map, 'ceph') == [f'rbd://{FSID.upper()}/images']
    assert the_map.stores['ceph'].location_class is rbd.StoreLocation
    assert caplog.text == ''


@pytest.mark.parametrize('url, store', [
    (glance_location(FSID, 'images'), 'ceph'),
    (glance_location(FSID.upper(), 'images'), 'ceph'),
    (f'RBD://{FSID}/images/0a1b/snap', 'ceph'),
    (f'rbd://{FSID}/%69mages/0a1b/snap', 'ceph'),
    (glance_location(FSID, 'images2'), None),
    (glance_location(OTHER_FSID, 'images'), None),
    ('rbd://0a1b', None),
])
def test_resolution_with_fsid(build_map, write, url, store):
    the_map = build_map(rbd_store(write('ceph.conf', CEPH_CONF, False)))
    assert the_map.resolve(url) == store


@pytest.mark.parametrize('text', [CEPH_CONF_NO_FSID, None])
def test_without_fsid_the_pool_decides(build_map, claims, write, tmp_path,
                                       caplog, text):
    path = (write('ceph.conf', text, False) if text
            else str(tmp_path / 'missing.conf'))
    with caplog.at_level(logging.WARNING):
        the_map = build_map(rbd_store(path))
    assert claims(the_map, 'ceph') == ['rbd://*/images']
    assert 'ceph' in caplog.text and path in caplog.text
    for fsid in (FSID, OTHER_FSID):
        assert the_map.resolve(glance_location(fsid, 'images')) == 'ceph'
    assert the_map.resolve(glance_location(FSID, 'images2')) is None
    assert the_map.resolve(f'rbd://{FSID}/images') == 'ceph'


def test_empty_option_reads_the_file_librados_would(build_map, claims, write,
                                                    tmp_path, monkeypatch):
    default = write('etc/ceph/ceph.conf', CEPH_CONF, False)
    monkeypatch.setattr(rbd_driver, 'DEFAULT_CEPH_CONFS',
                        (str(tmp_path / 'nothing'), default))
    monkeypatch.delenv('CEPH_CONF', raising=False)
    assert claims(build_map(rbd_store('')), 'ceph') == [
        f'rbd://{FSID.upper()}/images']

    monkeypatch.setenv('CEPH_CONF', write('env.conf', CEPH_CONF_NO_FSID))
    assert claims(build_map(rbd_store('')), 'ceph') == ['rbd://*/images']


def test_no_ceph_conf_anywhere(build_map, claims, tmp_path, monkeypatch,
                               caplog):
    monkeypatch.setattr(rbd_driver, 'DEFAULT_CEPH_CONFS',
                        (str(tmp_path / 'nothing'),))
    monkeypatch.delenv('CEPH_CONF', raising=False)
    with caplog.at_level(logging.WARNING):
        the_map = build_map(rbd_store(''))
    assert claims(the_map, 'ceph') == ['rbd://*/images']
    assert 'Store ceph' in caplog.text
    assert 'rbd_store_ceph_conf is empty' in caplog.text


@pytest.mark.parametrize('url, reason', [
    # glance_store's single-store form names neither fsid nor pool
    ('rbd://0a1b', lmap.NO_STORE_IN_URL),
    ('RBD://0A1B/', lmap.NO_STORE_IN_URL),
    ('rbd://0a1b/snap', lmap.NO_PREFIX),
    (glance_location(OTHER_FSID, 'images'), lmap.NO_PREFIX),
])
def test_legacy_image_url_says_it_names_no_store(build_map, write, url,
                                                 reason):
    the_map = build_map(rbd_store(write('ceph.conf', CEPH_CONF, False)))
    why = the_map.explain(url)
    assert (why.store, why.reason) == (None, reason)
    if reason == lmap.NO_STORE_IN_URL:
        assert 'names neither cluster fsid nor pool' in why.detail


def test_pool_and_fsid_are_quoted_like_glance_store(build_map, claims, write):
    the_map = build_map(rbd_store(write('ceph.conf', CEPH_CONF, False),
                                  pool='glance images/x'))
    assert claims(the_map, 'ceph') == [
        f'rbd://{FSID.upper()}/glance%20images%2Fx']
    assert the_map.resolve(glance_location(FSID, 'glance images/x')) == 'ceph'
    assert the_map.resolve(f'rbd://{FSID}/glance images/x/0a1b/snap') is None


def test_two_clusters_with_one_pool_name(build_map, write):
    other = write('other.conf', CEPH_CONF.replace(FSID.upper(), OTHER_FSID),
                  False)
    the_map = build_map(f"""
        [DEFAULT]
        enabled_backends = east:rbd, west:rbd, legacy:rbd
        [east]
        rbd_store_ceph_conf = {write('ceph.conf', CEPH_CONF, False)}
        [west]
        rbd_store_ceph_conf = {other}
        [legacy]
        rbd_store_ceph_conf = {write('nofsid.conf', CEPH_CONF_NO_FSID)}
        rbd_store_pool = images
    """)
    assert the_map.conflicts == []
    assert the_map.resolve(glance_location(FSID, 'images')) == 'east'
    assert the_map.resolve(glance_location(OTHER_FSID, 'images')) == 'west'
    # An fsid no store knows falls to the store that matches on the pool.
    third = '00000000-0000-4000-8000-000000000000'
    assert the_map.resolve(glance_location(third, 'images')) == 'legacy'


def test_two_stores_without_fsid_on_one_pool_conflict(build_map, write,
                                                      caplog):
    nofsid = write('nofsid.conf', CEPH_CONF_NO_FSID)
    with caplog.at_level(logging.WARNING):
        the_map = build_map(f"""
            [DEFAULT]
            enabled_backends = a:rbd, b:rbd
            [a]
            rbd_store_ceph_conf = {nofsid}
            [b]
            rbd_store_ceph_conf = /nonexistent/ceph.conf
        """)
    assert [c.stores for c in the_map.conflicts] == [('a', 'b')]
    assert 'a, b' in caplog.text
    url = glance_location(FSID, 'images')
    assert the_map.resolve(url) is None
    assert the_map.explain(url).reason == lmap.CONFLICT


def test_unparsable_lines_do_not_hide_the_fsid(build_map, claims, write):
    text = CEPH_CONF.replace('[client.glance]', 'garbage line\n[client.x]')
    the_map = build_map(rbd_store(write('ceph.conf', text, False)))
    assert claims(the_map, 'ceph') == [f'rbd://{FSID.upper()}/images']


def test_keyring_key_is_never_logged(build_map, write, caplog):
    text = CEPH_CONF.replace(f'  fsid = {FSID.upper()}', f'key {CLIENT_KEY}')
    with caplog.at_level(logging.DEBUG):
        the_map = build_map(rbd_store(write('ceph.conf', text, False)))
    assert the_map.stores['ceph'].prefixes[0].authority is None
    assert 'has no fsid' in caplog.text
    assert CLIENT_KEY not in caplog.text


def test_empty_pool_is_an_error(config_error, write):
    message = config_error(rbd_store(write('ceph.conf', CEPH_CONF, False),
                                     pool=''), 'ceph', 'rbd_store_pool')
    assert 'is not set' in message


def test_backend_defaults_apply_as_in_glance_store(build_map, claims,
                                                   tmp_path):
    the_map = build_map(f"""
        [DEFAULT]
        enabled_backends = ceph:rbd
        [backend_defaults]
        rbd_store_pool = glance-images
        [ceph]
        rbd_store_ceph_conf = {tmp_path}/missing.conf
    """)
    assert claims(the_map, 'ceph') == ['rbd://*/glance-images']
