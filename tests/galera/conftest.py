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

"""The Galera cluster fixture: three local nodes, fresh for the session.

A cluster that cannot start (no mariadb-server or galera-4, a port taken)
skips these tests, unless ``MSP_TEST_REQUIRE_GALERA=1`` (CI, through
``tools/galera-tests``), where it fails them.
"""

import os

import pytest

from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import migration
from tests.galera import cluster as cluster_mod


@pytest.fixture(scope='session')
def galera():
    """A running three-node :class:`~tests.galera.cluster.Cluster`."""
    cluster = cluster_mod.Cluster(3)
    try:
        cluster.start()
    except cluster_mod.ClusterError as exc:
        message = f'no Galera test cluster: {exc}'
    else:
        message = None
    if message is not None:
        if os.environ.get('MSP_TEST_REQUIRE_GALERA') == '1':
            pytest.fail(message + '\n(MSP_TEST_REQUIRE_GALERA=1)',
                        pytrace=False)
        pytest.skip(message)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def galera_database(galera):
    """A new database with the project's schema; its name.

    ``galera.nodes[k].url(name)`` reaches it on node k + 1.
    """
    name = galera.create_database()
    database = db_engine.Database(galera.nodes[0].url(name))
    try:
        migration.sync(database)
    finally:
        database.dispose()
    galera.sync()
    return name
