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


"""Batch compare-and-swap writes: multistore_prefix/db/batches.py."""

import datetime

import hypothesis
from hypothesis import strategies as st
import pytest
import sqlalchemy as sa

from multistore_prefix.db import batches
from multistore_prefix.db import engine as db_engine
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
    return [batches.MetadataWrite(i, images[i], old, new)
            for i in ids]


@pytest.mark.parametrize('locked', [False, True])
def test_every_row_that_holds_the_text_changes(database, monkeypatch,
                                               locked):
    # Chunks of 7: several statements, and groups across chunks.
    monkeypatch.setattr(batches, 'SERVER_CHUNK', 7)
    monkeypatch.setattr(batches, 'SQLITE_CHUNK', 7)
    ids = list(range(ROWS, 0, -1))  # any order
    writes = [w._replace(new_text=f'{{"store": "s{w.location_id % 3}"}}')
              for w in _writes(database, ids)]
    with database.writer() as conn:
        changed = batches.set_metadata(conn, writes, NOW,
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
        changed = batches.set_metadata(conn, writes, NOW)
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
        changed = batches.set_metadata(conn, writes, NOW)
    assert changed == 1
    texts = _texts(database)
    assert (texts[1], texts[2], texts[3]) == ('{"A": 1}', '{} ',
                                              '{"store": "fast"}')


def _array(literal: str) -> list[int]:
    """The ids of an ``integer[]`` parameter, sent in its text form."""
    assert literal[0] == '{' and literal[-1] == '}', literal
    return [int(n) for n in literal[1:-1].split(',')]


def _plans(database, writes, analyze):
    """EXPLAIN of each statement of the one chunk of ``writes``."""
    if analyze:
        with database.writer() as conn:
            conn.exec_driver_sql('ANALYZE image_locations')
    ((statement, params),) = batches.joined_updates(
        writes, NOW, batches.SERVER_CHUNK)
    settings, rest = (batches.JOINED_SETTINGS,
                      statement[len(batches.JOINED_SETTINGS):])
    *lock, update = rest.split('; ')
    values = list(params)
    plans = []
    with database.writer() as conn:
        conn.exec_driver_sql(settings)
        for sql in (*lock, update):
            count = sql.count('%s')
            plans.append('\n'.join(conn.exec_driver_sql(
                'EXPLAIN ' + sql, tuple(values[:count])).scalars()))
            values = values[count:]
    return params, plans


@pytest.mark.engines('postgresql')
@pytest.mark.parametrize('analyze', [False, True],
                         ids=['no-statistics', 'analyzed'])
def test_postgresql_locks_an_images_rows_sorted_by_id(database, analyze):
    # Every image has two rows here: all are locked first, in id order,
    # whatever scan the planner picks (without statistics it may read a
    # small table whole, in heap order).
    writes = _writes(database, range(ROWS, 0, -1))
    params, (lock, _update) = _plans(database, writes, analyze)
    assert _array(params[0]) == list(range(1, ROWS + 1))
    # Rows are locked in the order they come out: sorted by id, or read
    # in id order (the primary key's index, first below the lock).
    lines = [line.strip() for line in lock.splitlines()]
    at = next(n for n, line in enumerate(lines) if 'LockRows' in line)
    below = lines[at + 1:]
    first_scan = next(line for line in below if 'Scan' in line)
    assert ((below[0].startswith('->  Sort') and below[1] == 'Sort Key: l.id')
            or first_scan.startswith(
                '->  Index Scan using image_locations_pkey on '
                'image_locations l')), lock


@pytest.mark.engines('postgresql')
def test_postgresql_finds_each_row_by_the_primary_key(database):
    # In a table of some size (in one of 40 rows, reading the whole
    # "deleted" index is as cheap, and the planner may choose it).
    with database.writer() as conn:
        image = conn.execute(sa.select(_L.c.image_id)).scalars().first()
        conn.execute(_L.insert(), [
            {'id': ROWS + 1 + n, 'image_id': image,
             'value': f'file:///srv/other/{n}',
             'meta_data': '{}', 'status': 'active', 'created_at': PAST,
             'deleted': False} for n in range(5000)])
    writes = _writes(database, range(1, ROWS + 1))
    params, (_lock, plan) = _plans(database, writes, True)
    assert 'Nested Loop' in plan, plan
    assert 'Index Scan using image_locations_pkey' in plan, plan
    assert plan.index('Function Scan') < plan.index('Index Scan'), plan
    assert 'Seq Scan' not in plan and 'Bitmap' not in plan, plan
    assert _array(params[2]) == list(range(1, ROWS + 1))  # arrays' order


@pytest.mark.engines('postgresql')
def test_postgresql_locks_first_only_rows_that_share_an_image(database):
    # One row of each image in the batch: no image can meet Glance's save
    # in a cycle, and no lock statement is sent; two rows of one image
    # among them: those two are locked first.
    alone = _writes(database, range(1, ROWS + 1, 2))
    ((statement, params),) = batches.joined_updates(
        alone, NOW, batches.SERVER_CHUNK)
    assert 'FOR UPDATE' not in statement
    assert _array(params[1]) == list(range(1, ROWS + 1, 2))
    mixed = alone[:1] + _writes(database, [3, 4]) + alone[5:]
    ((statement, params),) = batches.joined_updates(
        mixed, NOW, batches.SERVER_CHUNK)
    assert 'FOR UPDATE' in statement and _array(params[0]) == [3, 4]
    with database.writer() as conn:
        assert batches.set_metadata(conn, mixed, NOW) == len(mixed)
    texts = _texts(database)
    assert all(texts[w[0]] == '{"store": "fast"}' for w in mixed)


@pytest.mark.engines('postgresql')
@hypothesis.settings(max_examples=200, deadline=None,
                     suppress_health_check=[
                         hypothesis.HealthCheck.function_scoped_fixture])
@hypothesis.given(texts=st.lists(st.none() | st.text(
    alphabet=st.characters(blacklist_characters='\x00',
                           blacklist_categories=['Cs'])), max_size=8))
def test_postgresql_arrays_carry_every_text_as_it_is(database, texts):
    # The arrays go as one string each, in PostgreSQL's array syntax:
    # quotes, backslashes, braces, commas, spaces and the word NULL come
    # back as they were (NUL is the one character text cannot hold).
    with database.reader() as conn:
        back = conn.exec_driver_sql(
            'SELECT unnest(%s::text[])',
            (batches.text_array(texts, {}),)).scalars().all()
    assert back == texts


@pytest.mark.parametrize('name, passes', [
    ('postgresql', batches.PASSES), ('mysql', 1),
    ('sqlite', 1)])
def test_postgresql_writes_a_batch_in_passes_of_every_nth_row(name, passes):
    writes = [(n, f'image-{n // 2}', '{}', '{"store": "s"}')
              for n in range(1, 1001)]
    parts = batches.transactions(name, writes)
    assert len(parts) == passes
    assert sorted(w for part in parts for w in part) == writes
    for start, part in enumerate(parts):
        assert part == writes[start::passes]


def test_a_small_batch_is_one_transaction_everywhere():
    few = [(n, 'image', '{}', '{"store": "s"}') for n in range(1, 11)]
    assert batches.transactions('postgresql', few) == [few]
    assert batches.transactions('postgresql', []) == []
