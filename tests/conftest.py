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


"""The database fixture: every database test runs on SQLite, PostgreSQL and
MariaDB/MySQL.

``database_server`` is parametrized over the three engines.  For a server
engine, the test session connects with an admin URL, creates databases with
random names (``msp_test_<hex>``) and drops them when the session ends, so
parallel runs on one server never meet.  SQLite databases are files in the
session's temporary directory.

Admin URLs, overridable by environment:

* ``MSP_TEST_POSTGRESQL_URL`` (default
  ``postgresql+psycopg2://postgres@127.0.0.1:5432/test``)
* ``MSP_TEST_MYSQL_URL`` (default ``mysql+pymysql://root@127.0.0.1:3306/test``)

A server that cannot be reached skips its tests, unless
``MSP_TEST_REQUIRE_DATABASES=1`` (CI), where it fails them.
"""

import contextlib
import os
import textwrap
import uuid

from oslo_config import cfg
import pytest
import sqlalchemy as sa

from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import migration
from multistore_prefix import gateway as gateway_mod

ENGINES = ('sqlite', 'postgresql', 'mysql')
ADMIN_URLS = {
    'postgresql': ('MSP_TEST_POSTGRESQL_URL',
                   'postgresql+psycopg2://postgres@127.0.0.1:5432/test'),
    'mysql': ('MSP_TEST_MYSQL_URL',
              'mysql+pymysql://root@127.0.0.1:3306/test'),
}
TABLES = ('image_tags', 'image_locations', 'image_properties', 'images')

#: Two file stores whose directories share a string prefix.
STORES = {'fast': '/var/lib/glance/images',
          'slow': '/var/lib/glance/images2'}


class DatabaseServer:
    """One engine for the test session: makes and drops databases.

    :ivar name: ``sqlite``, ``postgresql`` or ``mysql``.
    """

    def __init__(self, name: str, admin_url: str | None, directory):
        self.name = name
        self.admin_url = admin_url
        self.directory = directory
        self.created: list[str] = []
        self._admin = None
        self._synced = None

    def connect(self) -> None:
        """Check the server answers (for SQLite there is nothing to do)."""
        if self.admin_url is None:
            return
        self._admin = sa.create_engine(
            self.admin_url, isolation_level='AUTOCOMMIT',
            poolclass=sa.pool.NullPool)
        with self._admin.connect() as conn:
            conn.exec_driver_sql('SELECT 1')

    def create(self, prefix: str = 'msp_test') -> str:
        """A new empty database, named ``<prefix>_<hex>``; its URL."""
        name = f'{prefix}_{uuid.uuid4().hex[:12]}'
        self.created.append(name)
        if self.admin_url is None:
            return f'sqlite:///{self.directory}/{name}.sqlite'
        with self._admin.connect() as conn:
            if self.name == 'mysql':
                conn.exec_driver_sql(
                    f'CREATE DATABASE {name} CHARACTER SET utf8mb4')
            else:
                conn.exec_driver_sql(f'CREATE DATABASE {name}')
        return sa.engine.make_url(self.admin_url).set(
            database=name).render_as_string(hide_password=False)

    def create_synced(self) -> str:
        """A new database with the project's schema; its URL."""
        url = self.create()
        database = db_engine.Database(url)
        try:
            migration.sync(database)
        finally:
            database.dispose()
        return url

    def synced(self) -> str:
        """The session's database with the project's schema (made once)."""
        if self._synced is None:
            self._synced = self.create_synced()
        return self._synced

    def read_only_url(self, url: str) -> str:
        """The same database through a connection that may not write."""
        parsed = sa.engine.make_url(url)
        if self.name == 'sqlite':
            return f'sqlite:///file:{parsed.database}?mode=ro&uri=true'
        if self.name == 'postgresql':
            parsed = parsed.update_query_dict(
                {'options': '-c default_transaction_read_only=on'})
        else:
            parsed = parsed.update_query_dict(
                {'init_command': 'SET SESSION TRANSACTION READ ONLY'})
        return parsed.render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if self._admin is None:
            return
        with self._admin.connect() as conn:
            for name in self.created:
                if self.name == 'postgresql':
                    conn.exec_driver_sql(
                        f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')
                else:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS {name}')
        self._admin.dispose()


def _unreachable(name, url, exc):
    safe = sa.engine.make_url(url).render_as_string(hide_password=True)
    message = f'{name} server at {safe} unreachable: {exc}'
    if os.environ.get('MSP_TEST_REQUIRE_DATABASES') == '1':
        pytest.fail(message + ' (MSP_TEST_REQUIRE_DATABASES=1)')
    pytest.skip(message)


@pytest.fixture(scope='session', params=ENGINES)
def database_server(request, tmp_path_factory):
    """A :class:`DatabaseServer` for each of SQLite, PostgreSQL, MariaDB."""
    name = request.param
    admin_url = None
    if name in ADMIN_URLS:
        variable, default = ADMIN_URLS[name]
        admin_url = os.environ.get(variable) or default
    server = DatabaseServer(name, admin_url,
                            tmp_path_factory.mktemp(f'db-{name}'))
    try:
        server.connect()
    except Exception as exc:
        _unreachable(name, admin_url, exc)
    yield server
    server.drop_all()


@pytest.fixture
def db_url(database_server):
    """The URL of a database with the project's schema and no rows."""
    url = database_server.synced()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for table in TABLES:
                conn.exec_driver_sql(f'DELETE FROM {table}')
    finally:
        engine.dispose()
    return url


@pytest.fixture
def make_gateway_conf(tmp_path):
    """A parsed glance-api.conf naming a database and, optionally, stores."""
    def make(url: str, stores: dict | None = None) -> cfg.ConfigOpts:
        lines = []
        if stores:
            lines += ['[DEFAULT]', 'enabled_backends = ' + ', '.join(
                f'{store}:file' for store in stores)]
            for store, directory in stores.items():
                lines += [f'[{store}]',
                          f'filesystem_store_datadir = {directory}']
        lines += ['[database]', f'connection = {url}']
        path = tmp_path / f'glance-api-{uuid.uuid4().hex[:6]}.conf'
        path.write_text(textwrap.dedent('\n'.join(lines)) + '\n')
        conf = cfg.ConfigOpts()
        conf(['--config-file', str(path)], project='multistore-prefix',
             default_config_files=[])
        return conf
    return make


@pytest.fixture
def make_gateway(make_gateway_conf):
    """Gateways on a database, disposed of after the test.

    ``make_gateway(url)`` has the two file stores of :data:`STORES` (so
    resolve on GET is on); ``stores=None`` turns it off.
    """
    gateways = []

    def make(url: str, stores: dict | None = STORES) -> gateway_mod.Gateway:
        gateway = gateway_mod.Gateway(make_gateway_conf(url, stores))
        gateways.append(gateway)
        return gateway
    yield make
    for gateway in gateways:
        gateway.close()


class StatementLog:
    """The SQL statements an engine ran, while recording.

    :ivar statements: each statement's text.
    """

    def __init__(self):
        self.statements: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context,
                 executemany):
        self.statements.append(statement)

    @property
    def writes(self) -> list[str]:
        """The INSERT, UPDATE and DELETE statements."""
        return [s for s in self.statements
                if s.lstrip().split(None, 1)[0].upper()
                in ('INSERT', 'UPDATE', 'DELETE')]


@pytest.fixture
def statement_log():
    """``with statement_log(engine) as log:`` records what runs."""
    @contextlib.contextmanager
    def record(engine):
        log = StatementLog()
        sa.event.listen(engine, 'before_cursor_execute', log)
        try:
            yield log
        finally:
            sa.event.remove(engine, 'before_cursor_execute', log)
    return record


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'engines(*names): run only on these database engines '
        '(the others are not generated, rather than skipped)')


def pytest_collection_modifyitems(config, items):
    """Drop the engine cases an ``engines`` marker rules out."""
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker('engines')
        callspec = getattr(item, 'callspec', None)
        engine = callspec.params.get('database_server') if callspec else None
        if marker and engine is not None and engine not in marker.args:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
