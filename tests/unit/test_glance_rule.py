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

"""Glance's first-match rule, as emulated: multistore_prefix/glance_rule.py."""

from glance_store._drivers import filesystem
import pytest

from multistore_prefix import glance_rule
from multistore_prefix import location_map as lmap

CONF = """
    [DEFAULT]
    enabled_backends = fast:file, slow:file, tiered:file
    [fast]
    filesystem_store_datadir = {tmp}/images
    [slow]
    filesystem_store_datadir = {tmp}/images2
    [tiered]
    filesystem_store_datadir =
    filesystem_store_datadirs = {tmp}/tier/a:100
    filesystem_store_datadirs = {tmp}/tier/b:200
"""


@pytest.fixture
def conf(make_conf, tmp_path):
    for d in ('images', 'images2', 'tier/a', 'tier/b'):
        (tmp_path / d).mkdir(parents=True)
    return make_conf(CONF.format(tmp=tmp_path))


def test_url_prefixes_are_glance_stores_own(conf):
    rule = glance_rule.GlanceFirstMatch(lmap.LocationMap.from_config(conf))
    for store_id, url_prefix in rule.by_scheme['file'].items():
        store = filesystem.Store(conf, backend=store_id)
        store.configure()
        assert url_prefix == store.url_prefix


def test_first_match_gets_what_longest_prefix_gets_right(conf, tmp_path):
    location_map = lmap.LocationMap.from_config(conf)
    rule = glance_rule.GlanceFirstMatch(location_map)
    cases = {f'file://{tmp_path}/images2/x': ('fast', 'slow'),
             f'file://{tmp_path}/tier/a/x': (None, 'tiered'),
             f'file://{tmp_path}/tier/b/x': ('tiered', 'tiered'),
             f'file://{tmp_path}/images/x': ('fast', 'fast')}
    for url, (glance, ours) in cases.items():
        got = (rule.resolve(url), location_map.resolve(url))
        assert got == (glance, ours), url
    assert rule.resolve('rbd://fsid/pool/x') is None
