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


"""Rows that must never stop the backfill, on every engine.

Each row here once stopped a run for good (exit 1, every later location
left without a store, every rerun dying at the same row) or was silently
rewritten.  Now each is reported (image id, location id, reason) and left
exactly as it is, and every other location still gets its store.
"""

import json
import logging
import subprocess
import sys

from oslo_config import cfg
import pytest
import sqlalchemy as sa

from multistore_prefix import backfill as backfill_mod
from multistore_prefix.backfill import writing
from multistore_prefix.db import scan as db_scan
from multistore_prefix import deciding
from multistore_prefix import gateway as gateway_mod
from multistore_prefix import resolver as resolver_mod
from tests.functional.test_backfill import _L
from tests.functional.test_backfill import add_image
from tests.functional.test_backfill import legacy
from tests.functional.test_backfill import rows
from tests.functional import test_backfill_cli as cli

URL = 'file:///var/lib/glance/images2/'
DEEP = '{"a": ' + '[' * 2000 + ']' * 2000 + '}'
BIG_INT = '{"n": ' + '9' * 5000 + '}'

#: meta_data text -> (reason, a word of its detail): reported, untouched.
REPORTED = {
    DEEP: (resolver_mod.BAD_METADATA, 'nested too deep'),
    '{"a": NaN}': (resolver_mod.BAD_METADATA, 'not standard JSON'),
    '{"a": Infinity, "b": 1}': (resolver_mod.BAD_METADATA,
                                'not standard JSON'),
    '{"store": "slow", "store": "fast"}': (resolver_mod.BAD_METADATA,
                                           'twice'),
    '{"store": 123}': (resolver_mod.INVALID_STORE, 'a number'),
    '{"store": ["fast"]}': (resolver_mod.INVALID_STORE, 'a list'),
    '{"store": {}}': (resolver_mod.INVALID_STORE, 'an object'),
    '{"store": true}': (resolver_mod.INVALID_STORE, 'a boolean'),
    '{"store": ""}': (resolver_mod.INVALID_STORE, 'an empty string'),
    '{"store": null}': (resolver_mod.INVALID_STORE, 'null'),
}
#: meta_data text -> what it becomes: its store, every other byte kept.
SPLICED = {
    '{"a":1e400}': '{"a":1e400, "store": "slow"}',
    '{"a": 1, "a": 2}': '{"a": 1, "a": 2, "store": "slow"}',
    BIG_INT: BIG_INT[:-1] + ', "store": "slow"}',
    '{ "x" : [1,2] ,"y":{"store":"in"} }':
        '{ "x" : [1,2] ,"y":{"store":"in"}, "store": "slow" }',
    '{}': '{"store": "slow"}',
}


def run(database, location_map, **kwargs):
    """A finished run; its report rows stay readable (no close)."""
    job = backfill_mod.Backfill(database, location_map, **kwargs)
    return job, job.run()


def set_text(database, location_id, text):
    with database.writer() as conn:
        conn.execute(sa.update(_L).where(_L.c.id == location_id)
                     .values(meta_data=text))


def hostile_image(database):
    texts = list(REPORTED) + list(SPLICED)
    _, ids = add_image(database, [legacy(f'{URL}{n}', '{}')
                                  for n in range(len(texts))])
    for location_id, text in zip(ids, texts):
        set_text(database, location_id, text)
    return dict(zip(ids, texts))


def test_no_row_stops_the_run(database, location_map):
    texts = hostile_image(database)
    before = rows(database)
    job, report = run(database, location_map, batch_size=3,
                      record_changes=True)
    after = rows(database)
    for location_id, text in texts.items():
        if text in REPORTED:
            assert after[location_id] == before[location_id], text[:40]
            continue
        # Every other byte as it was: the store is spliced in.
        assert after[location_id]['meta_data'] == SPLICED[text], text[:40]
    listed = {row['location_id']: row for row in job.unresolved_rows}
    assert set(listed) == {i for i, t in texts.items() if t in REPORTED}
    for location_id, row in listed.items():
        reason, word = REPORTED[texts[location_id]]
        assert row['reason'] == reason and word in row['detail']
        assert row['image_id'] == before[location_id]['image_id']
    assert report.updated == len(SPLICED)
    assert report.errors == 0
    # A rerun reports the same rows and changes nothing.
    job2, report2 = run(database, location_map)
    assert rows(database) == after
    assert sum(report2.unresolved.values()) == len(REPORTED)
    assert report2.updated == 0


def test_invalid_store_values_are_replaced_only_when_asked(database,
                                                           location_map):
    texts = hostile_image(database)
    run(database, location_map, replace_invalid_stores=True)
    after = rows(database)
    for location_id, text in texts.items():
        if REPORTED.get(text, (None,))[0] == resolver_mod.INVALID_STORE:
            assert json.loads(after[location_id]['meta_data']) == {
                'store': 'slow'}


@pytest.mark.engines('sqlite')
@pytest.mark.parametrize('column', ['meta_data', 'value'])
def test_sqlite_text_that_is_not_utf8(database, location_map, column):
    _, ids = add_image(database, [legacy(f'{URL}a'), legacy(f'{URL}b'),
                                  legacy(f'{URL}c')])
    raw = database.engine.raw_connection()
    try:
        # SQLite keeps any bytes as TEXT: a row no UTF-8 decoder reads.
        raw.driver_connection.execute(
            f'UPDATE image_locations SET {column} = CAST(? AS TEXT) '
            f'WHERE id = ?', (b'{"a": "\xff\xfe"}' if column == 'meta_data'
                              else b'file:///var/lib/glance/images2/\xff',
                              ids[1]))
        raw.driver_connection.commit()
    finally:
        raw.close()
    job, report = run(database, location_map)
    assert report.updated == 2
    [row] = list(job.unresolved_rows)
    assert row['location_id'] == ids[1]
    assert 'not valid UTF-8' in row['detail']
    # The Python API reads the image too, and resolves the others.
    image = repo_on(database, location_map).get(row['image_id'])
    assert [loc['metadata'].get('store') for loc in image.locations
            if isinstance(loc['metadata'], dict)] == (
        ['slow', 'slow'] if column == 'meta_data' else
        ['slow', None, 'slow'])


def repo_on(database, location_map):
    """The Python API's repository (resolve on GET) on ``database``."""
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    gateway = gateway_mod.Gateway(conf, location_map, database=database)
    return gateway.get_repo()


#: Glance accepts meta_data up to MySQL's 65,535 bytes; adding "store" to
#: this one would not fit.
FULL = '{"pad": "' + 'x' * (65535 - 20) + '"}'


def image_with_a_full_row(database, count, full_at):
    _, ids = add_image(database, [legacy(f'{URL}{n}') for n in range(count)])
    set_text(database, ids[full_at], FULL)
    return ids


@pytest.mark.engines('mysql')
def test_mysql_metadata_at_the_column_limit(database, location_map, caplog):
    ids = image_with_a_full_row(database, 3, 1)
    full = FULL
    job, report = run(database, location_map)
    after = rows(database)
    assert after[ids[1]]['meta_data'] == full
    assert report.unresolved == {deciding.TOO_LONG: 1}
    assert report.updated == 2
    # The Python API: resolved in memory, not saved, said once.
    set_text(database, ids[0], '{}')
    with caplog.at_level(logging.WARNING):
        image = repo_on(database, location_map).get(
            after[ids[1]]['image_id'])
    assert [loc['metadata']['store'] for loc in image.locations] == [
        'slow'] * 3
    [said] = [r for r in caplog.records if deciding.TOO_LONG in r.message]
    assert 'the column holds 65535' in said.message
    assert rows(database)[ids[1]]['meta_data'] == full


@pytest.mark.engines('mysql')
def test_a_row_the_database_refuses_is_found_and_the_batch_written(
        database, location_map, monkeypatch):
    # Without knowing the column's limit, the batch UPDATE fails as a
    # whole; halving it finds the one row, and writes the others.
    monkeypatch.setattr(db_scan, 'metadata_limit', lambda conn: None)
    ids = image_with_a_full_row(database, 9, 6)
    job, report = run(database, location_map)
    after = rows(database)
    assert after[ids[6]]['meta_data'] == FULL
    assert report.unresolved == {writing.WRITE_REFUSED: 1}
    assert report.updated == 8
    [row] = list(job.unresolved_rows)
    assert row['location_id'] == ids[6] and 'too long' in row['detail']


def test_rows_too_long_for_their_batch_are_read_one_by_one(database,
                                                           location_map):
    # Past 8 KiB a row is read, decided and written alone; the batch's
    # other rows, and its bad long rows, are what they would be.
    long_key = 'k' * (db_scan.LARGE_TEXT + 10)
    long_path = 'p' * (db_scan.LARGE_TEXT + 10)
    _, ids = add_image(database, [legacy(f'{URL}a'),
                                  legacy(f'{URL}b', f'{{"{long_key}": 1}}'),
                                  legacy(f'{URL}{long_path}'),
                                  legacy(f'{URL}d', f'{{"{long_key}": NaN}}'),
                                  legacy(f'{URL}e')])
    job, report = run(database, location_map, batch_size=5)
    after = rows(database)
    stores = [json.loads(after[i]['meta_data']).get('store')
              for i in ids if i != ids[3]]
    assert stores == ['slow'] * 4
    assert json.loads(after[ids[1]]['meta_data'])[long_key] == 1
    [row] = list(job.unresolved_rows)
    assert row['location_id'] == ids[3] and row['reason'] == 'bad-metadata'
    assert (report.scanned, report.updated) == (5, 4)


# -- memory -------------------------------------------------------------------

#: Distinct 1 MB metadata rows: the run once kept one of each per batch
#: (about 1 GB for 300 of them with --batch-size 10).
BIG_ROWS = 150
BIG_TEXT = 1 << 20


@pytest.mark.engines('sqlite', 'postgresql')  # MySQL's TEXT holds 64 KiB
def test_memory_stays_flat_whatever_the_metadata_size(db_url, tmp_path):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        seeded = cli.seed(engine, [
            (cli.url_for('slow', n), json.dumps(
                {'blob': f'{n:06d}' + 'x' * BIG_TEXT}))
            for n in range(BIG_ROWS)])
        conf = cli.write_conf(tmp_path, db_url)
        # A wrapper whose only child is the run: its children's peak RSS
        # is the run's.
        measure = ('import resource, subprocess, sys; '
                   'done = subprocess.run(sys.argv[1:], '
                   'stdout=subprocess.DEVNULL); '
                   'print(done.returncode, resource.getrusage('
                   'resource.RUSAGE_CHILDREN).ru_maxrss)')
        result = subprocess.run(
            [sys.executable, '-c', measure,
             *cli.backfill_argv(conf, '--batch-size', '10', '--quiet')],
            capture_output=True, text=True, timeout=600)
        returncode, peak_kib = map(int, result.stdout.split())
        assert returncode == 0, result.stderr
        # About what any run takes (the interpreter, the drivers, a few
        # rows in flight), far from one row per batch slot.
        assert peak_kib < 250 * 1024, f'peak RSS {peak_kib // 1024} MiB'
        after = cli.table_rows(engine, _L)
        assert all(json.loads(after[i]['meta_data'])['store'] == 'slow'
                   for i in seeded)
    finally:
        engine.dispose()
