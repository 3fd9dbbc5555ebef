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

"""A store type from another package: one entry point, no change here.

The package is a real distribution on ``sys.path``: a ``*.dist-info``
directory with ``entry_points.txt`` next to its module, found by stevedore
the way an installed package is.  stevedore's entry-point cache is pointed
at a fresh directory so the new distribution is seen and nothing is written
outside tmp_path.
"""

import importlib
import sys

import pytest
from stevedore import _cache
from stevedore import extension

from multistore_prefix import drivers
from multistore_prefix import exceptions
from multistore_prefix import location_map as lmap

PLUGIN = '''
"""A tape library store, as a third-party package would ship it."""

from glance_store import driver
from glance_store import location
from oslo_config import cfg

from multistore_prefix.drivers import base


class StoreLocation(location.StoreLocation):
    def process_specs(self):
        self.library = self.specs['library']
        self.image_id = self.specs['image_id']

    def get_uri(self):
        return f'tape://{self.library}/{self.image_id}'


class Store(driver.Store):
    OPTIONS = [cfg.StrOpt('tape_library', help='The tape library.')]

    def get_schemes(self):
        return ('tape', 'tape+lto')


class TapeDriver(base.Driver):
    glance_store_entry = 'tape'

    def compute_prefixes(self):
        library = self.require('tape_library', 'set it to the library name')
        return [base.Prefix('tape', library)]
'''

ENTRY_POINTS = """
[glance_store.drivers]
tape = msp_tape:Store

[multistore_prefix.drivers]
tape = msp_tape:TapeDriver
broken = msp_broken:Driver
"""

MODULES = ('msp_tape', 'msp_broken')


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Install the msp-tape distribution for the length of one test."""
    site = tmp_path / 'site'
    dist_info = site / 'msp_tape-1.0.dist-info'
    dist_info.mkdir(parents=True)
    (dist_info / 'METADATA').write_text(
        'Metadata-Version: 2.1\nName: msp-tape\nVersion: 1.0\n')
    (dist_info / 'entry_points.txt').write_text(ENTRY_POINTS)
    (site / 'msp_tape.py').write_text(PLUGIN)
    (site / 'msp_broken.py').write_text(
        'raise ImportError("libtape is not installed")\n')
    cache = _cache.Cache(str(tmp_path / 'entry-point-cache'))
    monkeypatch.setattr(_cache, 'get_group_all', cache.get_group_all)
    monkeypatch.setattr(extension.ExtensionManager, 'ENTRY_POINT_CACHE', {})
    monkeypatch.syspath_prepend(str(site))
    yield
    for name in MODULES:
        sys.modules.pop(name, None)


STORES = """
    [DEFAULT]
    enabled_backends = lib:tape, fast:file
    [lib]
    tape_library = LTO-1
    [fast]
    filesystem_store_datadir = /var/lib/glance/images
"""


def test_without_the_package_the_type_is_unknown(build_map):
    with pytest.raises(exceptions.UnknownStoreType) as error:
        build_map(STORES)
    assert error.value.store_id == 'lib'
    assert 'tape' not in error.value.known
    assert 'file' in error.value.known
    assert "unknown store type 'tape'" in str(error.value)


def test_installed_type_resolves_end_to_end(installed, load_conf, claims):
    assert 'tape' in drivers.store_types()
    conf = load_conf(STORES)
    the_map = lmap.LocationMap.from_config(conf)
    plugin = importlib.import_module('msp_tape')

    entry = the_map.stores['lib']
    assert isinstance(entry.store, plugin.TapeDriver)
    assert entry.store_entry == 'tape'
    assert entry.location_class is plugin.StoreLocation
    assert claims(the_map, 'lib') == ['tape://LTO-1']

    written = plugin.StoreLocation({'library': 'LTO-1', 'image_id': 'x'},
                                   conf, backend_group='lib').get_uri()
    assert the_map.resolve(written) == 'lib'
    assert the_map.resolve('TAPE+LTO://lto-1/x') == 'lib'
    assert the_map.resolve('tape://LTO-2/x') is None
    assert the_map.resolve('file:///var/lib/glance/images/x') == 'fast'


def test_installed_type_checks_its_options(installed, config_error):
    message = config_error("""
        [DEFAULT]
        enabled_backends = lib:tape
    """, 'lib', 'tape_library')
    assert message == '[lib]/tape_library: is not set; set it to the ' \
                      'library name'


def test_a_plugin_that_fails_to_import_is_reported(installed, config_error):
    message = config_error("""
        [DEFAULT]
        enabled_backends = lib:broken
    """, 'lib', None)
    assert "'broken' driver (msp_broken:Driver)" in message
    assert 'libtape is not installed' in message
