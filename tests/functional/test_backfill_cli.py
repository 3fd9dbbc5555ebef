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

"""``multistore-prefix backfill`` run as an operator runs it.

Every test runs the command against a glance-api.conf written to
tmp_path, on SQLite, PostgreSQL and MariaDB (the ``database_server``
fixture), and reads the outcome back from the database: interruptions
(kill -9, SIGTERM, Ctrl-C) and reruns, shards in parallel processes, dry
runs, the JSON report, progress output, and the errors an operator meets
first.  A run to its end is in this process (:func:`run_backfill`); the
real console script runs in a subprocess where the test signals, kills or
parallels it, or gives it a terminal (:func:`start_backfill`).
"""

import contextlib
import datetime
import fcntl
import json
import os
import signal
import struct
import subprocess
import termios
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from multistore_prefix.db import models
from tests.functional import command

_I = models.images
_L = models.image_locations

PAST = datetime.datetime(2020, 1, 2, 3, 4, 5)

#: Each store's directories (the test's own oracle of who owns a URL).
DIRS = {'fast': ('/var/lib/glance/images',),
        'slow': ('/var/lib/glance/images2',),
        'multi': ('/srv/glance/a', '/srv/glance/b')}

CONF = """\
[DEFAULT]
enabled_backends = fast:file, slow:file, multi:file

[fast]
filesystem_store_datadir = /var/lib/glance/images

[slow]
filesystem_store_datadir = /var/lib/glance/images2

[multi]
filesystem_store_datadir =
filesystem_store_datadirs = /srv/glance/a:100
filesystem_store_datadirs = /srv/glance/b

[database]
connection = {url}
{database_extra}
"""

#: Legacy metadata texts: no store, other keys, a store no longer enabled.
LEGACY_METADATA = ('{}', '{"kept": [1, "x"]}', '{"store": "renamed"}')

EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130

S3_KEY_ID = 'AKIAEXAMPLEKEYID'
S3_SECRET = 'sEcR/eT-s3-99'
SWIFT_KEY = 'Sw1ft-K3y-SECRET'
DB_PASSWORD = 'Pa55w0rd'


# -- running the command --------------------------------------------------

def write_conf(tmp_path, url, database_extra=''):
    path = tmp_path / f'glance-api-{uuid.uuid4().hex[:6]}.conf'
    path.write_text(CONF.format(url=url, database_extra=database_extra))
    return path


def backfill_argv(conf, *args):
    return [*command.script(), '--config-file', str(conf), 'backfill', *args]


def run_backfill(conf, *args):
    """Run to the end in this process; the CompletedProcess (text)."""
    return command.run('--config-file', conf, 'backfill', *args)


def start_backfill(conf, *args, **kwargs):
    kwargs.setdefault('stdout', subprocess.PIPE)
    kwargs.setdefault('stderr', subprocess.PIPE)
    return subprocess.Popen(backfill_argv(conf, *args), text=True,
                            stdin=subprocess.DEVNULL, **kwargs)


def summary(stdout):
    """The summary table of ``-f json``."""
    return json.loads(stdout)


def database_line(url):
    """The first line of every run: the database, password masked."""
    safe = sa.engine.make_url(url).render_as_string(hide_password=True)
    return f'backfill: database {safe}'


# -- the database -----------------------------------------------------------

@pytest.fixture
def engine(db_url):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def url_for(store, index):
    """A URL that ``store`` owns (None: a URL no store owns)."""
    if store is None:
        return f'file:///var/lib/glance/other/{index}'
    dirs = DIRS[store]
    return f'file://{dirs[index % len(dirs)]}/{uuid.uuid4()}'


def seed(engine, locations, per_image=1):
    """Bulk-insert legacy images; ``locations`` are (url, meta_data).

    :returns: {location id: the row as inserted, every column}.
    """
    locations = list(locations)
    images, rows = [], []
    for start in range(0, len(locations), per_image):
        image_id = str(uuid.uuid4())
        images.append({'id': image_id, 'status': 'active',
                       'visibility': 'shared', 'min_disk': 0, 'min_ram': 0,
                       'protected': False, 'os_hidden': False,
                       'created_at': PAST, 'deleted': False})
        rows += [{'image_id': image_id, 'value': url, 'meta_data': text,
                  'status': 'active', 'created_at': PAST, 'deleted': False}
                 for url, text in locations[start:start + per_image]]
    with engine.begin() as conn:
        for chunk in range(0, len(images), 5000):
            conn.execute(_I.insert(), images[chunk:chunk + 5000])
        for chunk in range(0, len(rows), 5000):
            conn.execute(_L.insert(), rows[chunk:chunk + 5000])
    return table_rows(engine, _L)


def legacy_locations(count):
    """``count`` resolvable legacy locations over every store."""
    stores = sorted(DIRS)
    return [(url_for(stores[i % 3], i // 3),
             LEGACY_METADATA[(i // 3) % len(LEGACY_METADATA)])
            for i in range(count)]


def expected_store(url):
    """The store that owns ``url``: the test's own oracle."""
    for store, dirs in DIRS.items():
        for directory in dirs:
            if url.startswith(f'file://{directory}/'):
                return store
    return None


def with_store(text, store):
    return {**json.loads(text), 'store': store}


def table_rows(engine, table):
    with engine.connect() as conn:
        return {r.id: r._asdict() for r in conn.execute(
            sa.select(table).order_by(table.c.id))}


def done_count(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(_L).where(
            _L.c.updated_at.is_not(None))).scalar_one()


def check_consistent(engine, seeded, batch_size=None):
    """Every row either done right or exactly as seeded; the done ids.

    A done row differs from its seed in ``meta_data`` (the seed's keys
    plus the right store) and ``updated_at`` only.  Rows are done in id
    order, a batch at a time: with one worker, the done rows are the first
    k * batch_size ids.
    """
    rows = table_rows(engine, _L)
    assert set(rows) == set(seeded)
    done = []
    for location_id, seed_row in seeded.items():
        row = rows[location_id]
        if row == seed_row:
            continue
        changed = {k for k in row if row[k] != seed_row[k]}
        assert changed == {'meta_data', 'updated_at'}, (location_id, row)
        assert json.loads(row['meta_data']) == with_store(
            seed_row['meta_data'], expected_store(row['value'])), row
        done.append(location_id)
    if batch_size is not None:
        assert sorted(done) == sorted(seeded)[:len(done)]
        assert len(done) % batch_size == 0, len(done)
    return done


def report_changes(path):
    """A run's report, and the ids of its confirmed and unconfirmed changes.

    A write cut on its way back may have landed or not: the report lists
    it as unconfirmed.
    """
    report = json.loads(path.read_text())
    confirmed = {c['location_id'] for c in report['changed']
                 if not c.get('unconfirmed')}
    unconfirmed = {c['location_id'] for c in report['changed']
                   if c.get('unconfirmed')}
    return report, confirmed, unconfirmed


def assert_reverted(conf, report_path, engine, seeded, done, unconfirmed):
    """``--revert`` undoes every change that landed, and nothing else."""
    undo = run_backfill(conf, '--revert', str(report_path), '-f', 'json')
    assert undo.returncode == 0, undo.stderr
    result = summary(undo.stdout)
    assert result['reverted'] == len(done)
    assert result['left'] == len(unconfirmed - done)
    assert {i: r['meta_data'] for i, r in table_rows(engine, _L).items()
            } == {i: r['meta_data'] for i, r in seeded.items()}


def wait_for_progress(engine, process, minimum=1, timeout=60):
    """Poll until some rows are done; fail if the run ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done_count(engine) >= minimum:
            return
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f'backfill ended before it could be interrupted '
                        f'(rc {process.returncode}): {out} {err}')
        time.sleep(0.01)
    process.kill()
    pytest.fail('backfill made no progress')


def interrupt_when(process, ready, signum):
    """Send ``signum`` once ``ready()`` returns; (stdout, stderr).

    The process never outlives the call, whatever fails.
    """
    try:
        ready()
        process.send_signal(signum)
        return process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


#: Who else is connected to the test's database (the killed run, until
#: its server session has finished what it had sent and ended).
_OTHER_SESSIONS = {
    'postgresql': 'SELECT count(*) FROM pg_stat_activity WHERE datname = '
                  'current_database() AND pid <> pg_backend_pid()',
    'mysql': 'SELECT count(*) FROM information_schema.processlist WHERE '
             'db = DATABASE() AND id <> CONNECTION_ID()',
}


def settle(engine, database_server, timeout=30):
    """Let a server finish what a killed client had sent (a COMMIT)."""
    query = _OTHER_SESSIONS.get(database_server.name)
    deadline = time.monotonic() + timeout
    while query is not None:
        with engine.connect() as conn:
            if not conn.exec_driver_sql(query).scalar():
                return
        if time.monotonic() > deadline:
            pytest.fail(f'the killed run still has a session after '
                        f'{timeout} s')
        time.sleep(0.05)


# -- interruptions and reruns -----------------------------------------------

#: Enough rows, in small batches, that a run is still going when the test
#: interrupts it, yet seeding stays quick on every engine.
INTERRUPT_ROWS = 3000
INTERRUPT_BATCH = 5


def test_kill_9_mid_run_then_rerun_completes(engine, db_url, tmp_path,
                                             database_server):
    seeded = seed(engine, legacy_locations(INTERRUPT_ROWS), per_image=2)
    conf = write_conf(tmp_path, db_url)
    process = start_backfill(conf, '--batch-size', str(INTERRUPT_BATCH),
                             '--quiet', stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_for_progress(engine, process, minimum=2 * INTERRUPT_BATCH)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    settle(engine, database_server)

    # Whole batches or nothing: each row is done right or exactly as it was.
    done = check_consistent(engine, seeded, batch_size=INTERRUPT_BATCH)
    assert 0 < len(done) < len(seeded)
    first_run = {i: r for i, r in table_rows(engine, _L).items()
                 if i in set(done)}

    rerun = run_backfill(conf, '-f', 'json', '--quiet')
    assert rerun.returncode == 0, rerun.stderr
    # --quiet, not on a terminal: the database, nothing else.
    assert rerun.stderr == database_line(db_url) + '\n'
    result = summary(rerun.stdout)
    assert result['scanned'] == len(seeded)
    assert result['updated'] == len(seeded) - len(done)
    assert result['already_set'] == len(done)
    assert (result['unresolved'], result['errors']) == (0, 0)
    assert sorted(check_consistent(engine, seeded)) == sorted(seeded)
    after = table_rows(engine, _L)
    # The rerun left the killed run's rows alone.
    assert all(after[i] == row for i, row in first_run.items())

    third = run_backfill(conf, '-f', 'json', '--quiet')
    assert third.returncode == 0, third.stderr
    result = summary(third.stdout)
    assert (result['updated'], result['already_set']) == (0, len(seeded))
    assert table_rows(engine, _L) == after


# Ctrl-C and SIGTERM are one behaviour: finish the batch in flight, stop.
@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT],
                         ids=['sigterm', 'ctrl-c'])
def test_signal_finishes_the_batch_in_flight_and_exits_130(
        engine, db_url, tmp_path, signum):
    seeded = seed(engine, legacy_locations(INTERRUPT_ROWS), per_image=2)
    conf = write_conf(tmp_path, db_url)
    report_path = tmp_path / 'report.json'
    process = start_backfill(conf, '--batch-size', str(INTERRUPT_BATCH),
                             '-f', 'json', '--report', str(report_path))
    out, err = interrupt_when(
        process,
        lambda: wait_for_progress(engine, process,
                                  minimum=2 * INTERRUPT_BATCH),
        signum)
    assert process.returncode == EXIT_INTERRUPTED, err
    assert 'Traceback' not in err
    assert 'backfill interrupted' in err

    done = check_consistent(engine, seeded, batch_size=INTERRUPT_BATCH)
    assert 0 < len(done) < len(seeded)
    # The summary counts exactly what was committed.
    result = summary(out)
    assert result['interrupted'] is True
    assert result['updated'] == len(done)
    assert result['scanned'] == len(done)
    report = json.loads(report_path.read_text())
    assert report['interrupted'] is True
    assert report['updated'] == len(done)
    assert sorted(c['location_id'] for c in report['changed']) == sorted(done)

    rerun = run_backfill(conf, '-f', 'json', '--quiet')
    assert rerun.returncode == 0, rerun.stderr
    result = summary(rerun.stdout)
    assert 'interrupted' not in result
    assert result['updated'] == len(seeded) - len(done)
    assert sorted(check_consistent(engine, seeded)) == sorted(seeded)


@contextlib.contextmanager
def locked_pending_rows(engine, database_server):
    """Another writer (Glance) holds every location not done yet.

    Locking them all, in id order, can meet the backfill's batch in a
    deadlock (on MySQL a batch locks the rows of images alone in it in
    text order): like Glance, this writer then tries again.
    """
    with engine.connect() as conn:
        if database_server.name == 'sqlite':
            conn.exec_driver_sql('BEGIN IMMEDIATE')  # the database's lock
        else:
            for attempt in range(5):
                try:
                    conn.execute(sa.select(_L.c.id)
                                 .where(_L.c.updated_at.is_(None))
                                 .with_for_update()).all()
                    break
                except sa.exc.OperationalError as exc:
                    conn.rollback()
                    if attempt == 4 or 'Deadlock' not in str(exc):
                        raise
        try:
            yield
        finally:
            conn.rollback()


def waiting_for_a_lock(engine, database_server) -> bool:
    """A session of the server waits for a row lock."""
    query = ("SELECT count(*) FROM pg_stat_activity WHERE datname = "
             "current_database() AND wait_event_type = 'Lock'"
             if database_server.name == 'postgresql' else
             "SELECT count(*) FROM information_schema.innodb_trx AS t "
             "JOIN information_schema.processlist AS p "
             "ON p.id = t.trx_mysql_thread_id WHERE t.trx_state = "
             "'LOCK WAIT' AND p.db = DATABASE()")
    # A connection each time: the activity views keep one snapshot a while.
    with engine.connect() as conn:
        return bool(conn.exec_driver_sql(query).scalar())


def wait_for_a_lock(engine, database_server, process, timeout=30):
    """Until the backfill's next write waits for the rows held."""
    if database_server.name == 'sqlite':
        # SQLite's busy wait is in the client, where no view shows it.
        time.sleep(0.5)
        return
    deadline = time.monotonic() + timeout
    while not waiting_for_a_lock(engine, database_server):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail('the backfill never waited for the rows held')
        # InnoDB refreshes innodb_trx only when read more than 0.1 s apart.
        time.sleep(0.15)


def _interrupt_while_waiting(engine, db_url, tmp_path, database_server,
                             signals):
    """Send ``signals`` Ctrl-Cs while a write waits on a row lock.

    :returns: (rows committed before, process, stdout, stderr, seeded).
    """
    seeded = seed(engine, legacy_locations(INTERRUPT_ROWS), per_image=2)
    conf = write_conf(tmp_path, db_url)
    process = start_backfill(conf, '--batch-size', str(INTERRUPT_BATCH),
                             '-f', 'json')
    try:
        wait_for_progress(engine, process, minimum=2 * INTERRUPT_BATCH)
        with locked_pending_rows(engine, database_server):
            committed = done_count(engine)
            wait_for_a_lock(engine, database_server, process)
            assert process.poll() is None
            assert done_count(engine) == committed
            for _ in range(signals):
                process.send_signal(signal.SIGINT)
                time.sleep(0.5)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return committed, process, out, err, seeded


def test_ctrl_c_lets_the_batch_in_flight_finish_then_stops(
        engine, db_url, tmp_path, database_server):
    committed, process, out, err, seeded = _interrupt_while_waiting(
        engine, db_url, tmp_path, database_server, signals=1)
    assert process.returncode == EXIT_INTERRUPTED, err[-2000:]
    assert 'Traceback' not in err
    done = check_consistent(engine, seeded, batch_size=INTERRUPT_BATCH)
    # The batch that waited on the lock committed whole, and no other.
    assert len(done) == committed + INTERRUPT_BATCH
    result = summary(out)
    assert result['interrupted'] is True
    assert result['updated'] == len(done)


# SQLite and psycopg2 wait on a lock inside C, where two SIGINTs coalesce
# into one pending signal: only the first (finish the batch) is seen.
# PyMySQL reads in Python, so the second interrupt arrives mid-read and
# comes back from oslo.db as a lost connection, which wrap_db_retry would
# retry: the retry must stop instead.
@pytest.mark.engines('mysql')
def test_second_ctrl_c_stops_at_once(engine, db_url, tmp_path,
                                     database_server):
    committed, process, out, err, seeded = _interrupt_while_waiting(
        engine, db_url, tmp_path, database_server, signals=2)
    assert process.returncode == EXIT_INTERRUPTED, err[-2000:]
    done = check_consistent(engine, seeded, batch_size=INTERRUPT_BATCH)
    assert len(done) == committed
    result = summary(out)
    assert result['interrupted'] is True
    assert result['updated'] == committed


# -- shards -------------------------------------------------------------------

def test_shards_in_parallel_processes_cover_every_location_once(
        engine, db_url, tmp_path):
    workers = 3
    seeded = seed(engine, legacy_locations(3000), per_image=2)
    conf = write_conf(tmp_path, db_url)
    reports = [tmp_path / f'shard-{k}.json' for k in range(1, workers + 1)]
    processes = [
        start_backfill(conf, '--shard', f'{k}/{workers}', '--batch-size',
                       '40', '--report', str(reports[k - 1]), '-f', 'json',
                       '--quiet')
        for k in range(1, workers + 1)]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
    results = [summary(out) for out, _ in outputs]
    data = [json.loads(path.read_text()) for path in reports]

    assert sum(r['updated'] for r in results) == len(seeded)
    assert sum(r['scanned'] for r in results) == len(seeded)
    assert all(0 < r['updated'] < len(seeded) for r in results)
    assert all(r['conflicts_retried'] == 0 for r in results)
    assert [d['shard'] for d in data] == [f'{k}/{workers}'
                                          for k in range(1, workers + 1)]
    changed = [c['location_id'] for d in data for c in d['changed']]
    assert len(changed) == len(set(changed))
    assert sorted(changed) == sorted(seeded)
    # Split by image: an image's locations all belong to one worker.
    owner = {}
    for k, d in enumerate(data):
        for c in d['changed']:
            assert owner.setdefault(c['image_id'], k) == k
            assert c['store'] == expected_store(
                seeded[c['location_id']]['value'])
    assert sorted(check_consistent(engine, seeded)) == sorted(seeded)


# -- dry run and report ----------------------------------------------------

S3_URL = f's3://{S3_KEY_ID}:{S3_SECRET}@s3.example.com/bucket/x'
SWIFT_URL = f'swift+https://glance:{SWIFT_KEY}@swift.example.com/v1/glance/o'
SECRETS = (S3_KEY_ID, S3_SECRET, S3_SECRET.split('/')[-1], SWIFT_KEY)

#: (url, meta_data, expected store or the reason it stays unresolved).
MIXED = [
    (url_for('fast', 0), '{}', 'fast'),
    (url_for('slow', 0), '{"kept": [1, "x"]}', 'slow'),
    (url_for('multi', 0), '{}', 'multi'),
    (url_for('multi', 1), '{"store": "renamed"}', 'multi'),
    (url_for('slow', 1), '{"store": "slow"}', 'already-set'),
    (S3_URL, '{}', 'unknown-scheme'),
    (SWIFT_URL, '{"a": 1}', 'unknown-scheme'),
    (url_for('fast', 1), None, 'bad-metadata'),
    (url_for('fast', 2), '{not json', 'bad-metadata'),
    (url_for('slow', 2), '["store"]', 'bad-metadata'),
    ('file:///../x', '{}', 'invalid-url'),
    (url_for(None, 0), '{}', 'no-matching-prefix'),
]
MASKED = {S3_URL: 's3://***@s3.example.com/bucket/x',
          SWIFT_URL: 'swift+https://***@swift.example.com/v1/glance/o'}


def seed_mixed(engine):
    seeded = seed(engine, [(url, text) for url, text, _ in MIXED])
    outcome = {url: want for url, _, want in MIXED}
    return seeded, {i: outcome[row['value']] for i, row in seeded.items()}


def test_dry_run_changes_nothing_and_says_what_it_would(
        engine, db_url, tmp_path):
    seeded, outcome = seed_mixed(engine)
    to_update = {i for i, want in outcome.items() if want in DIRS}
    images_before = table_rows(engine, _I)
    locations_before = table_rows(engine, _L)
    conf = write_conf(tmp_path, db_url)
    report_path = tmp_path / 'dry.json'
    result = run_backfill(conf, '--dry-run', '--report', str(report_path),
                          '-f', 'json', '--quiet')
    assert result.returncode == 0, result.stderr

    assert table_rows(engine, _I) == images_before
    assert table_rows(engine, _L) == locations_before
    table = summary(result.stdout)
    assert table['would_update'] == len(to_update)
    assert 'updated' not in table
    assert table['scanned'] == len(seeded)
    report = json.loads(report_path.read_text())
    assert report['dry_run'] is True
    assert report['would_update'] == len(to_update)
    assert 'changed' not in report
    assert {c['location_id']: (c['image_id'], c['store'])
            for c in report['would_change']} == {
        i: (seeded[i]['image_id'], outcome[i]) for i in to_update}


def test_wrong_stores_are_listed_then_fixed_on_request(
        engine, db_url, tmp_path):
    """Glance's first-match rule named .../images for .../images2 URLs."""
    wrong = [(url_for('slow', i), '{"store": "fast"}') for i in range(3)]
    right = [(url_for('fast', i), '{"store": "fast"}') for i in range(2)]
    seeded = seed(engine, wrong + right)
    wrong_ids = sorted(i for i, row in seeded.items()
                       if expected_store(row['value']) == 'slow')
    conf = write_conf(tmp_path, db_url)
    report_path = tmp_path / 'report.json'
    listed = run_backfill(conf, '--report', str(report_path), '-f', 'json',
                          '--quiet')
    assert listed.returncode == 0, listed.stderr
    assert table_rows(engine, _L) == seeded
    table = summary(listed.stdout)
    assert (table['wrong_store'], table['already_set'], table['updated']) \
        == (3, 2, 0)
    # The summary says what to do about them, right after the count.
    names = list(table)
    assert names[names.index('wrong_store') + 1] == 'wrong_store_fix'
    assert '--fix-wrong-stores' in table['wrong_store_fix']
    report = json.loads(report_path.read_text())
    assert sorted((w['location_id'], w['store'], w['owner'])
                  for w in report['wrong_store_locations']) == [
        (i, 'fast', 'slow') for i in wrong_ids]

    fixed = run_backfill(conf, '--fix-wrong-stores', '-f', 'json',
                         '--quiet')
    assert fixed.returncode == 0, fixed.stderr
    assert (summary(fixed.stdout)['wrong_store'],
            summary(fixed.stdout)['updated']) == (3, 3)
    assert 'wrong_store_fix' not in summary(fixed.stdout)
    after = table_rows(engine, _L)
    for location_id, row in seeded.items():
        store = expected_store(row['value'])
        assert json.loads(after[location_id]['meta_data']) == {
            'store': store}
        changed = {k for k in row if row[k] != after[location_id][k]}
        assert changed == ({'meta_data', 'updated_at'}
                           if location_id in wrong_ids else set())
    rerun = summary(run_backfill(conf, '--fix-wrong-stores', '-f', 'json',
                                 '--quiet').stdout)
    assert (rerun['wrong_store'], rerun['updated'], rerun['already_set']) \
        == (0, 0, 5)
    assert 'wrong_store_fix' not in rerun


def test_report_counts_unresolved_and_bad_rows_masked(
        engine, db_url, tmp_path):
    seeded, outcome = seed_mixed(engine)
    before = table_rows(engine, _L)
    images_before = table_rows(engine, _I)
    conf = write_conf(tmp_path, db_url)
    report_path = tmp_path / 'report.json'
    result = run_backfill(conf, '--report', str(report_path), '-f', 'json')
    assert result.returncode == 0, result.stderr
    # Not on a terminal: plain lines, no bar (no carriage returns).
    assert f'{len(seeded)} live locations to scan' in result.stderr
    assert '\r' not in result.stderr and '\x1b' not in result.stderr
    text = report_path.read_text()
    for secret in SECRETS:
        assert secret not in result.stdout
        assert secret not in result.stderr
        assert secret not in text

    report = json.loads(text)
    reasons = [want for want in outcome.values()
               if want not in DIRS and want != 'already-set']
    assert report['dry_run'] is False and report['interrupted'] is False
    assert report['shard'] == '1/1'
    assert report['scanned'] == len(seeded)
    assert report['updated'] == sum(w in DIRS for w in outcome.values())
    assert report['already_set'] == 1
    assert report['unresolved'] == {r: reasons.count(r) for r in reasons}
    assert (report['conflicts_retried'], report['errors']) == (0, 0)
    assert report['elapsed_seconds'] >= 0 and report['rate_per_second'] >= 0
    assert {(u['location_id'], u['image_id'], u['url'], u['reason'])
            for u in report['unresolved_locations']} == {
        (i, seeded[i]['image_id'],
         MASKED.get(seeded[i]['value'], seeded[i]['value']), want)
        for i, want in outcome.items()
        if want not in DIRS and want != 'already-set'}
    assert {c['location_id']: c['store'] for c in report['changed']} == {
        i: want for i, want in outcome.items() if want in DIRS}

    table = summary(result.stdout)
    assert table['updated'] == report['updated']
    assert table['unresolved'] == len(reasons)
    for reason, count in report['unresolved'].items():
        assert table[f'unresolved: {reason}'] == count

    after = table_rows(engine, _L)
    for location_id, want in outcome.items():
        if want in DIRS:
            changed = {k for k in after[location_id]
                       if after[location_id][k] != before[location_id][k]}
            assert changed == {'meta_data', 'updated_at'}
            assert json.loads(after[location_id]['meta_data']) == with_store(
                seeded[location_id]['meta_data'], want)
        else:
            assert after[location_id] == before[location_id]
    assert table_rows(engine, _I) == images_before


# -- progress output ---------------------------------------------------------

def run_on_terminal(argv):
    """Run with stderr on a pseudo-terminal: (rc, stdout, terminal text)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 100, 0,
                                                       0))
    captured = []

    def drain():
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's last writer is gone
                return
            if not chunk:
                return
            captured.append(chunk)
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=slave)
    finally:
        os.close(slave)
    try:
        out, _ = process.communicate(timeout=120)
        reader.join(timeout=10)
    finally:
        os.close(master)
    return (process.returncode, out.decode(),
            b''.join(captured).decode(errors='replace'))


@pytest.fixture
def progress_conf(engine, db_url, tmp_path):
    seed(engine, legacy_locations(600), per_image=2)
    return write_conf(tmp_path, db_url)


# Not on a terminal, progress is plain lines: see the report test (and
# --quiet's silence there, the kill -9 test).

def test_progress_on_a_terminal_is_a_tqdm_bar(progress_conf):
    rc, out, terminal = run_on_terminal(backfill_argv(
        progress_conf, '--batch-size', '50', '-f', 'json'))
    assert rc == 0, terminal
    assert '\r' in terminal
    assert 'loc' in terminal and '100%' in terminal
    assert '600/600' in terminal
    # The bar stays on stderr: stdout is the summary alone.
    assert summary(out)['updated'] == 600


def test_quiet_on_a_terminal_prints_the_database_alone(progress_conf,
                                                       db_url):
    rc, out, terminal = run_on_terminal(backfill_argv(
        progress_conf, '--quiet', '-f', 'json'))
    assert rc == 0, terminal
    assert terminal == database_line(db_url) + '\r\n'
    assert summary(out)['updated'] == 600


# -- the database is not what it should be ----------------------------------

def unreachable(database_server, tmp_path):
    """(connection URL, what the error must name) of a missing database."""
    if database_server.name == 'sqlite':
        # Its directory cannot exist: a regular file is in the way.
        (tmp_path / 'not-a-directory').write_text('')
        path = tmp_path / 'not-a-directory' / 'glance.sqlite'
        return f'sqlite:///{path}', str(path.parent)
    driver = {'postgresql': 'postgresql+psycopg2',
              'mysql': 'mysql+pymysql'}[database_server.name]
    # Port 1: nothing listens, the connection is refused at once.
    return f'{driver}://glance:{DB_PASSWORD}@127.0.0.1:1/glance', '127.0.0.1'


#: [database] options of oslo.db that bound its connect-time retries (by
#: default 10 attempts 10 s apart: over 100 s on MySQL before the error).
FAST_FAIL = 'max_retries = 1\nretry_interval = 1\n'


@pytest.fixture(scope='module')
def unreachable_run(database_server, tmp_path_factory):
    """One backfill on a database that is not there (per engine)."""
    tmp_path = tmp_path_factory.mktemp(f'unreachable-{database_server.name}')
    url, where = unreachable(database_server, tmp_path)
    conf = write_conf(tmp_path, url, FAST_FAIL)
    started = time.monotonic()
    result = run_backfill(conf, '-f', 'json')
    return result, where, time.monotonic() - started


def test_unreachable_database_fails_without_traceback_or_password(
        unreachable_run):
    result, _, elapsed = unreachable_run
    assert result.returncode not in (0, EXIT_INTERRUPTED)
    assert result.stdout == ''
    assert result.stderr.strip()
    assert 'Traceback' not in result.stderr
    assert DB_PASSWORD not in result.stdout + result.stderr
    assert elapsed < 60


def test_unreachable_database_error_is_one_line_naming_it(
        unreachable_run, database_server):
    result, where, _ = unreachable_run
    retries = [line for line in result.stderr.splitlines()
               if line.startswith('WARNING: database ')]
    lines = [line for line in result.stderr.splitlines()
             if line not in retries]
    # Each retry is announced in one line naming the database (no
    # password) and the cause, the same way on every engine.
    # (max_retries = 1; a SQLite file that is missing is refused before
    # any connection.)
    assert len(retries) == (database_server.name != 'sqlite'), retries
    for retried in retries:
        assert where in retried and 'connection failed' in retried
    if database_server.name != 'sqlite':
        # The run said which database it was waiting for, first.
        assert lines.pop(0).startswith('backfill: database ')
    assert len(lines) == 1, lines
    [line] = lines
    assert line.startswith('ERROR: ') and where in line
    # (Not in the path: a temporary directory may say "database" too.)
    assert 'database' in line.replace(where, '')


def test_database_without_image_tables_says_run_db_sync(
        database_server, tmp_path):
    url = database_server.create()
    if database_server.name == 'sqlite':
        sa.create_engine(url).connect().close()  # an empty database file
    conf = write_conf(tmp_path, url)
    result = run_backfill(conf)
    assert result.returncode == EXIT_CONFIG
    assert result.stdout == ''
    first, line = result.stderr.strip().splitlines()
    assert first == database_line(url)
    assert 'has no image tables' in line and 'db sync' in line
    assert 'Traceback' not in result.stderr
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == []
    finally:
        engine.dispose()
