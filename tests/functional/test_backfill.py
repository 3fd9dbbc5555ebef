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

"""The backfill engine (multistore_prefix/backfill.py) on all three DBs."""

import contextlib
import datetime
import json
import sqlite3
import threading
import uuid

from oslo_config import cfg
from oslo_db import exception as oslo_db_exc
import pytest
import sqlalchemy as sa

from multistore_prefix import backfill as backfill_mod
from multistore_prefix.backfill import reading
from multistore_prefix.backfill import revert as revert_mod
from multistore_prefix import crypt
from multistore_prefix.db import api as db_api
from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import models
from multistore_prefix import location_map as lmap

PAST = datetime.datetime(2020, 1, 2, 3, 4, 5)
_L = models.image_locations


def add_image(database, locations, image_id=None, deleted=False):
    """An image whose locations are (url, meta_data text, status)."""
    image_id = image_id or str(uuid.uuid4())
    with database.writer() as conn:
        db_api.image_create(conn, {'id': image_id, 'status': 'active'},
                            {}, [], [], PAST)
        ids = []
        for url, text, status in locations:
            ids.append(db_api.location_add(conn, image_id, url, {}, status,
                                           PAST))
            conn.execute(sa.update(_L).where(_L.c.id == ids[-1])
                         .values(meta_data=text))
        if deleted:
            conn.execute(sa.update(models.images)
                         .where(models.images.c.id == image_id)
                         .values(deleted=True, deleted_at=PAST))
    return image_id, ids


def rows(database):
    with database.reader() as conn:
        return {r.id: r._asdict() for r in conn.execute(
            sa.select(_L).order_by(_L.c.id))}


def run(database, location_map, **kwargs):
    job = backfill_mod.Backfill(database, location_map, **kwargs)
    try:
        return job, job.run()
    finally:
        job.unresolved_rows.close()


def legacy(url, text='{}'):
    return (url, text, 'active')


def someone_writes_after_the_read(job, database, monkeypatch, statement):
    """Run ``statement`` in another transaction between read and write.

    The hook is the write step of each batch, which runs after that batch
    was read and resolved (possibly in the read-ahead thread).
    """
    process = job._process

    def write_then_process(batch):
        with database.writer() as conn:
            conn.execute(statement)
        return process(batch)
    monkeypatch.setattr(job, '_process', write_then_process)


def test_backfill_gives_each_location_its_store(database, location_map):
    _, ids = add_image(database, [
        legacy('file:///var/lib/glance/images/a'),
        legacy('file:///var/lib/glance/images2/b', '{"kept": [1, "x"]}'),
        legacy('file:///srv/b/c'),
        legacy('file:///var/lib/glance/images2/d', '{"store": "renamed"}'),
        legacy('file:///var/lib/glance/images/e', '{"store": "fast"}'),
    ])
    before = rows(database)
    _, report = run(database, location_map, batch_size=2)
    after = rows(database)
    stores = [json.loads(after[i]['meta_data']).get('store') for i in ids]
    assert stores == ['fast', 'slow', 'multi', 'slow', 'fast']
    assert json.loads(after[ids[1]]['meta_data'])['kept'] == [1, 'x']
    assert (report.scanned, report.updated, report.already_set) == (5, 4, 1)
    assert not report.unresolved and report.errors == 0
    for location_id in ids:
        changed = {k for k in before[location_id]
                   if before[location_id][k] != after[location_id][k]}
        expected = set() if location_id == ids[4] else {'meta_data',
                                                        'updated_at'}
        assert changed == expected


def test_rerun_after_completion_changes_nothing(database, location_map):
    add_image(database, [legacy('file:///var/lib/glance/images/a'),
                         legacy('file:///srv/a/b')])
    run(database, location_map)
    before = rows(database)
    _, report = run(database, location_map)
    assert rows(database) == before
    assert (report.updated, report.already_set) == (0, 2)


def test_bad_rows_are_reported_and_left_untouched(database, location_map):
    _, ids = add_image(database, [
        legacy('file:///var/lib/glance/images/a', None),
        legacy('file:///var/lib/glance/images/b', '{not json'),
        legacy('file:///var/lib/glance/images/c', '["store"]'),
        legacy('file:///../etc/passwd'),
        legacy('file:///nowhere/x'),
        legacy('s3://AKIA:se/cret@s3.example.com/bucket/o'),
        legacy('file:///var/lib/glance/images/ok'),
    ])
    before = rows(database)
    job, report = run(database, location_map)
    after = rows(database)
    assert [i for i in ids if before[i] != after[i]] == [ids[-1]]
    assert report.unresolved == {'bad-metadata': 3, 'invalid-url': 1,
                                 'no-matching-prefix': 1,
                                 'unknown-scheme': 1}
    assert report.updated == 1


def test_only_live_locations_of_live_images(database, location_map):
    _, live = add_image(database, [
        legacy('file:///var/lib/glance/images/a'),
        ('file:///var/lib/glance/images/b', '{}', 'pending_delete'),
        ('file:///var/lib/glance/images/c', '{}', 'deleted'),
    ])
    _, gone = add_image(database, [legacy('file:///srv/a/x')], deleted=True)
    before = rows(database)
    _, report = run(database, location_map)
    after = rows(database)
    assert report.scanned == 1
    assert [i for i in before if before[i] != after[i]] == [live[0]]


@pytest.mark.parametrize('in_memory', [True, False],
                         ids=['dead-ids-in-memory', 'join'])
def test_locations_of_dead_images_are_not_scanned(database, location_map,
                                                  monkeypatch, in_memory):
    # Glance leaves deleted = 0 on images it killed, and on deleted or
    # pending_delete ones in some paths: their locations are not live.
    if not in_memory:
        monkeypatch.setattr(reading, 'DEAD_IN_MEMORY', 0)
    _, live = add_image(database, [legacy('file:///srv/a/live')])
    for status in ('killed', 'deleted', 'pending_delete'):
        image_id, _ = add_image(database, [legacy(f'file:///srv/a/{status}'),
                                           legacy(f'file:///srv/b/{status}')])
        with database.writer() as conn:
            conn.execute(sa.update(models.images)
                         .where(models.images.c.id == image_id)
                         .values(status=status))
    add_image(database, [legacy('file:///srv/a/gone')], deleted=True)
    before = rows(database)
    job, report = run(database, location_map, batch_size=2)
    after = rows(database)
    assert (report.scanned, report.updated) == (1, 1)
    assert [i for i in before if before[i] != after[i]] == live
    assert job.count() == 1  # the progress total leaves them out too


def test_dry_run_writes_nothing_and_says_what_it_would(
        database, location_map, tmp_path):
    add_image(database, [legacy('file:///var/lib/glance/images/a'),
                         legacy('swift+https://u:sekrit@h/c/o')])
    before = rows(database)
    job = backfill_mod.Backfill(database, location_map, dry_run=True)
    report = job.run()
    path = tmp_path / 'report.json'
    job.write_report(str(path))
    job.close()
    assert rows(database) == before
    data = json.loads(path.read_text())
    assert data['dry_run'] is True and data['would_update'] == 1
    assert [c['store'] for c in data['would_change']] == ['fast']
    assert data['unresolved'] == {'unknown-scheme': 1}
    [unresolved] = data['unresolved_locations']
    assert unresolved['url'] == 'swift+https://***@h/c/o'
    assert 'sekrit' not in path.read_text()
    assert report.updated == 1


IMAGES2 = 'file:///var/lib/glance/images2/a'


@pytest.mark.parametrize('text, meanwhile, fix, expected, counts', [
    # A legacy row: the other writer's keys are kept, the store merged in.
    ('{"a": 1}', '{"a": 1, "b": 2}', False,
     {'a': 1, 'b': 2, 'store': 'slow'}, (1, 1, 0, 0)),
    # A legacy row given its right store meanwhile: theirs is kept.
    ('{}', '{"store": "slow"}', False, {'store': 'slow'}, (0, 1, 1, 0)),
    # ... given a certainly wrong one (Glance's first-match rule): judged
    # as on a first read, counted and listed, or fixed when asked.
    ('{}', '{"store": "multi"}', False, {'store': 'multi'}, (0, 1, 0, 1)),
    ('{}', '{"store": "multi"}', True, {'store': 'slow'}, (1, 1, 0, 1)),
    # A wrong store being fixed, another key changed: still the same wrong
    # store, so the fix is merged again on the fresh data (counted once).
    ('{"store": "fast"}', '{"store": "fast", "x": 1}', True,
     {'store': 'slow', 'x': 1}, (1, 1, 0, 1)),
    # A wrong store being fixed, someone named the right one meanwhile.
    ('{"store": "fast"}', '{"store": "slow"}', True, {'store': 'slow'},
     (0, 1, 1, 1)),
    # ... or another wrong one: that one is corrected too.
    ('{"store": "fast"}', '{"store": "multi"}', True, {'store': 'slow'},
     (1, 1, 0, 2)),
], ids=['legacy-other-key', 'legacy-store-named', 'legacy-wrong-named',
        'legacy-wrong-fixed', 'wrong-other-key', 'wrong-right-named',
        'wrong-other-wrong'])
def test_a_row_changed_meanwhile_is_merged_not_overwritten(
        database, location_map, monkeypatch, text, meanwhile, fix,
        expected, counts):
    _, [location_id] = add_image(database, [legacy(IMAGES2, text)])
    job = backfill_mod.Backfill(database, location_map,
                                fix_wrong_stores=fix, record_changes=True)
    someone_writes_after_the_read(
        job, database, monkeypatch,
        sa.update(_L).where(_L.c.id == location_id)
        .values(meta_data=meanwhile))
    report = job.run()
    wrong = [row['store'] for row in job.wrong_rows]
    job.close()
    assert json.loads(rows(database)[location_id]['meta_data']) == expected
    assert (report.updated, report.conflicts_retried,
            report.already_set, report.wrong_store) == counts
    # Each wrong store counted is listed, by the name it had.
    assert len(wrong) == report.wrong_store


def test_shards_cover_every_location_exactly_once(database, location_map):
    ids = []
    for _ in range(60):
        ids += add_image(database, [legacy('file:///srv/a/x'),
                                    legacy('file:///srv/b/y')])[1]
    seen = []
    for k in range(1, 4):
        job = backfill_mod.Backfill(database, location_map, batch_size=7,
                                    shard=backfill_mod.Shard(k, 3),
                                    record_changes=True)
        total = job.count()
        report = job.run()
        seen += [row['location_id'] for row in job.changes]
        job.close()
        assert 0 < report.updated < len(ids)
        assert total == report.scanned  # the shard's progress total
    assert sorted(seen) == sorted(ids)


@pytest.mark.parametrize('text, message', [
    ('0/3', 'between 1 and N'), ('4/3', 'between 1 and N'),
    ('x', 'write K/N'), ('1/0', 'between 1 and N'),
])
def test_bad_shard(text, message):
    with pytest.raises(ValueError, match=message):
        backfill_mod.Shard.parse(text)


def test_shard_bounds_partition_the_id_space():
    shards = [backfill_mod.Shard(k, 5).bounds() for k in range(1, 6)]
    assert shards[0][0] is None and shards[-1][1] is None
    assert all(a[1] == b[0] for a, b in zip(shards, shards[1:]))
    for image_id in [str(uuid.uuid4()) for _ in range(200)] + ['', 'zz']:
        owners = [k for k, (low, high) in enumerate(shards)
                  if (low is None or image_id >= low)
                  and (high is None or image_id < high)]
        assert len(owners) == 1


def test_lost_races_inside_one_grouped_update(database, location_map,
                                              monkeypatch):
    # Ten rows share one text, so one UPDATE covers them; three change
    # between read and write and are merged again, the others land.
    _, ids = add_image(database, [legacy(f'file:///srv/a/{n}')
                                  for n in range(10)])
    job = backfill_mod.Backfill(database, location_map)
    someone_writes_after_the_read(
        job, database, monkeypatch,
        sa.update(_L).where(_L.c.id.in_(ids[2:5]))
        .values(meta_data='{"x": 1}'))
    report = job.run()
    job.close()
    after = rows(database)
    metadata = [json.loads(after[i]['meta_data']) for i in ids]
    assert all(m['store'] == 'multi' for m in metadata)
    assert [m.get('x') for m in metadata] == [None] * 2 + [1] * 3 + [None] * 5
    assert (report.updated, report.conflicts_retried) == (10, 3)


def job_on_one_image(database, location_map, count):
    """``count`` legacy locations of one image; a job that lists changes."""
    _, ids = add_image(database, [legacy(f'file:///srv/a/{n}')
                                  for n in range(count)])
    return ids, backfill_mod.Backfill(database, location_map,
                                      record_changes=True)


def test_a_write_whose_answer_was_lost_is_counted_as_the_runs(
        database, location_map, monkeypatch):
    # The connection breaks after the server committed the batch, before
    # the answer came back: the retry finds the rows holding exactly what
    # the lost attempt wrote, and the run reports them as its changes.
    ids, job = job_on_one_image(database, location_map, 6)
    writer = database.writer
    lost = []

    @contextlib.contextmanager
    def answer_lost_once():
        with writer() as conn:
            yield conn
        if not lost:  # committed: now the answer goes missing
            lost.append(True)
            raise oslo_db_exc.DBConnectionError('lost after the commit')
    monkeypatch.setattr(database, 'writer', answer_lost_once)
    monkeypatch.setattr(database, 'retry_interval', 0)
    report = job.run()
    try:
        assert lost
        assert (report.updated, report.already_set) == (6, 0)
        assert sorted(c['location_id'] for c in job.changes) == ids
        assert all(json.loads(r['meta_data'])['store'] == 'multi'
                   for r in rows(database).values())
    finally:
        job.close()


@pytest.mark.parametrize('race', ['changed-meanwhile', 'answer-lost'])
def test_an_encrypted_row_written_the_exact_way_is_the_runs_update(
        database, location_map, monkeypatch, race):
    # The exact way reads each row back and compares it with what was
    # read: an encrypted URL is compared as stored, so the row counts as
    # this run's plain update, its ciphertext kept.
    cipher = crypt.UrlCipher('0123456789abcdef')
    stored = cipher.encrypt(IMAGES2)
    _, ids = add_image(database, [legacy(stored),
                                  legacy('file:///srv/a/plain')])
    job = backfill_mod.Backfill(database, location_map, cipher=cipher,
                                record_changes=True)
    if race == 'changed-meanwhile':  # the other row: the batch goes exact
        someone_writes_after_the_read(
            job, database, monkeypatch,
            sa.update(_L).where(_L.c.id == ids[1])
            .values(meta_data='{"x": 1}'))
    else:
        writer, lost = database.writer, []

        @contextlib.contextmanager
        def answer_lost_once():
            with writer() as conn:
                yield conn
            if not lost:
                lost.append(True)
                raise oslo_db_exc.DBConnectionError('lost after the commit')
        monkeypatch.setattr(database, 'writer', answer_lost_once)
        monkeypatch.setattr(database, 'retry_interval', 0)
    report = job.run()
    changes = {c['location_id']: c for c in job.changes}
    job.close()
    after = rows(database)
    assert after[ids[0]]['value'] == stored
    assert cipher.decrypt(after[ids[0]]['value']) == IMAGES2
    assert json.loads(after[ids[0]]['meta_data']) == {'store': 'slow'}
    assert (report.updated, report.conflicts_retried, report.already_set,
            report.errors) == (2, int(race == 'changed-meanwhile'), 0, 0)
    assert sorted(changes) == ids
    assert changes[ids[0]]['url'] == stored


@pytest.mark.parametrize('landed', [True, False], ids=['landed', 'lost'])
@pytest.mark.parametrize('second', [False, True],
                         ids=['stop', 'second-stop'])
def test_a_stop_with_a_write_in_doubt_lists_it_unconfirmed(
        database, location_map, monkeypatch, landed, second):
    # The connection breaks on a write, and the run is stopped before it
    # can read the rows back: whether the commit landed is unknown.  The
    # report lists the rows as unconfirmed changes, and a revert undoes
    # them only where they landed.  The stop: a first Ctrl-C (the retry
    # is not made), or a second one as the run tries again (the signal
    # handler aborts the job and raises KeyboardInterrupt).
    _, ids = add_image(database, [legacy(f'file:///srv/a/{n}')
                                  for n in range(4)])
    before = rows(database)
    job = backfill_mod.Backfill(database, location_map, record_changes=True)
    writer = database.writer
    transactions = []

    @contextlib.contextmanager
    def cut_and_stop():
        transactions.append(True)
        if len(transactions) > 1:  # the retry: a second Ctrl-C
            job.abort()
            raise KeyboardInterrupt
        if not second:
            job.stop()
        if landed:
            with writer() as conn:
                yield conn
        else:
            with writer():
                pass
        raise oslo_db_exc.DBConnectionError('lost on the way back')
    monkeypatch.setattr(database, 'writer', cut_and_stop)
    monkeypatch.setattr(database, 'retry_interval', 0)
    report = job.run()
    monkeypatch.undo()
    try:
        assert len(transactions) == (2 if second else 1)
        assert report.interrupted
        assert (report.updated, report.unconfirmed) == (0, 4)
        assert dict(report.summary())['unconfirmed'] == 4
        changes = list(job.changes)
        assert sorted(c['location_id'] for c in changes) == ids
        assert all(c['unconfirmed'] is True for c in changes)
    finally:
        job.close()
    stored = {i: json.loads(r['meta_data']).get('store')
              for i, r in rows(database).items()}
    assert stored == dict.fromkeys(ids, 'multi' if landed else None)

    undo = revert_mod.Revert(database)
    result = undo.run(changes)
    undo.close()
    if landed:
        assert result.reverted == 4
    else:
        assert result.reverted == 0
        assert result.left == {revert_mod.NOT_LANDED: 4}
    assert {i: r['meta_data'] for i, r in rows(database).items()} == \
        {i: r['meta_data'] for i, r in before.items()}


def test_a_write_in_doubt_and_a_database_lost_for_good(
        database, location_map, monkeypatch, caplog):
    # The answer of a batch's commit is lost, then every connection
    # fails.  The write moves from its fast path to its exact one (to read
    # back what landed); the fault is retried max_retries times in all,
    # not per path, and each line counts the same way.  The run then ends
    # with the database error, and the rows in doubt are in the report as
    # unconfirmed changes, marked as a run that failed.
    ids, job = job_on_one_image(database, location_map, 4)
    writer = database.writer
    transactions = []

    @contextlib.contextmanager
    def lost_for_good():
        transactions.append(True)
        if len(transactions) == 1:
            with writer() as conn:
                yield conn
        raise oslo_db_exc.DBConnectionError('the server went away')
    monkeypatch.setattr(database, 'writer', lost_for_good)
    monkeypatch.setattr(database, 'retry_interval', 0)
    monkeypatch.setattr(database, 'max_retries', 3)
    with caplog.at_level('WARNING', logger='multistore_prefix'):
        with pytest.raises(oslo_db_exc.DBConnectionError):
            job.run()
    monkeypatch.undo()
    try:
        retries = [r.getMessage() for r in caplog.records
                   if 'trying again' in r.getMessage()]
        assert [line.rsplit('(', 1)[1] for line in retries] == [
            'retry 1 of 3)', 'retry 2 of 3)', 'retry 3 of 3)']
        report = job.report
        assert (report.updated, report.unconfirmed) == (0, 4)
        assert report.failed == 'the server went away'
        assert report.as_dict()['failed'] == 'the server went away'
        changes = list(job.changes)
        assert sorted(c['location_id'] for c in changes) == ids
        assert all(c['unconfirmed'] is True for c in changes)
    finally:
        job.close()


# -- reading ahead ------------------------------------------------------------

def many_legacy(database, count):
    ids = []
    for n in range(count):
        ids += add_image(database, [legacy(f'file:///srv/a/{n}')])[1]
    return ids


@pytest.mark.parametrize('prefetch', [True, False], ids=['ahead', 'in-turn'])
def test_the_next_batch_is_read_while_one_is_written(
        database, location_map, monkeypatch, prefetch):
    ids = many_legacy(database, 12)
    job = backfill_mod.Backfill(database, location_map, batch_size=5)
    job.prefetch = prefetch
    assert job.reads_beside_writes()  # the project's SQLite is in WAL mode
    readers, next_read = [], threading.Event()
    read, process = job.reader.read, job._process

    def reading(after):
        readers.append(threading.current_thread().name)
        if after:
            next_read.set()
        return read(after)

    processed = []

    def processing(batch):
        processed.append(batch.scanned)
        if len(processed) == 1:
            # Batch 2 is read before batch 1 is written, or (in turn) not.
            assert next_read.wait(10 if prefetch else 0.2) is prefetch
        return process(batch)
    monkeypatch.setattr(job.reader, 'read', reading)
    monkeypatch.setattr(job, '_process', processing)
    report = job.run()
    job.close()
    assert processed == [5, 5, 2]
    # ... and the empty read that ends the run.
    assert readers == ['MainThread'] + (
        ['backfill-read'] * 3 if prefetch else ['MainThread'] * 3)
    assert (report.scanned, report.updated, report.errors) == (12, 12, 0)
    after = rows(database)
    assert [json.loads(after[i]['meta_data']) for i in ids] == [
        {'store': 'multi'}] * 12


def test_a_stop_waits_for_the_read_ahead(database, location_map,
                                         monkeypatch):
    many_legacy(database, 12)
    job = backfill_mod.Backfill(database, location_map, batch_size=5)
    running = []
    read = job.reader.read

    def reading(after):
        running.append(after)
        try:
            return read(after)
        finally:
            running.remove(after)
    monkeypatch.setattr(job.reader, 'read', reading)
    job.progress = lambda done: job.stop()
    report = job.run()
    job.close()
    # The first batch is written, the one read ahead is not, and no read
    # is left running once run() returns.
    assert (report.scanned, report.updated, report.interrupted) == (
        5, 5, True)
    assert running == []


@pytest.mark.engines('sqlite')
def test_sqlite_without_wal_reads_in_turn(db_url, location_map):
    """A rollback journal: a reader would hold off the writer's commit."""
    path = sa.engine.make_url(db_url).database
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute('PRAGMA journal_mode=DELETE').fetchone() == (
            'delete',)
    database = db_engine.Database(db_url)
    ids = many_legacy(database, 7)
    job = backfill_mod.Backfill(database, location_map, batch_size=3)
    assert not job.reads_beside_writes()
    report = job.run()
    job.close()
    assert (report.scanned, report.updated) == (7, 7)
    assert {json.loads(rows(database)[i]['meta_data'])['store']
            for i in ids} == {'multi'}
    database.dispose()


# -- a store that is enabled but wrong ----------------------------------------

def wrong_store_image(database):
    """Locations that name an enabled store: two of them the wrong one."""
    return add_image(database, [
        # Glance's first-match rule: .../images2 starts with .../images.
        legacy('file:///var/lib/glance/images2/a', '{"store": "fast"}'),
        legacy('file:///var/lib/glance/images/b', '{"store": "fast"}'),
        # No store's prefix holds it: nothing says the name is wrong.
        legacy('http://example.com/c', '{"store": "fast"}'),
        legacy('file:///srv/a/d', '{"store": "slow", "k": 1}'),
    ])[1]


def test_a_wrong_store_is_counted_and_listed_not_changed(
        database, location_map, tmp_path):
    ids = wrong_store_image(database)
    before = rows(database)
    job = backfill_mod.Backfill(database, location_map)
    report = job.run()
    path = tmp_path / 'report.json'
    job.write_report(str(path))
    job.close()
    assert rows(database) == before
    assert (report.scanned, report.wrong_store, report.already_set,
            report.updated) == (4, 2, 2, 0)
    written = json.loads(path.read_text())
    assert written['wrong_store'] == 2
    assert [(w['location_id'], w['store'], w['owner'])
            for w in written['wrong_store_locations']] == [
        (ids[0], 'fast', 'slow'), (ids[3], 'slow', 'multi')]
    assert written['wrong_store_locations'][0]['url'] == (
        'file:///var/lib/glance/images2/a')


def test_fix_wrong_stores_gives_the_owner_and_keeps_other_keys(
        database, location_map):
    ids = wrong_store_image(database)
    before = rows(database)
    _, report = run(database, location_map, fix_wrong_stores=True)
    after = rows(database)
    assert (report.wrong_store, report.updated, report.already_set) == (
        2, 2, 2)
    assert json.loads(after[ids[0]]['meta_data']) == {'store': 'slow'}
    assert json.loads(after[ids[3]]['meta_data']) == {'store': 'multi',
                                                      'k': 1}
    for location_id in ids[1:3]:
        assert after[location_id] == before[location_id]
    _, rerun = run(database, location_map, fix_wrong_stores=True)
    assert (rerun.wrong_store, rerun.updated, rerun.already_set) == (
        0, 0, 4)


def test_a_store_whose_own_prefix_covers_the_url_is_not_wrong(
        database, tmp_path):
    """Nested directories: the longer one owns, the outer is not wrong."""
    path = tmp_path / 'nested.conf'
    path.write_text('[DEFAULT]\nenabled_backends = outer:file, inner:file\n'
                    '[outer]\nfilesystem_store_datadir = /var/lib/glance\n'
                    '[inner]\nfilesystem_store_datadir = '
                    '/var/lib/glance/images\n')
    conf = cfg.ConfigOpts()
    conf(['--config-file', str(path)], default_config_files=[])
    nested = lmap.LocationMap.from_config(conf)
    _, [location_id] = add_image(database, [legacy(
        'file:///var/lib/glance/images/x', '{"store": "outer"}')])
    _, report = run(database, nested, fix_wrong_stores=True)
    assert (report.wrong_store, report.already_set, report.updated) == (
        0, 1, 0)
    assert rows(database)[location_id]['meta_data'] == '{"store": "outer"}'
