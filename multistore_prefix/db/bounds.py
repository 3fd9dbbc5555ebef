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

"""Every wait on the database is bounded.

A tool that runs against a live Glance database must never hang, and above
all never hang while it holds row locks Glance needs.  Three layers bound
each wait, and :func:`set_up_server` puts them on a server's engine:

* the driver: a connect timeout, TCP keepalive, and on MySQL read and
  write timeouts on the socket;
* the server, for this tool's sessions only: a lock-wait timeout, a
  statement timeout, and a bound on a session that sits idle inside a
  transaction (PostgreSQL ``idle_in_transaction_session_timeout``, MySQL
  ``wait_timeout``), so a client that vanished mid-transaction gives its
  locks back;
* this process (oslo.db has no such bound): the :class:`Watchdog` shuts
  down the socket of a transaction that outlived its own bound (a
  connection that went silent: no timeout of libpq's notices a peer that
  still acknowledges packets but never answers), and of every
  transaction once a stop was asked for and its grace has passed.  The
  driver then fails with a lost connection, the transaction rolls back on
  the server, and the caller decides whether to try again.
"""

import contextlib
import dataclasses
import logging
import math
import os
import socket
import threading
import time

from oslo_config import cfg
from oslo_db import exception as db_exc
import sqlalchemy as sa

LOG = logging.getLogger(__name__)

GROUP = 'multistore_prefix'
#: A watchdog with nothing to watch for this long ends its thread.
IDLE_SECONDS = 5.0

#: What this tool's sessions call themselves on PostgreSQL
#: (``pg_stat_activity.application_name``), so an operator tells its
#: connections from Glance's.
APPLICATION_NAME = 'multistore-prefix'


@dataclasses.dataclass(frozen=True)
class Bounds:
    """The bounds of one database's waits, in seconds (see :data:`OPTS`)."""

    # When the network goes silent mid-transaction, the server ends the
    # statement in flight within ``statement`` and the idle transaction
    # ``transaction`` later: Glance gets its rows back within 25 s, inside
    # the 30 s it may wait for them (InnoDB's own lock wait is 50 s).  A
    # healthy write transaction of the 1,000,000-row benchmark took at
    # most 0.54 s (MariaDB; 0.18 s on PostgreSQL), so a slow server has a
    # wide margin.
    connect: int = 10
    lock_wait: int = 5
    statement: int = 10
    transaction: int = 15

    @classmethod
    def from_config(cls, conf: cfg.ConfigOpts) -> 'Bounds':
        conf.register_opts(OPTS, group=GROUP)
        group = conf[GROUP]
        return cls(group.db_connect_timeout, group.db_lock_wait_timeout,
                   group.db_statement_timeout, group.db_transaction_timeout)


OPTS = [
    cfg.IntOpt('db_connect_timeout', default=Bounds.connect, min=1,
               help='Seconds to wait for a database connection to be '
                    'established (the driver\'s connect timeout).'),
    cfg.IntOpt('db_lock_wait_timeout', default=Bounds.lock_wait, min=1,
               help='Seconds a statement of multistore-prefix waits for a '
                    'row lock that another writer (glance-api) holds before '
                    'it gives up; the transaction is then tried again. '
                    'PostgreSQL lock_timeout, MySQL/MariaDB '
                    'innodb_lock_wait_timeout.  (A SQLite writer waits up '
                    'to 30 s for the database lock.)'),
    cfg.IntOpt('db_statement_timeout', default=Bounds.statement, min=1,
               help='Seconds one statement of multistore-prefix may run '
                    '(PostgreSQL statement_timeout, MariaDB '
                    'max_statement_time, and the MySQL driver\'s socket '
                    'read and write timeouts).  The statements of a batch '
                    'take well under a second on a healthy server.'),
    cfg.IntOpt('db_transaction_timeout', default=Bounds.transaction, min=1,
               help='Seconds a transaction of multistore-prefix may stay '
                    'open.  Past it, the connection is cut and the server '
                    'rolls the transaction back.  The server is also told '
                    'to end a session that sits idle inside a transaction '
                    'this long (PostgreSQL '
                    'idle_in_transaction_session_timeout, MySQL/MariaDB '
                    'wait_timeout), so when the network goes silent, the '
                    'row locks Glance needs are given back within '
                    'db_statement_timeout + db_transaction_timeout (25 s '
                    'by default; Glance\'s own lock wait on MySQL/MariaDB '
                    'is InnoDB\'s 50 s).  The slowest write transaction of '
                    'a 1,000,000-row backfill took 0.54 s in the project\'s '
                    'benchmark; the backfill\'s summary shows a run\'s '
                    '(slowest_write_seconds).'),
]


def set_up_server(engine: sa.engine.Engine, bounds: Bounds,
                  watchdog: 'Watchdog') -> None:
    """Bound making, setting up and checking a server's connections.

    Each is watched with the connect bound; after a stop, no new
    connection waits past its grace, and none is made after it.  The
    driver parameters below are defaults: the operator's
    ``[database]/connection_parameters`` win.
    """
    backend = engine.dialect.name
    if backend == 'postgresql':
        connect_keys = ('connect_timeout',)
        parameters = {'application_name': APPLICATION_NAME,
                      'keepalives': 1, 'keepalives_idle': 30,
                      'keepalives_interval': 10, 'keepalives_count': 3,
                      # Unacknowledged data: the peer is gone.
                      'tcp_user_timeout': bounds.statement * 1000}
    else:
        # MySQL: while connecting, every socket wait is the connect bound
        # (PyMySQL's connect_timeout covers the TCP connect alone); the
        # session's own bounds replace it once connected.
        connect_keys = ('connect_timeout', 'read_timeout', 'write_timeout')
        parameters = {}
    parameters.update(dict.fromkeys(connect_keys, bounds.connect))

    @sa.event.listens_for(engine, 'do_connect')
    def _do_connect(dialect, connection_record, cargs, cparams):
        for key, value in parameters.items():
            cparams.setdefault(key, value)
        left = watchdog.time_left()
        if left is None:
            return
        if left <= 0:
            raise db_exc.DBConnectionError(
                f'{watchdog.label}: not connecting, a stop was asked for')
        seconds = max(1, math.ceil(min(left, bounds.connect)))
        cparams.update(dict.fromkeys(connect_keys, seconds))

    @sa.event.listens_for(engine, 'connect')
    def _connect(dbapi_connection, connection_record):
        with watchdog.watching(dbapi_connection, bounds.connect,
                               'setting up a connection'):
            _set_up_session(dbapi_connection, backend, bounds)

    # The pool checks a connection before it hands it out (oslo.db's
    # pool_pre_ping): a check that gets no answer is cut, and the pool
    # then makes a new one.
    ping = engine.dialect.do_ping

    def do_ping(dbapi_connection):
        with watchdog.watching(dbapi_connection, bounds.connect,
                               'checking a pooled connection'):
            return ping(dbapi_connection)
    engine.dialect.do_ping = do_ping


def _set_up_session(dbapi_connection, backend: str, bounds: Bounds) -> None:
    """Put the server's bounds on a new session of this tool."""
    if backend == 'postgresql':
        statements = [
            f"SET statement_timeout = '{bounds.statement}s'",
            f"SET lock_timeout = '{bounds.lock_wait}s'",
            f"SET idle_in_transaction_session_timeout = "
            f"'{bounds.transaction}s'"]
    elif backend == 'mysql':
        statements = [
            f'SET SESSION innodb_lock_wait_timeout = {bounds.lock_wait}',
            f'SET SESSION wait_timeout = {bounds.transaction}']
        # (The dialect learns the server only after the first connect.)
        server = getattr(dbapi_connection, 'get_server_info', None)
        if callable(server) and 'mariadb' in str(server()).lower():
            statements.append(
                f'SET SESSION max_statement_time = {bounds.statement}')
    else:
        return
    cursor = dbapi_connection.cursor()
    try:
        for statement in statements:
            cursor.execute(statement)
    finally:
        cursor.close()
    if backend == 'postgresql':
        dbapi_connection.commit()  # SET outside any transaction
    sock = getattr(dbapi_connection, '_sock', None)  # PyMySQL
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        # Connected: from now on a socket read or write waits the
        # statement's bound, plus the time the server needs to say it
        # gave up.
        dbapi_connection._read_timeout = bounds.statement + 5
        dbapi_connection._write_timeout = bounds.statement + 5


def socket_of(dbapi_connection) -> int | None:
    """The file descriptor of a DBAPI connection's socket, if it has one."""
    sock = getattr(dbapi_connection, '_sock', None)  # PyMySQL
    try:
        return (dbapi_connection if sock is None else sock).fileno()
    except Exception:  # closed, or not a socket driver (SQLite)
        return None


def cut(fd: int) -> None:
    """Shut a socket down under whoever waits on it (never raises)."""
    try:
        dup = os.dup(fd)
    except OSError:
        return
    try:
        sock = socket.socket(fileno=dup)
    except OSError:
        os.close(dup)
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


class Watchdog:
    """Cuts the connection of a transaction that outlived its deadline.

    One daemon thread per database, started on first use and ended when
    idle.  :meth:`hurry` brings every deadline, present and future, to at
    most a grace period from now (a stop was asked for).

    :ivar cuts: how many connections it cut.
    :ivar slowest: the longest each kind of watched block took, in
        seconds, by ``what`` (``'a write'``): how close a healthy run
        comes to its bounds.
    """

    def __init__(self, label: str):
        self.label = label
        self.cuts = 0
        self.slowest: dict[str, float] = {}
        self._lock = threading.Condition()
        self._deadlines: dict[int, tuple[float, int, str]] = {}
        self._next = 0
        self._hurry_until = None
        self._thread = None

    def watch(self, fd: int, seconds: float, what: str) -> int:
        """Start watching ``fd``; a token for :meth:`release`."""
        now = time.monotonic()
        with self._lock:
            deadline = now + seconds
            if self._hurry_until is not None:
                deadline = min(deadline, self._hurry_until)
            self._next += 1
            self._deadlines[self._next] = (deadline, fd, what)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name='db-watchdog')
                self._thread.start()
            self._lock.notify()
            return self._next

    @contextlib.contextmanager
    def watching(self, dbapi_connection, seconds: float, what: str):
        """Watch a DBAPI connection's socket for the block's duration."""
        fd = socket_of(dbapi_connection)
        if fd is None:
            yield
            return
        token = self.watch(fd, seconds, what)
        started = time.monotonic()
        try:
            yield
        finally:
            self.release(token)
            took = time.monotonic() - started
            if took > self.slowest.get(what, 0.0):
                self.slowest[what] = took

    def release(self, token: int) -> None:
        with self._lock:
            self._deadlines.pop(token, None)
            if not self._deadlines:
                self._lock.notify()  # it may go idle

    def hurry(self, grace: float) -> None:
        """Every transaction, now and later, ends within ``grace`` s."""
        with self._lock:
            until = time.monotonic() + grace
            if self._hurry_until is None or until < self._hurry_until:
                self._hurry_until = until
            for token, (deadline, fd, what) in list(self._deadlines.items()):
                if deadline > until:
                    self._deadlines[token] = (until, fd, what)
            self._lock.notify()

    def time_left(self) -> float | None:
        """Seconds until a stop's grace ends; ``None`` if none was asked."""
        with self._lock:
            if self._hurry_until is None:
                return None
            return self._hurry_until - time.monotonic()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._deadlines:
                    # A process with many databases keeps no idle threads.
                    self._lock.wait(IDLE_SECONDS)
                    if not self._deadlines:
                        self._thread = None
                        return
                now = time.monotonic()
                due = [(token, fd, what) for token, (deadline, fd, what)
                       in self._deadlines.items() if deadline <= now]
                for token, _, _ in due:
                    del self._deadlines[token]
                if not due:
                    wait = min(d for d, _, _ in self._deadlines.values())
                    self._lock.wait(max(wait - now, 0.01))
                    continue
            for _token, fd, what in due:
                self.cuts += 1
                LOG.warning('%s: %s took too long; cutting its connection '
                            '(the server rolls it back)', self.label, what)
                cut(fd)
