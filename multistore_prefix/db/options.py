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


"""Where the database is: ``[database]`` options and the embedded default.

The connection comes from ``[database]/connection`` of the operator's
configuration (glance-api.conf has one).  Without it, the embedded default
is a SQLite file, ``multistore-prefix.sqlite``, in the state directory:
``$MSP_STATE_DIR`` if set, else ``./state`` under the current directory.
The command line uses that default only where it makes a database (``db
sync`` without configuration, ``demo``); :func:`configured_connection`
tells an operator's own value from the default.
"""

import os
import urllib.parse

from oslo_config import cfg
from oslo_db import options as db_options
import sqlalchemy as sa

STATE_DIR_ENV = 'MSP_STATE_DIR'
DEFAULT_STATE_DIR = 'state'
DATABASE_FILE = 'multistore-prefix.sqlite'

#: The distribution to install for a DB-API module SQLAlchemy could not
#: import (the module's own name when it is not listed).
DRIVER_PACKAGES = {
    'pymysql': 'PyMySQL',
    'MySQLdb': 'mysqlclient',
    'psycopg2': 'psycopg2-binary',
    'psycopg': 'psycopg[binary]',
    'pg8000': 'pg8000',
    'asyncpg': 'asyncpg',
    'mysql': 'mysql-connector-python',
    'mariadb': 'mariadb',
    'oracledb': 'oracledb',
    'pyodbc': 'pyodbc',
}

# Where a value comes from when the configuration does not set it.
_DEFAULTS = (cfg.Locations.opt_default, cfg.Locations.set_default)


def state_dir() -> str:
    """The state directory, absolute (it may not exist yet)."""
    return os.path.abspath(os.environ.get(STATE_DIR_ENV)
                           or DEFAULT_STATE_DIR)


def default_connection() -> str:
    """The SQLAlchemy URL of the embedded SQLite database."""
    return 'sqlite:///' + os.path.join(state_dir(), DATABASE_FILE)


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register oslo.db's ``[database]`` options with the embedded default.

    When the caller registered them already (glance-api, for the filter),
    they are left exactly as they are: the embedded default is this
    tool's, never glance-api's.
    """
    if 'database' in conf and 'connection' in conf.database:
        return
    db_options.set_defaults(conf, connection=default_connection())


def configured_connection(conf: cfg.ConfigOpts) -> str | None:
    """``[database]/connection`` as the configuration sets it.

    ``None`` when no source sets it (or sets it empty): the embedded
    default does not count.
    """
    register_opts(conf)
    where = conf.get_location('connection', group='database')
    if where is None or where.location in _DEFAULTS:
        return None
    return conf.database.connection or None


def sqlite_file(connection: str) -> str | None:
    """The file of a SQLite URL, absolute; ``None`` for other databases.

    In-memory databases have no file either.  ``sqlite:///file:PATH?...
    &uri=true`` (SQLite's URI form) gives PATH.
    """
    url = sa.engine.make_url(connection)
    if url.get_backend_name() != 'sqlite':
        return None
    database = url.database or ''
    if database.startswith('file:'):
        if url.query.get('uri') != 'true':
            return os.path.abspath(database)
        # SQLite decodes %XX in the URI's path; SQLAlchemy passes the
        # query (mode=...) beside it.
        path = urllib.parse.urlparse(database).path
        if path in ('', ':memory:') or url.query.get('mode') == 'memory':
            return None
        return os.path.abspath(urllib.parse.unquote(path))
    if database in ('', ':memory:'):
        return None
    return os.path.abspath(database)


def _import_dbapi(dialect) -> None:
    # SQLAlchemy 2.0 renamed the classmethod (1.4: dbapi()).
    load = getattr(dialect, 'import_dbapi', None) or dialect.dbapi
    load()


def driver_connection(connection: str) -> str:
    """The URL to open: ``connection``, or its psycopg 3 form.

    A psycopg2 URL (``postgresql+psycopg2://``, or a bare ``postgresql://``
    where SQLAlchemy reads it so) opens with psycopg 3 when psycopg2 is not
    installed: this package installs psycopg 3 (module ``psycopg``), never
    psycopg2-binary, whose ``psycopg2`` module would collide with the
    psycopg2 a glance-api environment has.  Any other URL is returned as
    it is.
    """
    url = sa.engine.make_url(connection)
    if url.get_backend_name() != 'postgresql':
        return connection
    dialect = url.get_dialect()
    if dialect.driver != 'psycopg2':
        return connection
    try:
        _import_dbapi(dialect)
        return connection
    except ImportError:
        pass
    try:
        psycopg = url.set(drivername='postgresql+psycopg').get_dialect()
        _import_dbapi(psycopg)
    except (ImportError, sa.exc.NoSuchModuleError):
        # Neither (or SQLAlchemy 1.4, which has no psycopg 3 dialect):
        # missing_driver() names psycopg2.
        return connection
    # Only the scheme changes: the rest (a password's escapes) stays as
    # the operator wrote it.
    return 'postgresql+psycopg' + connection[connection.index(':'):]


def missing_driver(connection: str) -> tuple[str, str] | None:
    """``(module, distribution to install)`` of a URL's missing driver.

    ``None`` when the driver imports (psycopg 3 standing in for psycopg2
    counts, see :func:`driver_connection`).

    :raises sqlalchemy.exc.ArgumentError: not a database URL.
    :raises sqlalchemy.exc.NoSuchModuleError: no such dialect or driver.
    """
    dialect = sa.engine.make_url(driver_connection(connection)).get_dialect()
    try:
        _import_dbapi(dialect)
    except ImportError as exc:
        # A module that is there but fails to load (psycopg without a
        # libpq) has no name: the dialect's driver says what to install.
        module = (exc.name or dialect.driver).partition('.')[0]
        return module, DRIVER_PACKAGES.get(module, module)
    return None
