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

"""The test cluster is a real Galera cluster, and oslo.db sees it as one.

A write on one node is read on the others; two transactions on two nodes
that change the same row are a certification conflict, which the loser
gets as MySQL error 1213 and oslo.db as ``DBDeadlock`` (what its retry
decorators retry).
"""

import datetime
import uuid

from oslo_db import exception as db_exc
import pytest
import sqlalchemy as sa

from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import models

_I = models.images

ER_LOCK_DEADLOCK = 1213


@pytest.fixture
def databases(galera, galera_database):
    """One oslo.db :class:`Database` per node, reads causal."""
    databases = [db_engine.Database(node.url(galera_database, causal=True))
                 for node in galera.nodes]
    yield databases
    for database in databases:
        database.dispose()


def add_image(database, name):
    image_id = str(uuid.uuid4())
    with database.writer() as conn:
        conn.execute(_I.insert().values(
            id=image_id, name=name, status='active', visibility='shared',
            min_disk=0, min_ram=0, protected=False, os_hidden=False,
            created_at=datetime.datetime(2020, 1, 2), deleted=False))
    return image_id


def name_of(database, image_id):
    with database.reader() as conn:
        return conn.execute(sa.select(_I.c.name).where(
            _I.c.id == image_id)).scalar_one()


def test_three_synced_nodes_of_one_cluster(galera):
    statuses = [node.status() for node in galera.nodes]
    assert [s['wsrep_local_state_comment'] for s in statuses] == [
        'Synced'] * 3
    assert {s['wsrep_cluster_size'] for s in statuses} == {'3'}
    assert len({s['wsrep_cluster_state_uuid'] for s in statuses}) == 1
    assert {s['wsrep_cluster_status'] for s in statuses} == {'Primary'}


def test_a_row_written_on_node_1_is_read_on_nodes_2_and_3(databases):
    image_id = add_image(databases[0], 'written on node 1')
    assert [name_of(database, image_id) for database in databases[1:]] == [
        'written on node 1'] * 2


def test_a_certification_conflict_is_a_deadlock_for_oslo_db(galera,
                                                            databases):
    """Two nodes update one row; the second to commit loses, as 1213."""
    first, second = databases[0], databases[1]
    image_id = add_image(first, 'seed')
    update = _I.update().where(_I.c.id == image_id)
    before = galera.nodes[1].conflicts()

    with pytest.raises(db_exc.DBDeadlock) as lost:
        with second.writer() as conn:
            conn.execute(update.values(name='second'))
            # Node 1 commits the same row while node 2's transaction is
            # open: node 2's is aborted, whatever it does next fails.
            with first.writer() as other:
                other.execute(update.values(name='first'))

    assert lost.value.inner_exception.orig.args[0] == ER_LOCK_DEADLOCK
    assert galera.nodes[1].conflicts() > before
    assert [name_of(database, image_id) for database in databases] == [
        'first'] * 3
