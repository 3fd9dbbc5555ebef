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

"""Filesystem stores: multistore_prefix/drivers/file.py."""

import logging
import textwrap

from glance_store._drivers import filesystem
import pytest

from multistore_prefix import location_map as lmap


def test_one_prefix_for_filesystem_store_datadir(build_map, claims):
    the_map = build_map("""
        [DEFAULT]
        enabled_backends = fast:file
        [fast]
        filesystem_store_datadir = /var/lib/glance/images/
    """)
    assert claims(the_map, 'fast') == ['file:///var/lib/glance/images']
    assert the_map.stores['fast'].location_class is filesystem.StoreLocation


@pytest.mark.parametrize('datadirs', [
    ['/srv/a:100', '/srv/b:200', '/srv/c'],
    ['/srv/a', '/srv/b', '/srv/c'],
    ['/srv/a: 100', '/srv//b/', '/srv/./c:0'],
])
def test_every_datadir_is_a_prefix_with_or_without_priority(build_map,
                                                            claims,
                                                            datadirs):
    lines = '\n'.join(f'filesystem_store_datadirs = {d}' for d in datadirs)
    the_map = build_map(f"""
[DEFAULT]
enabled_backends = multi:file
[multi]
{lines}
""")
    assert claims(the_map, 'multi') == [
        'file:///srv/a', 'file:///srv/b', 'file:///srv/c']
    for root in ('a', 'b', 'c'):
        assert the_map.resolve(f'file:///srv/{root}/0a1b') == 'multi'
    assert the_map.resolve('file:///srv/d/0a1b') is None


def test_glance_store_prefixes_only_the_best_datadir(
        tmp_path, load_conf, glance_store_conf):
    # Images live in every datadir; glance_store's url_prefix names one.
    # glance_store wants filesystem_store_datadir blanked next to
    # filesystem_store_datadirs (its default is not empty).
    for name in ('a', 'b'):
        (tmp_path / name).mkdir()
    stores = textwrap.dedent(f"""
        [DEFAULT]
        enabled_backends = multi:file
        [multi]
        filesystem_store_datadirs = {tmp_path}/a:100
        filesystem_store_datadirs = {tmp_path}/b:200
        filesystem_store_datadir =
    """)
    glance_conf = glance_store_conf(load_conf(stores, name='glance.conf'))
    store = filesystem.Store(glance_conf, backend='multi')
    store.configure()
    the_map = lmap.LocationMap.from_config(load_conf(stores))

    assert store.url_prefix == f'file://{tmp_path}/b'
    url = f'file://{tmp_path}/a/0a1b'
    assert not url.startswith(store.url_prefix)
    assert the_map.resolve(url) == 'multi'
    assert the_map.resolve(f'file://{tmp_path}/b/0a1b') == 'multi'


def test_blank_filesystem_store_datadir_with_datadirs_is_accepted(
        build_map, claims):
    the_map = build_map("""
        [DEFAULT]
        enabled_backends = multi:file
        [multi]
        filesystem_store_datadir =
        filesystem_store_datadirs = /srv/a:100
        filesystem_store_datadirs = /srv/b:200
    """)
    assert claims(the_map, 'multi') == ['file:///srv/a', 'file:///srv/b']


def glance_first_match(conf, url):
    """Glance's store_utils rule on glance_store's own url_prefix."""
    for store_id in conf.enabled_backends:
        store = filesystem.Store(conf, backend=store_id)
        store.configure()
        if store.url_prefix and url.startswith(store.url_prefix):
            return store_id
    return None


def test_overlapping_datadirs_glance_gets_wrong_and_we_get_right(
        tmp_path, load_conf, glance_store_conf):
    for name in ('images', 'images2'):
        (tmp_path / name).mkdir()
    conf = load_conf(f"""
        [DEFAULT]
        enabled_backends = one:file, two:file
        [one]
        filesystem_store_datadir = {tmp_path}/images
        [two]
        filesystem_store_datadir = {tmp_path}/images2
    """)
    the_map = lmap.LocationMap.from_config(conf)
    glance_store_conf(conf)
    url_one = f'file://{tmp_path}/images/0a1b'
    url_two = f'file://{tmp_path}/images2/0a1b'

    assert glance_first_match(conf, url_one) == 'one'
    assert glance_first_match(conf, url_two) == 'one'  # wrong
    assert the_map.resolve(url_one) == 'one'
    assert the_map.resolve(url_two) == 'two'


@pytest.mark.parametrize('url, store', [
    ('file:///var/lib/glance/images/x', 'fast'),
    ('FILE://localhost/var/lib/glance/images/x', 'fast'),
    ('filesystem:///var/lib/glance/images/x', 'fast'),
    ('file:///var/lib/glance//images/./x', 'fast'),
    ('file:///var/lib/glance/images2/x', 'slow'),
    ('file:///var/lib/glance/images/../images2/x', 'slow'),
    ('file:///var/lib/glance/images/../../../../etc/passwd', None),
    ('file:///var/lib/glance/images3/x', None),
])
def test_resolution_follows_component_boundaries(build_map, url, store):
    the_map = build_map("""
        [DEFAULT]
        enabled_backends = fast:file, slow:file
        [fast]
        filesystem_store_datadir = /var/lib/glance/images
        [slow]
        filesystem_store_datadir = /var/lib/glance/images2
    """)
    assert the_map.resolve(url) == store


def test_same_datadir_in_two_stores_is_a_conflict(build_map, caplog):
    with caplog.at_level(logging.WARNING):
        the_map = build_map("""
            [DEFAULT]
            enabled_backends = fast:file, copy:file
            [fast]
            filesystem_store_datadir = /var/lib/glance/images
            [copy]
            filesystem_store_datadirs = /var/lib/glance/images/:5
        """)
    assert [c.stores for c in the_map.conflicts] == [('copy', 'fast')]
    assert 'copy, fast' in caplog.text
    url = 'file:///var/lib/glance/images/0a1b'
    assert the_map.resolve(url) is None
    assert the_map.explain(url).reason == lmap.CONFLICT


@pytest.mark.parametrize('options, option, words', [
    ('filesystem_store_datadir = var/images', 'filesystem_store_datadir',
     'not an absolute path'),
    ('filesystem_store_datadir =', 'filesystem_store_datadir', 'empty'),
    ('filesystem_store_datadirs = /srv/a:high', 'filesystem_store_datadirs',
     'bad priority'),
    ('filesystem_store_datadirs = srv/a:1', 'filesystem_store_datadirs',
     'not an absolute path'),
    ('filesystem_store_datadir = /srv/a\nfilesystem_store_datadirs = /srv/b',
     'filesystem_store_datadir', 'filesystem_store_datadirs'),
])
def test_bad_options_name_the_store_and_option(config_error, options, option,
                                               words):
    message = config_error(f"""
[DEFAULT]
enabled_backends = fast:file
[fast]
{options}
""", 'fast', option)
    assert words in message
