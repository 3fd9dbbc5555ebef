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


"""Fixtures of the backfill tests: the stores, and a database to run on."""

from oslo_config import cfg
import pytest

from multistore_prefix.db import engine as db_engine
from multistore_prefix import location_map as lmap

STORES_CONF = """
[DEFAULT]
enabled_backends = fast:file, slow:file, multi:file
[fast]
filesystem_store_datadir = /var/lib/glance/images
[slow]
filesystem_store_datadir = /var/lib/glance/images2
[multi]
filesystem_store_datadir =
filesystem_store_datadirs = /srv/a:100
filesystem_store_datadirs = /srv/b
"""


@pytest.fixture
def location_map(tmp_path):
    """The location map of :data:`STORES_CONF`."""
    path = tmp_path / 'glance-api.conf'
    path.write_text(STORES_CONF)
    conf = cfg.ConfigOpts()
    conf(['--config-file', str(path)], default_config_files=[])
    return lmap.LocationMap.from_config(conf)


@pytest.fixture
def database(db_url):
    """A :class:`~multistore_prefix.db.engine.Database` on ``db_url``."""
    database = db_engine.Database(db_url)
    yield database
    database.dispose()
