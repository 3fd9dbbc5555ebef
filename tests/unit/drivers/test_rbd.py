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


def test_without_fsid_the_pool_decides(build_map, claims, write, caplog):
    path = write('ceph.conf', CEPH_CONF_NO_FSID, False)
    with caplog.at_level(logging.WARNING):
        the_map = build_map(rbd_store(path))
    assert claims(the_map, 'ceph') == ['rbd://*/images']
    assert 'ceph' in caplog.text and path in caplog.text
    for fsid in (FSID, OTHER_FSID):
        assert the_map.resolve(glance_location(fsid, 'images')) == 'ceph'
    assert the_map.resolve(glance_location(FSID, 'images2')) is None
    assert the_map.resolve(f'rbd://{FSID}/images') == 'ceph'


def unusable(tmp_path, kind):
    """A ceph.conf path that cannot be used, of one kind."""
    path = tmp_path / 'ceph.conf'
    if kind == 'missing':
        return tmp_path / 'ceph.cnf'  # the typo
    if kind == 'directory':
        path.mkdir()
    elif kind == 'unreadable':
        # A symlink loop: unreadable for every user, root included.
        path.symlink_to(tmp_path / 'loop.conf')
        (tmp_path / 'loop.conf').symlink_to(path)
    elif kind == 'binary':
        path.write_bytes(b'\x89PNG\r\n\x1a\n\xff\xfe[global]')
    elif kind == 'nul':
        path.write_bytes(f'[global]\nfsid = {FSID}\n\0\0'.encode())
    elif kind == 'no-section':
        path.write_text(f'fsid = {FSID}\nmon host = 10.0.0.1\n')
    return path


@pytest.mark.parametrize('kind, what', [
    ('missing', 'does not exist'),
    ('directory', 'is a directory'),
    ('unreadable', 'cannot be read (Too many levels of symbolic links)'),
    ('binary', 'is not text (not UTF-8)'),
    ('nul', 'is not text (NUL bytes)'),
    ('no-section', 'is not a ceph.conf'),
])
def test_unusable_ceph_conf_is_a_configuration_error(config_error, tmp_path,
                                                     kind, what):
    path = unusable(tmp_path, kind)
    message = config_error(rbd_store(path), 'ceph', 'rbd_store_ceph_conf')
    assert message.startswith(f'[ceph]/rbd_store_ceph_conf: {path} {what}')
    assert message.endswith('; point rbd_store_ceph_conf at the ceph.conf '
                            'of the store\'s cluster, readable by this user')
    assert '\n' not in message


def test_unusable_default_ceph_conf_says_where_it_came_from(
        config_error, tmp_path, monkeypatch):
    monkeypatch.setenv('CEPH_CONF', str(tmp_path / 'gone.conf'))
    message = config_error(rbd_store(''), 'ceph', 'rbd_store_ceph_conf')
    assert (f'{tmp_path}/gone.conf (from $CEPH_CONF, as rbd_store_ceph_conf '
            f'is empty) does not exist') in message

    monkeypatch.delenv('CEPH_CONF')
    default = unusable(tmp_path, 'directory')
    monkeypatch.setattr(rbd_driver, 'DEFAULT_CEPH_CONFS', (str(default),))
    message = config_error(rbd_store(''), 'ceph', 'rbd_store_ceph_conf')
    assert f'{default} (where librados looks, as' in message


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


THIRD_FSID = '00000000-0000-4000-8000-000000000000'


def edge_layout(write, edge_conf, edge_pool='images'):
    """Three clusters, one pool name: east and west know their fsid."""
    west = write('west.conf', CEPH_CONF.replace(FSID.upper(), OTHER_FSID),
                 False)
    return f"""
        [DEFAULT]
        enabled_backends = east:rbd, west:rbd, edge:rbd
        [backend_defaults]
        rbd_store_pool = images
        [east]
        rbd_store_ceph_conf = {write('east.conf', CEPH_CONF, False)}
        [west]
        rbd_store_ceph_conf = {west}
        [edge]
        rbd_store_ceph_conf = {edge_conf}
        rbd_store_pool = {edge_pool}
    """


def test_edge_layout_with_a_typo_is_a_configuration_error(config_error,
                                                          write, tmp_path):
    typo = tmp_path / 'edge.cnf'
    message = config_error(edge_layout(write, typo), 'edge',
                           'rbd_store_ceph_conf')
    assert f'{typo} does not exist' in message


def test_edge_layout_without_fsid_never_guesses(build_map, write, caplog):
    nofsid = write('edge.conf', CEPH_CONF_NO_FSID)
    with caplog.at_level(logging.WARNING):
        the_map = build_map(edge_layout(write, nofsid))
    assert the_map.conflicts == []
    assert the_map.resolve(glance_location(FSID, 'images')) == 'east'
    assert the_map.resolve(glance_location(OTHER_FSID, 'images')) == 'west'
    # An fsid no store knows: the edge cluster's, or a cluster not
    # configured here.  The pool cannot tell: unresolved, not guessed.
    url = glance_location(THIRD_FSID, 'images')
    assert the_map.resolve(url) is None
    why = the_map.explain(url)
    assert why.reason == rbd_driver.MISSING_FSID == 'missing-fsid'
    assert why.detail == (
        f'store edge has no cluster fsid ({nofsid} has no fsid in [global]), '
        f"and stores east, west use pool 'images' too, so it cannot tell "
        f'whose this URL is; add "fsid = <the cluster fsid>" to [global] in '
        f'{nofsid}')
    assert the_map.explain(glance_location(THIRD_FSID, 'other')).reason == (
        lmap.NO_PREFIX)
    assert 'stores east, west use pool' in caplog.text


def test_unknown_fsid_alone_on_its_pool_takes_it(build_map, write):
    the_map = build_map(edge_layout(write, write('edge.conf',
                                                 CEPH_CONF_NO_FSID),
                                    edge_pool='edge-images'))
    assert the_map.resolve(glance_location(THIRD_FSID, 'edge-images')) == (
        'edge')
    assert the_map.resolve(glance_location(THIRD_FSID, 'images')) is None
    assert the_map.explain(glance_location(THIRD_FSID, 'images')).reason == (
        lmap.NO_PREFIX)


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
            rbd_store_ceph_conf = {write('b.conf', '[global]')}
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
                                                   write):
    the_map = build_map(f"""
        [DEFAULT]
        enabled_backends = ceph:rbd
        [backend_defaults]
        rbd_store_pool = glance-images
        [ceph]
        rbd_store_ceph_conf = {write('nofsid.conf', CEPH_CONF_NO_FSID)}
    """)
    assert claims(the_map, 'ceph') == ['rbd://*/glance-images']
