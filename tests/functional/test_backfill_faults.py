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

"""The backfill under real network and lock faults, on the two servers.

The console script runs in a subprocess and reaches PostgreSQL or MariaDB
through :class:`tests.tcp_proxy.TcpProxy` on loopback, which black-holes or
refuses connections on request; Glance is played by a second writer on a
direct connection.  Each test then asserts what survived: every location
ends with its store, every write of Glance's is still there, nobody waited
on a lock longer than the bounds allow, and the operator read one plain
line per fault, never a password.
"""

import contextlib
import json
import signal
import threading
import time

import pytest
import sqlalchemy as sa

from multistore_prefix.db import models
from tests.functional import test_backfill_cli as cli
from tests import tcp_proxy

pytestmark = pytest.mark.engines('postgresql', 'mysql')

_I = models.images
_L = models.image_locations
_T = models.image_tags

#: The bounds the runs under test are given (seconds): short, so a test
#: waits for them in seconds, not minutes.
TRANSACTION = 4
BOUNDS = f"""
max_retries = -1
retry_interval = 1

[multistore_prefix]
db_connect_timeout = 2
db_statement_timeout = 3
db_lock_wait_timeout = 30
db_transaction_timeout = {TRANSACTION}
"""
#: A password that must never be printed (PostgreSQL's trust
#: authentication ignores it).
PASSWORD = 'Fau1t-Pa55'


@pytest.fixture
def engine(db_url):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def proxy(db_url):
    with tcp_proxy.TcpProxy.in_front_of(db_url) as proxy:
        yield proxy


def proxied_conf(tmp_path, database_server, db_url, proxy):
    password = PASSWORD if database_server.name == 'postgresql' else None
    return cli.write_conf(tmp_path, proxy.url(db_url, password), BOUNDS)


@contextlib.contextmanager
def backfill(conf, *args):
    """The console script running; it never outlives the block."""
    process = cli.start_backfill(conf, *args)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def finish(process, timeout=120):
    return process.communicate(timeout=timeout)


def assert_completed(process, out, err, engine, seeded):
    """Exit 0, plain lines, every row updated and stored right."""
    assert process.returncode == 0, err
    assert_plain(err)
    assert cli.summary(out)['updated'] == len(seeded)
    return assert_all_stored(engine, seeded)


def assert_all_stored(engine, seeded):
    rows = cli.table_rows(engine, _L)
    assert set(rows) == set(seeded)
    for row in rows.values():
        meta = json.loads(row['meta_data'])
        assert meta['store'] == cli.expected_store(row['value']), row
    return rows


def assert_plain(err):
    assert 'Traceback' not in err, err
    assert PASSWORD not in err


def fresh(query):
    """``query(conn, ...)``, on a connection of its own each time.

    (The servers' activity views keep one snapshot for a while.)
    """
    def run(engine, *args):
        with engine.connect() as conn:
            return query(conn, *args)
    return run


@fresh
def locked_by_others(conn, database_server) -> int:
    """Row locks held by transactions other than ``conn``'s own."""
    if database_server.name == 'postgresql':
        return conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = "
            "current_database() AND pid <> pg_backend_pid() AND state = "
            "'idle in transaction'").scalar()
    return conn.exec_driver_sql(
        'SELECT COALESCE(SUM(trx_rows_locked), 0) FROM '
        'information_schema.innodb_trx WHERE trx_mysql_thread_id <> '
        'CONNECTION_ID()').scalar()


#: Seconds between two looks.  No less than 0.1: InnoDB refreshes
#: ``information_schema.innodb_trx`` only when it was last read more than
#: 0.1 s before, so a faster poll keeps seeing its first answer.
POLL_INTERVAL = 0.25


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(POLL_INTERVAL)
    pytest.fail(f'{what}: not within {timeout} s')


def glance_marks_pending_rows(engine, database_server, lock_wait):
    """Glance writes every location not done yet; seconds it took.

    Its lock wait is ``lock_wait`` seconds: the write fails (and the test
    with it) if the backfill held a row longer.
    """
    started = time.monotonic()
    with engine.begin() as conn:
        if database_server.name == 'postgresql':
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{lock_wait}s'")
        else:
            conn.exec_driver_sql(
                f'SET SESSION innodb_lock_wait_timeout = {lock_wait}')
        conn.execute(sa.update(_L).where(_L.c.updated_at.is_(None))
                     .values(meta_data='{"glance": "was here"}',
                             updated_at=cli.PAST))
    return time.monotonic() - started


# -- a network that goes silent -------------------------------------------

def test_a_silent_network_never_holds_glance_locks(
        engine, db_url, tmp_path, database_server, proxy):
    seeded = cli.seed(engine, cli.legacy_locations(600), per_image=2)
    conf = proxied_conf(tmp_path, database_server, db_url, proxy)
    with backfill(conf, '--batch-size', '20', '-f', 'json') as process:
        cli.wait_for_progress(engine, process, minimum=40)
        # Glance holds the rows not done yet: the backfill's next write
        # waits for them.  The network goes silent; Glance lets go; the
        # backfill's UPDATE takes the rows on the server, and its answer
        # (and the COMMIT) are lost in the black hole.
        with engine.connect() as glance:
            glance.execute(sa.select(_L.c.id).where(_L.c.updated_at.is_(None))
                           .with_for_update()).all()
            wait_until(lambda: cli.waiting_for_a_lock(engine,
                                                      database_server),
                       10, 'the backfill waits for Glance')
            proxy.black_hole()
            connected = proxy.accepted
            glance.rollback()
        wait_until(lambda: locked_by_others(engine, database_server),
                   10, 'the backfill holds rows behind the black hole')
        # The server gives the rows back within the transaction's bound
        # (plus the server's own timer's granularity).
        waited = glance_marks_pending_rows(engine, database_server,
                                           lock_wait=TRANSACTION + 10)
        assert waited >= 1, 'Glance never had to wait: nothing was held'
        assert waited < TRANSACTION + 10
        marked = {i for i, row in cli.table_rows(engine, _L).items()
                  if row['updated_at'] == cli.PAST}
        assert marked
        # The backfill finds its connection silent and connects again,
        # into the black hole still: it has not given up.
        wait_until(lambda: (process.poll() is not None
                            or proxy.accepted > connected),
                   TRANSACTION + 30, 'the backfill connects again')
        assert process.poll() is None, 'the backfill gave up'
        # The network comes back: the backfill goes on and finishes.
        proxy.restore()
        out, err = finish(process)
    rows = assert_completed(process, out, err, engine, seeded)
    assert 'trying again' in err
    for location_id in marked:
        # Glance's write was kept, the store added beside it.
        assert json.loads(rows[location_id]['meta_data'])['glance'] == \
            'was here'


#: How long Glance may wait for rows the backfill held when the network
#: went silent, with every option at its default (InnoDB's own default
#: lock wait is 50 s; Glance sets none on PostgreSQL).
GLANCE_PATIENCE = 30
#: How long the network stays silent in the default-options test.
SILENCE = 60


def test_with_default_options_a_silent_network_holds_no_lock_past_30_s(
        engine, db_url, tmp_path, database_server, proxy):
    # Every option at its default (the batch size too): the bounds alone
    # must give Glance its rows back within GLANCE_PATIENCE of the
    # network going silent, and the run must then finish, or end with
    # one clear line.
    seeded = cli.seed(engine, cli.legacy_locations(600), per_image=2)
    conf = proxied_conf(tmp_path, database_server, db_url, proxy)
    conf.write_text(conf.read_text().replace(BOUNDS, '\n'))
    with engine.connect() as glance:
        # Glance holds every row: the backfill's first write waits for
        # them.  The network goes silent; Glance lets go; the backfill's
        # statement takes the rows on the server, and its answer (and the
        # COMMIT) are lost in the black hole.
        glance.execute(sa.select(_L.c.id).with_for_update()).all()
        with backfill(conf, '-f', 'json') as process:
            wait_until(lambda: cli.waiting_for_a_lock(engine,
                                                      database_server),
                       30, 'the backfill waits for Glance')
            proxy.black_hole()
            silent = time.monotonic()
            glance.rollback()
            wait_until(lambda: locked_by_others(engine, database_server),
                       10, 'the backfill holds rows behind the black hole')
            # Glance's own write of those rows, with a lock wait of its
            # patience from the moment the network went silent.
            left = GLANCE_PATIENCE - (time.monotonic() - silent)
            waited = glance_marks_pending_rows(engine, database_server,
                                               lock_wait=int(left))
            held = time.monotonic() - silent
            assert waited >= 1, 'Glance never had to wait: nothing was held'
            assert held < GLANCE_PATIENCE
            time.sleep(max(0.0, SILENCE - (time.monotonic() - silent)))
            proxy.restore()
            out, err = finish(process, timeout=300)
    print(f'{database_server.name}: rows held {held:.1f} s after the '
          f'network went silent; the run exited {process.returncode}')
    if process.returncode == 0:
        rows = assert_completed(process, out, err, engine, seeded)
        assert all(json.loads(row['meta_data'])['glance'] == 'was here'
                   for row in rows.values())
    else:
        assert process.returncode == 1, err
        assert_plain(err)
        assert len([line for line in err.splitlines()
                    if line.startswith('ERROR')]) == 1, err


def test_sigterm_stops_promptly_behind_a_silent_network(
        engine, db_url, tmp_path, database_server, proxy):
    seeded = cli.seed(engine, cli.legacy_locations(3000), per_image=2)
    conf = proxied_conf(tmp_path, database_server, db_url, proxy)
    # Bounds as the operator leaves them: nothing here ends on its own
    # before the stop's grace does.
    conf.write_text(conf.read_text().replace(BOUNDS, '\nmax_retries = -1\n'))
    report_path = tmp_path / 'report.json'
    with backfill(conf, '--batch-size', '5', '-f', 'json',
                  '--report', str(report_path)) as process:
        cli.wait_for_progress(engine, process, minimum=20)
        proxy.black_hole()
        wait_until(proxy.withheld, 10,
                   'the backfill waits for an answer behind the black hole')
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        out, err = finish(process, timeout=60)
        stopped_in = time.monotonic() - started
    assert process.returncode == cli.EXIT_INTERRUPTED, err
    assert stopped_in < 10 + 5  # the stop's grace, then the cut
    assert_plain(err)
    assert 'backfill interrupted' in err
    result = cli.summary(out)
    assert result['interrupted'] is True
    # What the summary counts is what the database holds.  A write cut on
    # its way back may have landed or not: the report lists it as
    # unconfirmed, and never misses a change that landed.
    done = set(cli.check_consistent(engine, seeded))
    _, confirmed, unconfirmed = cli.report_changes(report_path)
    assert result['updated'] == len(confirmed)
    assert result.get('unconfirmed', 0) == len(unconfirmed)
    assert confirmed <= done <= confirmed | unconfirmed


# -- a server that goes away ----------------------------------------------

def test_an_outage_mid_run_is_retried_and_the_run_completes(
        engine, db_url, tmp_path, database_server, proxy):
    seeded = cli.seed(engine, cli.legacy_locations(3000), per_image=2)
    conf = proxied_conf(tmp_path, database_server, db_url, proxy)
    with backfill(conf, '--batch-size', '10', '-f', 'json') as process:
        cli.wait_for_progress(engine, process, minimum=50)
        proxy.refuse()
        # Refused until the run has said so.
        said = lines_until(process, 'connection failed while', 60)
        assert process.poll() is None, finish(process)
        proxy.restore()
        out, err = finish(process)
    err = ''.join(said) + err
    assert_completed(process, out, err, engine, seeded)
    retries = [line for line in err.splitlines() if 'trying again' in line]
    assert retries, err
    for line in retries:
        assert f'127.0.0.1:{proxy.port}' in line
        assert 'connection failed while' in line


def test_a_server_unreachable_at_start_is_waited_for(
        engine, db_url, tmp_path, database_server, proxy):
    seeded = cli.seed(engine, cli.legacy_locations(30))
    conf = proxied_conf(tmp_path, database_server, db_url, proxy)
    proxy.refuse()
    with backfill(conf, '-f', 'json') as process:
        # Refused until the run has said so (on a busy machine it may
        # take seconds just to start).
        said = lines_until(process, 'connection failed while', 60)
        assert process.poll() is None, finish(process)
        proxy.restore()
        out, err = finish(process)
    assert_completed(process, out, ''.join(said) + err, engine, seeded)


def lines_until(process, words, timeout):
    """The stderr lines up to the first that holds ``words``."""
    lines = []

    def read():
        for line in process.stderr:
            lines.append(line)
            if words in line:
                return
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert lines and words in lines[-1], f'{words!r} not said: {lines}'
    return lines


def test_a_database_lost_past_the_retries_leaves_a_whole_report(
        engine, db_url, tmp_path, database_server, proxy):
    # The server goes away after some batches committed and stays away
    # longer than the retries: the run ends with one line, exit 1, and
    # its report lists exactly the rows it changed (a write whose answer
    # was lost as unconfirmed), so --revert puts every one of them back.
    seeded = cli.seed(engine, cli.legacy_locations(3000), per_image=2)
    conf = proxied_conf(tmp_path, database_server, db_url, proxy)
    conf.write_text(conf.read_text().replace('max_retries = -1',
                                             'max_retries = 2'))
    report_path = tmp_path / 'report.json'
    with backfill(conf, '--batch-size', '10', '-f', 'json',
                  '--report', str(report_path)) as process:
        cli.wait_for_progress(engine, process, minimum=50)
        proxy.refuse()
        out, err = finish(process, timeout=60)
    assert process.returncode == 1, err
    assert_plain(err)
    errors = [line for line in err.splitlines() if 'ERROR' in line]
    assert len(errors) == 1 and 'lost the database' in errors[0], err
    assert [line.rsplit('(', 1)[1] for line in err.splitlines()
            if 'trying again' in line] == ['retry 1 of 2)', 'retry 2 of 2)']
    done = set(cli.check_consistent(engine, seeded))
    assert done
    report, confirmed, unconfirmed = cli.report_changes(report_path)
    assert report['failed'] and PASSWORD not in report['failed']
    assert report['updated'] == len(confirmed)
    assert confirmed <= done <= confirmed | unconfirmed

    proxy.restore()
    cli.assert_reverted(conf, report_path, engine, seeded, done, unconfirmed)


# -- a deadlock with Glance -----------------------------------------------

def test_a_deadlock_with_glance_is_retried(engine, db_url, tmp_path,
                                           database_server):
    seeded = cli.seed(engine, cli.legacy_locations(200), per_image=2)
    first, last = min(seeded), max(seeded)
    image_id = cli.table_rows(engine, _L)[first]['image_id']
    # Bounds long enough for PostgreSQL to look for the deadlock.
    conf = cli.write_conf(tmp_path, db_url, BOUNDS.replace(
        'db_statement_timeout = 3', 'db_statement_timeout = 30').replace(
        f'db_transaction_timeout = {TRANSACTION}',
        'db_transaction_timeout = 30'))
    if database_server.name == 'postgresql':
        # PostgreSQL looks for a deadlock once, deadlock_timeout after a
        # wait begins, and ends the session that looked.  The backfill's
        # sessions look 8 s after their wait, long after Glance closes
        # the cycle, and Glance's never: the backfill is the one to lose,
        # however slowly this test gets from one step to the next.
        with engine.begin() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{engine.url.database}" '
                                 "SET deadlock_timeout = '8s'")
    with engine.connect() as glance:
        if database_server.name == 'postgresql':
            glance.exec_driver_sql("SET deadlock_timeout = '60s'")
        # A big transaction of Glance's (so that on MariaDB, which rolls
        # back the smaller side of a deadlock, the backfill is the one to
        # lose), which holds the last location.
        glance.execute(_T.insert(), [
            {'image_id': image_id, 'value': f'tag-{i}', 'created_at':
             cli.PAST, 'deleted': False} for i in range(2000)])
        glance.execute(sa.update(_L).where(_L.c.id == last)
                       .values(updated_at=cli.PAST))
        # One batch: the backfill locks the rows in id order and waits
        # for the last ...
        with backfill(conf, '--batch-size', '1000',
                      '-f', 'json') as process:
            wait_until(lambda: (process.poll() is not None
                                or cli.waiting_for_a_lock(
                                    engine, database_server)),
                       30, 'the backfill waits for the last row')
            assert process.poll() is None, finish(process)
            # ... and Glance now wants the first: a deadlock.
            glance.execute(sa.update(_L).where(_L.c.id == first)
                           .values(updated_at=cli.PAST))
            glance.commit()
            out, err = finish(process)
    rows = assert_completed(process, out, err, engine, seeded)
    assert 'deadlock while' in err
    assert rows[first]['updated_at'] != cli.PAST  # the store came after
    with engine.connect() as conn:
        tags = conn.execute(sa.select(sa.func.count()).select_from(_T)
                            .where(_T.c.image_id == image_id)).scalar()
    assert tags == 2000  # Glance's transaction was kept


def test_the_proxy_relays_until_told_otherwise(db_url):
    # The fault tool itself: a black hole keeps the connection open and
    # silent; restored, the same connection answers again.
    with tcp_proxy.TcpProxy.in_front_of(db_url) as proxy:
        engine = sa.create_engine(proxy.url(db_url),
                                  poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            assert conn.exec_driver_sql('SELECT 1').scalar() == 1
            proxy.black_hole()
            raw = conn.connection.dbapi_connection
            cursor = raw.cursor()
            done = []

            def query():
                cursor.execute('SELECT 2')
                done.append(cursor.fetchone()[0])
            thread = threading.Thread(target=query, daemon=True)
            thread.start()
            thread.join(1)
            assert thread.is_alive() and not done
            assert proxy.withheld()
            proxy.restore()
            thread.join(10)
            assert done == [2]
        proxy.refuse()
        with pytest.raises(sa.exc.OperationalError):
            engine.connect()
        engine.dispose()
