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
:meth:`Database.writer` for writes.  On SQLite a writer starts with ``BEGIN
IMMEDIATE``, so concurrent writers queue on the database lock (up to
:data:`SQLITE_BUSY_TIMEOUT_MS`) instead of failing when a read lock cannot
be upgraded.

Every wait is bounded (:mod:`multistore_prefix.db.bounds`): the driver's
connect and socket timeouts, the server's lock-wait, statement and
idle-in-transaction timeouts for this tool's sessions, and a watchdog that
cuts the connection of a transaction that outlived its bound.  Connection
failures surface as oslo.db's ``DBConnectionError`` on every engine
(libpq's "connection to server ... failed" included), so callers retry
them alike (:mod:`multistore_prefix.db.retry`).  What each engine needs
set up for all this is in :mod:`multistore_prefix.db.dialects`.
"""

import contextlib
import os
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
from multistore_prefix.db import dialects
from multistore_prefix.db import exceptions
from multistore_prefix.db import options
from multistore_prefix.db import sql
from multistore_prefix import masking

#: How long a SQLite writer waits for another writer's lock.
SQLITE_BUSY_TIMEOUT_MS = dialects.SQLITE_BUSY_TIMEOUT_MS

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


class Database:
    """An engine facade for one connection URL.

    :ivar connection: the SQLAlchemy URL (it may hold a password: never
        print it; :attr:`safe_url` hides it).
    :ivar bounds: the :class:`~multistore_prefix.db.bounds.Bounds` of
        every wait.
    :ivar max_retries: ``[database]/max_retries``: how many times a caller
        tries again to reach a database it lost (-1: without end).
    :ivar retry_interval: ``[database]/retry_interval``, seconds.
    :ivar watchdog: cuts the connections of overdue transactions.
    """

    def __init__(self, connection: str,
                 bounds: bounds_mod.Bounds | None = None,
                 **facade_options):
        self.connection = connection
        self.bounds = bounds or bounds_mod.Bounds()
        self.max_retries = facade_options.pop('max_retries', 10)
        self.retry_interval = facade_options.pop('retry_interval', 10)
        backend = sa.engine.make_url(connection).get_backend_name()
        parameters = _merge_query(
            self.bounds.connect_parameters(backend),
            facade_options.pop('connection_parameters', None) or '')
        self._facade = enginefacade.transaction_context()
        # sqlite_fk: Glance's foreign keys hold on SQLite too.
        # max_retries 0: oslo.db makes no test connection of its own at
        # start; callers retry every engine's connection failures alike.
        # thread_checkin off: no sleep(0) when a connection goes back to
        # the pool, which under eventlet (glance-api's filter) hands the
        # request's turn to Glance's other green threads mid-request.
        self._facade.configure(**{'sqlite_fk': True, **facade_options,
                                  'thread_checkin': False,
                                  'connection_parameters': parameters,
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
        """The database of ``[database]`` in ``conf`` (registered here).

        :param overrides: engine facade options that win over ``conf``'s
            (:data:`ONE_CONNECTION`).
        """
        facade_options = {**options.engine_options(conf), **overrides}
        return cls(bounds=bounds_mod.Bounds.from_config(conf),
                   **facade_options)

    @property
    def engine(self) -> sa.engine.Engine:
        """The writer engine (created on first use)."""
        return self._facade.writer.get_engine()

    @property
    def safe_url(self) -> str:
        """The URL with its password (and query credentials) hidden."""
        url = sa.engine.make_url(self.connection)
        if '@' in (url.host or ''):
            # A raw '@' in the password: SQLAlchemy took its tail for the
            # host, so its rendering would show it.
            return masking.mask_url(self.connection)
        return masking.mask_parameters(url.render_as_string(
            hide_password=True))

    @contextlib.contextmanager
    def reader(self) -> Iterator[sa.engine.Connection]:
        """A read transaction (a Core connection)."""
        if self._sqlite_file and self._keepalive is None:
            self._keep_wal_open()
        with self._watched('a read') as watch:
            with self._facade.reader.connection.using(
                    types.SimpleNamespace()) as connection:
                watch(connection)
                yield connection

    @contextlib.contextmanager
    def writer(self) -> Iterator[sa.engine.Connection]:
        """A write transaction, committed when the block ends.

        :raises Forbidden: the database refused to write (permissions, a
            read-only transaction, server or file).
        """
        if self._sqlite_file and self._keepalive is None:
            self._keep_wal_open()
        try:
            with dialects.writing(), self._watched('a write') as watch:
                with self._facade.writer.connection.using(
                        types.SimpleNamespace()) as connection:
                    watch(connection)
                    yield connection
        except (db_exc.DBError, sa_exc.DBAPIError) as exc:
            reason = permission_denied(exc)
            if reason is None:
                raise
            raise exceptions.Forbidden(reason) from exc

    @contextlib.contextmanager
    def _watched(self, what: str):
        """Give the transaction's socket to the watchdog until it ends.

        It ends after the commit or rollback (the facade's block exits
        inside this one), so a commit that never returns is cut too.
        """
        with contextlib.ExitStack() as watching:
            def watch(connection):
                watching.enter_context(self.watchdog.watching(
                    connection.connection.dbapi_connection,
                    self.bounds.transaction, what))
            yield watch

    def hurry(self, grace: float) -> None:
        """End every transaction, now and later, within ``grace`` s."""
        self.watchdog.hurry(grace)

    def dispose(self) -> None:
        """Close every pooled connection."""
        if self._facade.is_started:
            self._facade.dispose_pool()
        if self._keepalive is not None:
            self._keepalive.close()
            self._keepalive = None

    def _setup_engine(self, engine: sa.engine.Engine) -> None:
        if engine.dialect.name != 'sqlite':
            dialects.setup_server(engine, self.bounds, self.watchdog)
            return
        dialects.setup_sqlite(engine, self._synchronous)
        self._sqlite_file = engine.url.database not in (None, '', ':memory:')

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


def _merge_query(ours: dict[str, str], operators: str) -> str:
    """Our driver parameters, then the operator's (which win)."""
    given = {part.split('=', 1)[0] for part in operators.split('&') if part}
    merged = [f'{k}={v}' for k, v in ours.items() if k not in given]
    if operators:
        merged.append(operators)
    return '&'.join(merged)


def make_sqlite_directory(connection: str) -> None:
    """Make the directory of a SQLite file, for a command that creates it.

    A :class:`Database` never does: a mistyped path must be an error, not
    an empty database (SQLite itself creates the file).
    """
    path = options.sqlite_file(connection)
    if path is not None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
