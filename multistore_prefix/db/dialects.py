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


"""What each engine needs before this tool uses it.

:mod:`multistore_prefix.db.engine` calls one of these when oslo.db creates
an engine:

* :func:`setup_server` (PostgreSQL, MySQL/MariaDB): each new session gets
  the server-side bounds of :mod:`multistore_prefix.db.bounds`; making a
  connection, setting it up and the pool's check of a kept connection are
  watched with the connect bound, and after a stop no new connection waits
  past its grace; errors that pass (a lock wait or a statement past its
  bound, libpq's newer words for a lost connection) are translated into
  the oslo.db exceptions that :mod:`multistore_prefix.db.retry` retries
  (and a refusal no retry can cure, a wrong password or an unknown role
  or database, is left out of them: it ends a run at once).
* :func:`setup_sqlite`: the busy timeout, ``synchronous = NORMAL`` in WAL
  mode, and ``BEGIN IMMEDIATE`` for a writer (:func:`writing`), so
  concurrent writers queue on the database lock instead of failing when a
  read lock cannot be upgraded.
"""

import contextlib
import contextvars
import math
import re
import socket

from oslo_db import exception as db_exc
import sqlalchemy as sa

from multistore_prefix.db import bounds as bounds_mod

#: How long a SQLite writer waits for another writer's lock.
SQLITE_BUSY_TIMEOUT_MS = 30000

_WRITING = contextvars.ContextVar('multistore_prefix_db_writing',
                                  default=False)


@contextlib.contextmanager
def writing():
    """Transactions begun in this block write (SQLite: BEGIN IMMEDIATE)."""
    token = _WRITING.set(True)
    try:
        yield
    finally:
        _WRITING.reset(token)


#: libpq's words for "could not reach the server" or "the session is
#: gone" (oslo.db knows only the older "could not connect to server").
_PG_CONNECT_FAILED = re.compile(
    r'connection to server .* failed|could not connect to server|'
    r'could not translate host name|timeout expired|'
    r'server closed the connection unexpectedly|'
    r'terminating connection due to (idle-in-transaction timeout|'
    r'administrator command)|SSL SYSCALL error|connection already closed',
    re.IGNORECASE | re.DOTALL)
#: libpq's words for a refusal that no retry can cure: the password, the
#: role or the database is wrong, or the role may not connect.
_PG_REFUSED = re.compile(
    r'password authentication failed|role ".*" does not exist|'
    r'database ".*" does not exist|no pg_hba\.conf entry|'
    r'permission denied|is not permitted to log in',
    re.IGNORECASE | re.DOTALL)
#: A statement that ran into this tool's own bounds: contention (a lock
#: held too long) is retried like a deadlock, a statement past its bound
#: like a lost connection.
_PG_LOCK_TIMEOUT = re.compile(r'canceling statement due to lock timeout')
_PG_STATEMENT_TIMEOUT = re.compile(
    r'canceling statement due to statement timeout')
#: MariaDB max_statement_time, MySQL max_execution_time.
_MYSQL_STATEMENT_TIMEOUT = (1969, 3024)


def setup_server(engine: sa.engine.Engine, bounds: bounds_mod.Bounds,
                 watchdog: bounds_mod.Watchdog) -> None:
    backend = engine.dialect.name

    @sa.event.listens_for(engine, 'do_connect')
    def _do_connect(dialect, connection_record, cargs, cparams):
        # Once a stop was asked for, a new connection waits no longer than
        # the stop's grace, and none is made after it.
        left = watchdog.time_left()
        if left is None:
            return
        if left <= 0:
            raise db_exc.DBConnectionError(
                f'{watchdog.label}: not connecting, a stop was asked for')
        seconds = max(1, math.ceil(min(left, bounds.connect)))
        keys = (('connect_timeout',) if backend == 'postgresql' else
                ('connect_timeout', 'read_timeout', 'write_timeout'))
        cparams.update(dict.fromkeys(keys, seconds))

    @sa.event.listens_for(engine, 'connect')
    def _connect(dbapi_connection, connection_record):
        # Connecting is bounded by the connect bound, up to the last
        # statement that sets the session up.
        with watchdog.watching(dbapi_connection, bounds.connect,
                               'setting up a connection'):
            _setup_session(dbapi_connection, backend, bounds)

    # The pool checks a connection before it hands it out (oslo.db's
    # pool_pre_ping): a check that gets no answer is cut, and the pool
    # then makes a new connection.
    ping = engine.dialect.do_ping

    def do_ping(dbapi_connection):
        with watchdog.watching(dbapi_connection, bounds.connect,
                               'checking a pooled connection'):
            return ping(dbapi_connection)
    engine.dialect.do_ping = do_ping

    # Ahead of oslo.db's own translation, which raises an OperationalError
    # that is not a disconnect as it is, and nobody retries it.
    # (``insert=True`` is not honoured for this event, so put the others
    # back after it.)
    # SQLAlchemy 2.0 keeps an engine's handle_error listeners on its
    # dialect; 1.4 on the engine itself.
    dispatch = engine.dialect.dispatch
    if not hasattr(dispatch, 'handle_error'):
        dispatch = engine.dispatch
    _listen_first(engine, 'handle_error', _transient_errors, dispatch,
                  retval=True)


def _setup_session(dbapi_connection, backend: str,
                   bounds: bounds_mod.Bounds) -> None:
    # (The dialect learns the server only after the first connect.)
    server = getattr(dbapi_connection, 'get_server_info', None)
    mariadb = callable(server) and 'mariadb' in str(server()).lower()
    statements = bounds.session_statements(backend, mariadb)
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
        # Connected: from now on a socket waits the statement's bound.
        dbapi_connection._read_timeout = bounds.socket_timeouts
        dbapi_connection._write_timeout = bounds.socket_timeouts


def _listen_first(engine, name, listener, dispatch, retval) -> None:
    """``listener`` first, then the listeners ``engine`` had already."""
    others = list(getattr(dispatch, name))
    for other in others:
        sa.event.remove(engine, name, other)
    sa.event.listen(engine, name, listener)
    for other in others:
        sa.event.listen(engine, name, other, retval=retval)


def _transient_errors(context) -> None:
    """Errors that pass: say so in oslo.db's terms, so they are retried."""
    orig = context.original_exception
    wrapped = context.sqlalchemy_exception or orig
    if isinstance(orig, db_exc.DBError) or not isinstance(orig, Exception):
        return
    # (SQLAlchemy 1.4's context has no dialect of its own.)
    name = (getattr(context, 'dialect', None) or context.engine.dialect).name
    if name == 'postgresql':
        text = str(orig)
        if _PG_LOCK_TIMEOUT.search(text):
            raise db_exc.DBDeadlock(wrapped) from orig
        if _PG_STATEMENT_TIMEOUT.search(text):
            raise db_exc.DBConnectionError(wrapped) from orig
        if (type(orig).__name__ in ('OperationalError', 'InterfaceError')
                and _PG_CONNECT_FAILED.search(text)
                and not _PG_REFUSED.search(text)):
            # A lost or refused connection: say so, and let oslo.db make
            # it a DBConnectionError (and SQLAlchemy's pre-ping reconnect
            # quietly, and the pool drop the dead connection).
            context.is_disconnect = True
    elif name == 'mysql':
        args = getattr(orig, 'args', ())
        if args and args[0] in _MYSQL_STATEMENT_TIMEOUT:
            raise db_exc.DBConnectionError(wrapped) from orig


def setup_sqlite(engine: sa.engine.Engine, synchronous: bool) -> None:
    @sa.event.listens_for(engine, 'connect')
    def _connect(dbapi_connection, connection_record):
        dbapi_connection.execute(
            f'PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}')
        # In WAL mode (the project's own database, see migration.sync),
        # NORMAL is SQLite's advice: never corrupt, durable across process
        # crashes; only a power loss may take the last commits.
        # sqlite_synchronous = false (oslo.db: OFF) is left alone.
        if synchronous and dbapi_connection.execute(
                'PRAGMA journal_mode').fetchone()[0] == 'wal':
            dbapi_connection.execute('PRAGMA synchronous = NORMAL')

    def _begin_immediate(connection):
        if _WRITING.get() and 'in_transaction' not in connection.info:
            connection.exec_driver_sql('BEGIN IMMEDIATE')
            connection.info['in_transaction'] = True

    # It must run before oslo.db's own "BEGIN" listener, which then sees
    # the transaction open and steps aside.  (``insert=True`` is not
    # honoured for engine "begin" listeners, so put the others back after
    # it.)
    _listen_first(engine, 'begin', _begin_immediate, engine.dispatch,
                  retval=False)
