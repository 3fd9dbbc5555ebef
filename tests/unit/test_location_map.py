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

"""The location map: multistore_prefix/location_map.py."""

import logging

from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from oslo_config import cfg
import pytest

from multistore_prefix import exceptions
from multistore_prefix import location_map as lmap
from multistore_prefix import urls

FILE_STORES = """
    [DEFAULT]
    enabled_backends = fast:file, slow:file, deep:file, multi:file
    [fast]
    filesystem_store_datadir = /var/lib/glance/images
    [slow]
    filesystem_store_datadir = /var/lib/glance/images2/
    [deep]
    filesystem_store_datadir = /var/lib/glance/images/deep
    [multi]
    filesystem_store_datadirs = /srv/a:100
    filesystem_store_datadirs = /srv/b
"""


@pytest.fixture
def file_map(make_conf):
    return lmap.LocationMap.from_config(make_conf(FILE_STORES))


def glance_first_match(location_map, url):
    """Glance's store_utils rule: the first url_prefix that url starts with."""
    for store_id, entry in location_map.stores.items():
        for prefix in entry.prefixes:
            if url.startswith(str(prefix)):
                return store_id
    return None


@pytest.mark.parametrize('url, store', [
    ('file:///var/lib/glance/images/0a1b', 'fast'),
    ('file:///var/lib/glance/images2/0a1b', 'slow'),
    ('file:///var/lib/glance/images/deep/0a1b', 'deep'),
    ('file:///var/lib/glance/images/deeper/0a1b', 'fast'),
    ('file:///var/lib/glance/images/../images2/0a1b', 'slow'),
    ('file:///srv/a/x', 'multi'),
    ('file:///srv/b/x', 'multi'),
    ('filesystem:///srv/b/x', 'multi'),
    ('FILE://LOCALHOST/srv/b/x', 'multi'),
    ('file:///var/lib/glance//images/./x/', 'fast'),
    ('file:///var/lib/glance/%69mages/x', 'fast'),
    ('file:///var/lib/glance/images', 'fast'),
    # Not on a component boundary, outside every root, or bad.
    ('file:///var/lib/glance/imagesX/x', None),
    ('file:///var/lib/glance/images/../../../etc/passwd', None),
    ('file:///var/lib/glance/images%2Fx', None),
    ('file:///../var/lib/glance/images/x', None),
    ('file:///srv/ab/x', None),
    ('http://example.com/x', None),
    ('', None),
    ('not a url', None),
])
def test_resolve(file_map, url, store):
    assert file_map.resolve(url) == store
    assert file_map.explain(url).store == store


def test_glance_first_match_gets_overlapping_dirs_wrong(file_map):
    url = 'file:///var/lib/glance/images2/0a1b'
    assert glance_first_match(file_map, url) == 'fast'
    assert file_map.resolve(url) == 'slow'


def test_entries_carry_glance_fields(file_map):
    entry = file_map.stores['fast']
    assert entry.store_entry == 'file'
    assert entry['store_entry'] == 'file'
    assert entry.location_class.__name__ == 'StoreLocation'
    assert entry.location_class.__module__ == (
        'glance_store._drivers.filesystem')
    assert [str(p) for p in entry.prefixes] == [
        'file:///var/lib/glance/images']
    assert entry.store.store_id == 'fast'
    assert [str(p) for p in file_map.stores['multi'].prefixes] == [
        'file:///srv/a', 'file:///srv/b']


@pytest.mark.parametrize('url, reason', [
    ('file:///../x', lmap.INVALID_URL),
    (None, lmap.INVALID_URL),
    ('rbd://fsid/pool/img/snap', lmap.UNKNOWN_SCHEME),
    ('file:///nowhere/x', lmap.NO_PREFIX),
])
def test_explain_gives_reasons(file_map, url, reason):
    assert file_map.explain(url).reason == reason
    assert file_map.resolve(url) is None


def test_conflicting_stores_warn_and_stay_unresolved(make_conf, caplog):
    conf = make_conf("""
        [DEFAULT]
        enabled_backends = one:file, two:file, three:file
        [one]
        filesystem_store_datadir = /data/images
        [two]
        filesystem_store_datadir = /data/images/
        [three]
        filesystem_store_datadir = /data
    """)
    with caplog.at_level(logging.WARNING):
        location_map = lmap.LocationMap.from_config(conf)
    assert [c.stores for c in location_map.conflicts] == [('one', 'two')]
    assert 'one, two' in caplog.text and '/data/images' in caplog.text
    url = 'file:///data/images/0a1b'
    assert location_map.resolve(url) is None
    why = location_map.explain(url)
    assert why.reason == lmap.CONFLICT
    assert 'one' in why.detail and 'two' in why.detail
    # The conflict is not guessed away to the shorter prefix either.
    assert location_map.resolve('file:///data/other/x') == 'three'


def test_no_backends(make_conf):
    with pytest.raises(exceptions.NoBackendsConfigured,
                       match='enabled_backends'):
        lmap.LocationMap.from_config(make_conf('[DEFAULT]\n'))


def test_unknown_store_type_names_store_and_known_types(make_conf):
    conf = make_conf("""
        [DEFAULT]
        enabled_backends = tape:tape
    """)
    with pytest.raises(exceptions.UnknownStoreType) as exc:
        lmap.LocationMap.from_config(conf)
    assert "'tape'" in str(exc.value) and 'file' in str(exc.value)


@pytest.mark.parametrize('section, message', [
    ('filesystem_store_datadir = images', '[bad]/filesystem_store_datadir'),
    ('filesystem_store_datadir = /a\nfilesystem_store_datadirs = /b',
     'set only one of them'),
    ('filesystem_store_datadirs = /b:high', 'bad priority'),
    ('filesystem_store_datadir =', '[bad]/filesystem_store_datadir'),
])
def test_bad_file_options_name_group_and_option(make_conf, section, message):
    conf = make_conf(f"[DEFAULT]\nenabled_backends = bad:file\n[bad]\n"
                     f"{section}\n")
    with pytest.raises(exceptions.StoreConfigError) as exc:
        lmap.LocationMap.from_config(conf)
    assert message in str(exc.value)


def test_from_config_tolerates_options_registered_already(make_conf):
    conf = make_conf(FILE_STORES)
    # glance registers enabled_backends with its own definition first.
    conf.register_opt(cfg.DictOpt('enabled_backends', help='glance'))
    first = lmap.LocationMap.from_config(conf)
    second = lmap.LocationMap.from_config(conf)
    assert first.resolve('file:///srv/a/x') == 'multi'
    assert second.resolve('file:///srv/a/x') == 'multi'


# -- properties -------------------------------------------------------------

SEGMENTS = st.sampled_from([
    'var', 'lib', 'glance', 'images', 'images2', 'deep', 'srv', 'a', 'b',
    '.', '..', '', '%2e%2E', '%2F', 'images%2F', '%69mages', 'IMAGES', 'x y',
    '0a1b-2c3d', '~u', '%7e', 'a@b', ':', '?q=1', '#f', '%zz', '\t',
])
SCHEMES = st.sampled_from(['file', 'FILE', 'filesystem', 'http', 'rbd',
                           'file:', 'file:/', ''])
AUTHORITIES = st.sampled_from(['', 'localhost', 'LOCALHOST', 'host',
                               'u:p@', 'u:p@localhost', '[::1]', ':80'])


@st.composite
def location_urls(draw):
    scheme = draw(SCHEMES)
    authority = draw(AUTHORITIES)
    path = '/'.join(draw(st.lists(SEGMENTS, max_size=8)))
    tail = draw(st.sampled_from(['', '/', '?dsName=x', '#frag']))
    return f'{scheme}://{authority}/{path}{tail}'


def owns(prefix_key, key):
    return key == prefix_key or key.startswith(prefix_key + '/')


@pytest.fixture(scope='module')
def module_map(tmp_path_factory):
    path = tmp_path_factory.mktemp('conf') / 'glance-api.conf'
    path.write_text(FILE_STORES.replace('\n    ', '\n'))
    conf = cfg.ConfigOpts()
    conf(['--config-file', str(path)], default_config_files=[])
    return lmap.LocationMap.from_config(conf)


@settings(max_examples=1500, deadline=None)
@given(url=st.one_of(location_urls(), st.text(max_size=80)))
@example(url='filesystem:///srv/a')  # found by hypothesis once
def test_resolution_never_raises_and_never_leaves_a_root(module_map, url):
    store = module_map.resolve(url)
    # The fast path and the full path always agree.
    assert store == module_map.explain(url).store
    if store is None:
        return
    key = urls.canonicalize(url).key
    # (glance_store's file store takes both file:// and filesystem://.)
    owners = [(len(root), store_id)
              for store_id, entry in module_map.stores.items()
              for root in (urls.canonicalize(f'{scheme}://{p.path}').key
                           for p in entry.prefixes
                           for scheme in ('file', 'filesystem'))
              if owns(root, key)]
    # Inside one of its roots, and that root is the longest that owns it.
    assert owners and max(owners)[1] == store


@settings(max_examples=300, deadline=None)
@given(dirs=st.lists(st.lists(st.sampled_from(['a', 'b', 'ab', 'a2', 'c']),
                              min_size=1, max_size=4),
                     min_size=1, max_size=6, unique_by=tuple),
       probe=st.lists(st.sampled_from(['a', 'b', 'ab', 'a2', 'c', 'z']),
                      min_size=1, max_size=6))
def test_longest_owning_prefix_wins(tmp_path_factory, dirs, probe):
    lines = ['[DEFAULT]', 'enabled_backends = ' + ', '.join(
        f's{i}:file' for i in range(len(dirs)))]
    for i, parts in enumerate(dirs):
        lines += [f'[s{i}]', 'filesystem_store_datadir = /' + '/'.join(parts)]
    path = tmp_path_factory.mktemp('conf') / 'glance-api.conf'
    path.write_text('\n'.join(lines))
    conf = cfg.ConfigOpts()
    conf(['--config-file', str(path)], default_config_files=[])
    location_map = lmap.LocationMap.from_config(conf)
    url = 'file:///' + '/'.join(probe)
    owners = [(len(parts), f's{i}') for i, parts in enumerate(dirs)
              if probe[:len(parts)] == parts]
    expected = max(owners)[1] if owners else None
    assert location_map.resolve(url) == expected
