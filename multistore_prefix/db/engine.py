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


"""One database: an oslo.db transaction context for one configuration.

Each :class:`Database` owns its own engine facade (never oslo.db's global
one), so a process can talk to several databases: a test to SQLite,
PostgreSQL and MariaDB at once, a tool to Glance's database and its own.

Transactions are short and explicit: :meth:`Database.reader` for reads,
:meth:`Database.writer` for writes.  Every wait is bounded
(:mod:`multistore_prefix.db.bounds`).  Errors that pass (a lock wait or
a statement past its bound, libpq's newer words for a lost connection)
surface as the oslo.db exceptions that :mod:`multistore_prefix.db.retry`
retries, alike on every engine; a refusal no retry can cure (a wrong
password, an unknown role or database) is left out of them: it ends a
run at once.
"""

import contextlib
import contextvars
import re
import sqlite3
import threading
import types
from typing import Iterator

from oslo_config import cfg
from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import enginefacade
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from multistore_prefix.db import bounds as bounds_mod
from multistore_prefix.db import exceptions
from multistore_prefix.db import options
from multistore_prefix.db import sql
from multistore_prefix import masking

#: How long a SQLite writer waits for another writer's lock.
SQLITE_BUSY_TIMEOUT_MS = 30000

# Database error codes that mean "you may not write here".
_PG_READ_ONLY = {'42501',   # insufficient_privilege
                 '25006'}   # read_only_sql_transaction (hot standby too)
_MYSQL_READ_ONLY = {1044, 1142, 1227,  # access denied
                    1290,              # server runs --read-only
                    1792}              # read-only transaction

#: Pool options of a guest in another program's process (the glance-api
#: filter): one connection at most beside the host's own, which is what
#: an operator sized ``max_connections`` for.
ONE_CONNECTION = {'max_pool_size': 1, 'max_overflow': 0}

#: The ``[database]`` options the engine facade takes.
_FACADE_OPTIONS = (
    'connection', 'slave_connection', 'sqlite_synchronous', 'mysql_sql_mode',
    'mysql_wsrep_sync_wait', 'connection_recycle_time', 'connection_debug',
    'max_pool_size', 'max_overflow', 'pool_timeout', 'max_retries',
    'retry_interval', 'connection_trace', 'connection_parameters')

_WRITING = contextvars.ContextVar('multistore_prefix_db_writing',
                                  default=False)

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


class Database:
    """An engine facade for one connection URL.

    :ivar connection: the SQLAlchemy URL (it may hold a password: never
        print it; :attr:`safe_url` hides it).
    :ivar max_retries: ``[database]/max_retries`` (-1: without end) and
        ``retry_interval``, for :mod:`multistore_prefix.db.retry`.
    """

    def __init__(self, connection: str,
                 bounds: bounds_mod.Bounds | None = None,
                 **facade_options):
        self.connection = connection
        self.bounds = bounds or bounds_mod.Bounds()
        self.max_retries = facade_options.pop('max_retries', 10)
        self.retry_interval = facade_options.pop('retry_interval', 10)
        self._facade = enginefacade.transaction_context()
        # sqlite_fk: Glance's foreign keys hold on SQLite too.
        # max_retries 0: oslo.db makes no test connection of its own at
        # start; callers retry every engine's connection failures alike.
        # thread_checkin off: no sleep(0) when a connection goes back to
        # the pool, which under eventlet (glance-api's filter) hands the
        # request's turn to Glance's other green threads mid-request.
        self._facade.configure(**{'sqlite_fk': True, **facade_options,
                                  'thread_checkin': False,
                                  'max_retries': 0,
                                  'connection':
                                  options.driver_connection(connection)})
        self.watchdog = bounds_mod.Watchdog(self.safe_url)
        self._synchronous = facade_options.get('sqlite_synchronous', True)
        self._sqlite_file = False
        self._keepalive = None
        self._keepalive_lock = threading.Lock()
        self._facade.append_on_engine_create(self._setup_engine)

    @classmethod
    def from_config(cls, conf: cfg.ConfigOpts,
                    **overrides) -> 'Database':
        """``[database]`` of ``conf``; ``overrides`` win over its options."""
        options.register_opts(conf)
        group = conf.database
        facade_options = {name: group[name] for name in _FACADE_OPTIONS
                          if name in group}
        return cls(bounds=bounds_mod.Bounds.from_config(conf),
                   **{**facade_options, **overrides})

    @property
    def engine(self) -> sa.engine.Engine:
        """The writer engine (created on first use)."""
        return self._facade.writer.get_engine()

    @property
    def safe_url(self) -> str:
        """The URL with its password (and query credentials) hidden."""
        return masking.mask_url(self.connection)

    @contextlib.contextmanager
    def reader(self) -> Iterator[sa.engine.Connection]:
        """A read transaction (a Core connection)."""
        with self._transaction(self._facade.reader, 'a read') as connection:
            yield connection

    @contextlib.contextmanager
    def writer(self) -> Iterator[sa.engine.Connection]:
        """A write transaction, committed when the block ends.

        :raises Forbidden: the database refused to write (permissions, a
            read-only transaction, server or file).
        """
        writing = _WRITING.set(True)
        try:
            with self._transaction(self._facade.writer,
                                   'a write') as connection:
                yield connection
        except (db_exc.DBError, sa_exc.DBAPIError) as exc:
            reason = permission_denied(exc)
            if reason is None:
                raise
            raise exceptions.Forbidden(reason) from exc
        finally:
            _WRITING.reset(writing)

    @contextlib.contextmanager
    def _transaction(self, side, what: str):
        """A transaction whose socket the watchdog holds until it ends.

        It ends after the commit or rollback (the facade's block exits
        inside the watch), so a commit that never returns is cut too.
        """
        if self._sqlite_file and self._keepalive is None:
            self._keep_wal_open()
        with contextlib.ExitStack() as watching:
            with side.connection.using(types.SimpleNamespace()) as conn:
                watching.enter_context(self.watchdog.watching(
                    conn.connection.dbapi_connection,
                    self.bounds.transaction, what))
                yield conn

    def dispose(self) -> None:
        """Close every pooled connection."""
        if self._facade.is_started:
            self._facade.dispose_pool()
        if self._keepalive is not None:
            self._keepalive.close()
            self._keepalive = None

    def _setup_engine(self, engine: sa.engine.Engine) -> None:
        if engine.dialect.name == 'sqlite':
            _set_up_sqlite(engine, self._synchronous)
            self._sqlite_file = engine.url.database not in (
                None, '', ':memory:')
        else:
            bounds_mod.set_up_server(engine, self.bounds, self.watchdog)
            _translate_transient_errors(engine)

    def _keep_wal_open(self) -> None:
        # oslo.db gives SQLite files no pool: each transaction opens and
        # closes its own connection.  Closing the last connection to a WAL
        # database checkpoints and deletes the WAL, which costs more than
        # the transaction; one idle connection that has read the database
        # keeps the WAL open.  Idle, it blocks neither writers nor
        # checkpoints.
        with self._keepalive_lock:
            if self._keepalive is None:
                keepalive = self.engine.raw_connection()
                keepalive.driver_connection.execute(
                    'SELECT count(*) FROM sqlite_master').fetchall()
                self._keepalive = keepalive


def permission_denied(exc: BaseException) -> str | None:
    """Why the database refused a write, or ``None`` for other errors."""
    orig = sql.driver_error(exc)
    pgcode = getattr(orig, 'pgcode', None)
    if pgcode in _PG_READ_ONLY:
        return str(orig).strip().splitlines()[0]
    args = getattr(orig, 'args', ())
    if (type(orig).__module__.startswith('pymysql') and args
            and args[0] in _MYSQL_READ_ONLY):
        return str(args[1] if len(args) > 1 else orig)
    if isinstance(orig, sqlite3.Error) and 'readonly' in str(orig):
        return str(orig)
    return None


def _translate_transient_errors(engine: sa.engine.Engine) -> None:
    # Ahead of oslo.db's own translation, which raises an OperationalError
    # that is not a disconnect as it is, and nobody retries it.
    # SQLAlchemy 2.0 keeps an engine's handle_error listeners on its
    # dialect; 1.4 on the engine itself.
    dispatch = engine.dialect.dispatch
    if not hasattr(dispatch, 'handle_error'):
        dispatch = engine.dispatch
    _listen_first(engine, 'handle_error', _transient_errors, dispatch,
                  retval=True)


def _set_up_sqlite(engine: sa.engine.Engine, synchronous: bool) -> None:
    """The busy timeout, and ``BEGIN IMMEDIATE`` for a writer.

    A writer takes the database lock when it begins, so concurrent
    writers queue on it (up to :data:`SQLITE_BUSY_TIMEOUT_MS`) instead of
    failing when a read lock cannot be upgraded.
    """
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

    # Before oslo.db's own "BEGIN" listener, which then sees the
    # transaction open and steps aside.
    _listen_first(engine, 'begin', _begin_immediate, engine.dispatch,
                  retval=False)


def _listen_first(engine, name, listener, dispatch, retval) -> None:
    """``listener`` first, then the listeners ``engine`` had already.

    (``insert=True`` is not honoured for these events.)
    """
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
