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


"""Batch compare-and-swap writes: multistore_prefix/db/location_writes.py."""

import datetime

import pytest
import sqlalchemy as sa

from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import location_writes
from multistore_prefix.db import models

_L = models.image_locations
PAST = datetime.datetime(2020, 1, 2, 3, 4, 5)
NOW = datetime.datetime(2026, 1, 2, 3, 4, 5)
#: Locations seeded: two per image.
ROWS = 40


@pytest.fixture
def database(db_url):
    database = db_engine.Database(db_url)
    images = [f'00000000-0000-4000-8000-{n:012d}' for n in range(ROWS // 2)]
    with database.writer() as conn:
        conn.execute(models.images.insert(), [
            {'id': i, 'name': 'x', 'status': 'active', 'visibility': 'public',
             'min_disk': 0, 'min_ram': 0, 'protected': False,
             'os_hidden': False, 'created_at': PAST, 'updated_at': PAST,
             'deleted': False} for i in images])
        conn.execute(_L.insert(), [
            {'id': n + 1, 'image_id': images[n // 2],
             'value': f'file:///var/lib/glance/images/{n}', 'meta_data': '{}',
             'status': 'active', 'created_at': PAST, 'updated_at': PAST,
             'deleted': False} for n in range(ROWS)])
    yield database
    database.dispose()


def _texts(database):
    with database.reader() as conn:
        return dict(conn.execute(sa.select(_L.c.id, _L.c.meta_data)).all())


def _writes(database, ids, old='{}', new='{"store": "fast"}'):
    with database.reader() as conn:
        images = dict(conn.execute(sa.select(_L.c.id, _L.c.image_id)).all())
    return [(i, images[i], old, new) for i in ids]


@pytest.mark.parametrize('locked', [False, True])
def test_every_row_that_holds_the_text_changes(database, monkeypatch,
                                               locked):
    # Chunks of 7: several statements, and groups across chunks.
    monkeypatch.setattr(location_writes, 'SERVER_CHUNK', 7)
    monkeypatch.setattr(location_writes, 'SQLITE_CHUNK', 7)
    ids = list(range(ROWS, 0, -1))  # any order
    writes = [(i, image, old, f'{{"store": "s{i % 3}"}}')
              for i, image, old, _ in _writes(database, ids)]
    with database.writer() as conn:
        changed = location_writes.set_metadata(conn, writes, NOW,
                                               locked=locked)
    assert changed == ROWS
    assert _texts(database) == {i: f'{{"store": "s{i % 3}"}}'
                                for i in range(1, ROWS + 1)}
    with database.reader() as conn:
        stamps = set(conn.execute(sa.select(_L.c.updated_at)).scalars())
    assert stamps == {NOW}


def test_a_row_changed_meanwhile_or_dead_is_left(database):
    with database.writer() as conn:
        conn.execute(sa.update(_L).where(_L.c.id == 3)
                     .values(meta_data='{"k": 1}'))
        conn.execute(sa.update(_L).where(_L.c.id == 5)
                     .values(deleted=True))
        conn.execute(sa.update(_L).where(_L.c.id == 7)
                     .values(status='pending_delete'))
    writes = _writes(database, range(1, 11))
    with database.writer() as conn:
        changed = location_writes.set_metadata(conn, writes, NOW)
    assert changed == 7
    texts = _texts(database)
    assert [i for i in range(1, 11) if texts[i] == '{}'] == [5, 7]
    assert texts[3] == '{"k": 1}'


def test_the_text_is_compared_exactly(database):
    # A text equal but for case, or for trailing spaces, is another text
    # (MySQL's collations would call them equal).
    with database.writer() as conn:
        conn.execute(sa.update(_L).where(_L.c.id == 1)
                     .values(meta_data='{"A": 1}'))
        conn.execute(sa.update(_L).where(_L.c.id == 2)
                     .values(meta_data='{} '))
    writes = (_writes(database, [1], old='{"a": 1}')
              + _writes(database, [2, 3]))
    with database.writer() as conn:
        changed = location_writes.set_metadata(conn, writes, NOW)
    assert changed == 1
    texts = _texts(database)
    assert (texts[1], texts[2], texts[3]) == ('{"A": 1}', '{} ',
                                              '{"store": "fast"}')


def test_postgresql_locks_in_id_order_by_the_primary_key(database):
    """The plan: a nested loop over the arrays, rows found by id."""
    with database.writer() as conn:
        if conn.dialect.name != 'postgresql':
            pytest.skip('PostgreSQL only')
        conn.exec_driver_sql('ANALYZE image_locations')
    writes = _writes(database, range(1, ROWS + 1))
    ((statement, params),) = location_writes._joined_updates(writes, NOW)
    settings, update = statement.rsplit('; ', 1)
    assert update.startswith('UPDATE')
    with database.writer() as conn:
        conn.exec_driver_sql(settings)
        plan = '\n'.join(conn.exec_driver_sql('EXPLAIN ' + update, params)
                         .scalars())
    assert 'Nested Loop' in plan, plan
    assert 'Index Scan using image_locations_pkey' in plan, plan
    assert plan.index('Function Scan') < plan.index('Index Scan'), plan
    assert 'Seq Scan' not in plan and 'Bitmap' not in plan, plan
    assert params[1] == list(range(1, ROWS + 1))  # the arrays' order
