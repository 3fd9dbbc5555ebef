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


"""Every wait bounded: real connections, cut and timed out."""

import logging
import threading
import time

from oslo_db import exception as db_exc
import pytest

from multistore_prefix.db import bounds
from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import retry
from tests import tcp_proxy

SLEEP = {'postgresql': 'SELECT pg_sleep({})', 'mysql': 'SELECT SLEEP({})'}


def database_with(url, **bounds_kwargs):
    return db_engine.Database(url, bounds=bounds.Bounds(**bounds_kwargs))


@pytest.mark.engines('postgresql', 'mysql')
def test_a_transaction_past_its_bound_is_cut(database_server, db_url):
    database = database_with(db_url, transaction=1, statement=30)
    try:
        started = time.monotonic()
        with pytest.raises(db_exc.DBConnectionError):
            with database.writer() as conn:
                conn.exec_driver_sql(SLEEP[database_server.name].format(20))
        assert time.monotonic() - started < 5
        assert database.watchdog.cuts == 1
        # The next transaction gets a fresh connection.
        with database.reader() as conn:
            assert conn.exec_driver_sql('SELECT 1').scalar() == 1
    finally:
        database.dispose()


@pytest.mark.engines('postgresql', 'mysql')
def test_hurry_cuts_what_is_in_flight(database_server, db_url):
    database = database_with(db_url, transaction=300, statement=300)
    errors = []

    def sleep():
        try:
            with database.reader() as conn:
                conn.exec_driver_sql(SLEEP[database_server.name].format(30))
        except Exception as exc:
            errors.append(exc)
    try:
        thread = threading.Thread(target=sleep)
        thread.start()
        time.sleep(0.5)
        started = time.monotonic()
        database.watchdog.hurry(0.5)
        thread.join(10)
        assert not thread.is_alive()
        assert time.monotonic() - started < 5
        assert [type(e) for e in errors] == [db_exc.DBConnectionError]
    finally:
        database.dispose()


@pytest.mark.engines('postgresql', 'mysql')
def test_sessions_carry_the_server_side_bounds(database_server, db_url):
    database = database_with(db_url, lock_wait=7, statement=33,
                             transaction=44)
    try:
        with database.reader() as conn:
            if database_server.name == 'postgresql':
                found = [conn.exec_driver_sql(f'SHOW {name}').scalar()
                         for name in ('lock_timeout', 'statement_timeout',
                                      'idle_in_transaction_session_timeout')]
                assert found == ['7s', '33s', '44s']
            else:
                found = conn.exec_driver_sql(
                    'SELECT @@SESSION.innodb_lock_wait_timeout, '
                    '@@SESSION.wait_timeout, '
                    '@@SESSION.max_statement_time').one()
                assert tuple(found) == (7, 44, 33)
    finally:
        database.dispose()


@pytest.mark.engines('postgresql', 'mysql')
def test_a_statement_past_its_bound_is_a_retryable_error(database_server,
                                                         db_url):
    database = database_with(db_url, statement=1)
    try:
        with pytest.raises(db_exc.DBConnectionError):
            with database.reader() as conn:
                conn.exec_driver_sql(SLEEP[database_server.name].format(5))
    finally:
        database.dispose()


@pytest.mark.engines('postgresql', 'mysql')
def test_a_lock_held_too_long_is_a_deadlock_to_retry(database_server,
                                                     db_url):
    holder = database_with(db_url)
    waiter = database_with(db_url, lock_wait=1)
    try:
        with holder.writer() as conn:
            conn.exec_driver_sql('CREATE TABLE t_lock (id INT PRIMARY KEY, '
                                 'v INT)')
            conn.exec_driver_sql('INSERT INTO t_lock VALUES (1, 0)')
        with holder.writer() as conn:
            conn.exec_driver_sql('UPDATE t_lock SET v = 1 WHERE id = 1')
            started = time.monotonic()
            with pytest.raises(db_exc.DBDeadlock):
                with waiter.writer() as other:
                    other.exec_driver_sql(
                        'UPDATE t_lock SET v = 2 WHERE id = 1')
            assert time.monotonic() - started < 5
    finally:
        with holder.writer() as conn:
            conn.exec_driver_sql('DROP TABLE t_lock')
        holder.dispose()
        waiter.dispose()


@pytest.mark.engines('postgresql', 'mysql')
def test_a_refused_connection_is_retried_then_given_up(database_server,
                                                       caplog):
    driver = {'postgresql': 'postgresql+psycopg2',
              'mysql': 'mysql+pymysql'}[database_server.name]
    database = db_engine.Database(f'{driver}://u:s3cr3t@127.0.0.1:1/db',
                                  max_retries=2, retry_interval=0.1)

    def connect():
        with database.reader() as conn:
            conn.exec_driver_sql('SELECT 1')
    try:
        with caplog.at_level(logging.WARNING, logger='multistore_prefix'):
            with pytest.raises(db_exc.DBConnectionError):
                retry.call(database, connect, 'testing')
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 2
        for line in lines:
            assert '127.0.0.1:1/db' in line and 's3cr3t' not in line
            assert 'connection failed while testing' in line
        with pytest.raises(retry.Stopped):
            retry.call(database, connect, 'testing', lambda: True)
    finally:
        database.dispose()


def test_an_answer_begun_before_an_outage_does_not_restart_its_count():
    # A read in flight when the outage began gets its answer after a
    # write met the outage: the outage goes on, and so does its count.
    budget = retry.Budget()
    read_began = budget.faults
    assert budget.spend(deadlock=False) == 1
    budget.answered(read_began)
    assert budget.spend(deadlock=False) == 2
    # A try begun after the last fault gets through: the outage is over.
    budget.answered(budget.faults)
    assert budget.spend(deadlock=False) == 1


def test_a_watchdog_with_nothing_to_watch_keeps_no_thread(monkeypatch):
    monkeypatch.setattr(bounds, 'IDLE_SECONDS', 0.1)
    watchdog = bounds.Watchdog('test')
    reader, writer = __import__('socket').socketpair()
    try:
        token = watchdog.watch(reader.fileno(), 60, 'a test')
        assert watchdog._thread is not None
        watchdog.release(token)
        deadline = time.monotonic() + 5
        while watchdog._thread is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watchdog._thread is None
        # It starts again when needed, and cuts: the peer sees the end.
        watchdog.watch(reader.fileno(), 0.1, 'a test')
        writer.settimeout(5)
        assert writer.recv(1) == b''
        assert watchdog.cuts == 1
    finally:
        reader.close()
        writer.close()


@pytest.mark.engines('postgresql', 'mysql')
def test_a_connection_the_server_killed_is_made_again(database_server,
                                                      db_url):
    # A failover, or an administrator: the pool's check (pre-ping) finds
    # the pooled connection dead and quietly makes a new one.
    database = db_engine.Database(db_url)
    admin = db_engine.Database(db_url)
    try:
        with database.reader() as conn:
            if database_server.name == 'postgresql':
                me = conn.exec_driver_sql('SELECT pg_backend_pid()').scalar()
            else:
                me = conn.exec_driver_sql('SELECT CONNECTION_ID()').scalar()
        with admin.writer() as conn:
            if database_server.name == 'postgresql':
                conn.exec_driver_sql(f'SELECT pg_terminate_backend({me})')
            else:
                conn.exec_driver_sql(f'KILL {int(me)}')
        with database.reader() as conn:
            assert conn.exec_driver_sql('SELECT 1').scalar() == 1
    finally:
        database.dispose()
        admin.dispose()


@pytest.mark.engines('postgresql', 'mysql')
def test_the_pools_check_of_a_silent_connection_is_bounded(db_url):
    # A pooled connection whose network went silent: the pool's check
    # (pre-ping) gets no answer, is cut at the connect bound, and the new
    # connection it then tries is bounded the same way.
    with tcp_proxy.TcpProxy.in_front_of(db_url) as proxy:
        database = database_with(proxy.url(db_url), connect=1,
                                 statement=60, transaction=60)
        try:
            with database.reader() as conn:
                conn.exec_driver_sql('SELECT 1')
            proxy.black_hole()
            started = time.monotonic()
            with pytest.raises(db_exc.DBConnectionError):
                with database.reader() as conn:
                    conn.exec_driver_sql('SELECT 1')
            assert time.monotonic() - started < 10
            assert database.watchdog.cuts >= 1
            proxy.restore()
            with database.reader() as conn:
                assert conn.exec_driver_sql('SELECT 1').scalar() == 1
        finally:
            database.dispose()


@pytest.mark.engines('postgresql', 'mysql')
def test_connecting_to_a_silent_server_waits_the_connect_bound(db_url):
    with tcp_proxy.TcpProxy.in_front_of(db_url) as proxy:
        proxy.black_hole()
        database = database_with(proxy.url(db_url), connect=1,
                                 statement=60, transaction=60)
        try:
            started = time.monotonic()
            with pytest.raises(db_exc.DBConnectionError):
                with database.reader() as conn:
                    conn.exec_driver_sql('SELECT 1')
            assert time.monotonic() - started < 5
        finally:
            database.dispose()


@pytest.mark.engines('mysql')
def test_a_connected_mysql_socket_waits_the_statement_bound(db_url):
    database = database_with(db_url, connect=1, statement=30)
    try:
        with database.reader() as conn:
            raw = conn.connection.dbapi_connection
            assert (raw._read_timeout, raw._write_timeout) == (35, 35)
            # Longer than the connect bound: the socket waits for it.
            assert conn.exec_driver_sql('SELECT SLEEP(2)').scalar() == 0
    finally:
        database.dispose()
