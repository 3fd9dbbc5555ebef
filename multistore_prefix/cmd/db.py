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

"""Which database a command uses, and ``db sync``, which makes it.

On an operator's configuration the database is ``[database]/connection``
and nothing else: an unset option is an error, never the embedded default
(an operator who forgot the option must not backfill an empty SQLite file).
A command that only reads and updates a database never creates one, nor
its directory; a URL whose driver is not installed names the package.
"""

import os

from cliff import command
from oslo_config import cfg
from sqlalchemy import exc as sa_exc

from multistore_prefix import cmd
from multistore_prefix.cmd import main
from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import migration
from multistore_prefix.db import options as db_options

NO_CONNECTION = (
    '[database]/connection is not set: set it to the Glance database '
    '(as in glance-api.conf, e.g. mysql+pymysql://glance:PASSWORD@'
    'db.example.com/glance); the embedded SQLite default is only for '
    '"db sync" and "demo" without configuration')

#: URL forms that work with what multistore-prefix installs.
INSTALLED_FORMS = 'mysql+pymysql://, postgresql+psycopg2:// or postgresql://'


def open_database(conf: cfg.ConfigOpts, *, operator: bool = True,
                  create: bool = False) -> db_engine.Database:
    """The database a command works on, checked before any connection.

    :param operator: ``conf`` is the operator's (not the embedded
        defaults): ``[database]/connection`` must be set there.
    :param create: the command makes the database (``db sync``): the
        directory of a SQLite file is made.  Otherwise the file must exist.
    """
    with cmd.config_errors(conf):
        if operator:
            connection = db_options.configured_connection(conf)
            if connection is None:
                raise cmd.ConfigurationError(NO_CONNECTION)
        else:
            db_options.register_opts(conf)
            connection = conf.database.connection
    _check_driver(connection)
    path = db_options.sqlite_file(connection)
    if path is not None and create:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError as exc:
            raise cmd.ConfigurationError(
                f'[database]/connection: cannot make the directory of '
                f'{path}: {exc.strerror}') from None
    elif path is not None and not os.path.exists(path):
        raise cmd.ConfigurationError(
            f'[database]/connection: the SQLite database {path} does not '
            f'exist; check the path (this command never creates a '
            f'database; "multistore-prefix db sync" makes the project\'s '
            f'own)')
    return db_engine.Database.from_config(conf)


def _check_driver(connection: str) -> None:
    _, sep, rest = connection.partition('://')
    if sep and rest.partition('/')[0].count('@') > 1:
        # Never print the value: the '@' is in the password, most often.
        raise cmd.ConfigurationError(
            "[database]/connection: the user name or password holds a raw "
            "'@', which ends it early (Glance reads it the same way): "
            "write it as %40")
    try:
        missing = db_options.missing_driver(connection)
    except sa_exc.NoSuchModuleError:
        scheme = connection.partition(':')[0]
        raise cmd.ConfigurationError(
            f'[database]/connection: SQLAlchemy knows no database '
            f'"{scheme}://"; use {INSTALLED_FORMS} (Glance\'s '
            f'forms)') from None
    except sa_exc.ArgumentError:
        # The value is not quoted: it may hold a password.
        raise cmd.ConfigurationError(
            '[database]/connection is not a database URL: write it as in '
            'glance-api.conf, e.g. mysql+pymysql://glance:PASSWORD@'
            'db.example.com/glance') from None
    if missing is not None:
        module, package = missing
        scheme = connection.partition(':')[0]
        raise cmd.ConfigurationError(
            f'[database]/connection: {scheme}:// needs the Python module '
            f'{module}, which is not installed: pip install "{package}" '
            f'(or use {INSTALLED_FORMS}, which work as installed)')


def check_schema(database) -> None:
    """The database holds Glance's image tables, with every column read."""
    with database.reader() as conn:
        state = migration.inspect_schema(conn)
        missing = ([] if state.owner == migration.OWNER_EMPTY
                   else migration.missing_columns(conn))
    if state.owner == migration.OWNER_EMPTY:
        raise cmd.CommandError(
            f'{database.safe_url} has no image tables: point '
            f'[database]/connection at Glance\'s database, or run '
            f'"multistore-prefix db sync" for the embedded default')
    if missing:
        raise cmd.CommandError(
            f'{database.safe_url} is not a Glance database: it lacks '
            f'{", ".join(missing)}; point [database]/connection at '
            f'Glance\'s database (the one glance-api.conf names)')


class DbSync(cmd.HelpWithExitCodes, command.Command):
    """Create or upgrade multistore-prefix's own database schema.

    The database is [database]/connection of the configuration given with
    --config-file or --config-dir (there it must be set); without any
    configuration, the embedded SQLite file state/multistore-prefix.sqlite
    (the state directory is $MSP_STATE_DIR when set).  The schema is
    Glance's image tables plus unique constraints that hold on SQLite,
    PostgreSQL and MariaDB/MySQL.  A database whose schema Glance manages
    (Glance's alembic_version or migrate_version table is there) is
    refused with nothing changed: the tool only ever reads and updates
    rows of such a database.
    """

    exit_codes = {
        cmd.EXIT_OK: 'the schema is created, upgraded or already current',
        cmd.EXIT_FAILURE: 'a database error (it cannot be reached) or an '
                          'unexpected error',
        cmd.EXIT_CONFIG: f'{cmd.CONFIG_TEXT} (also: the database is '
                         f'Glance\'s, or a newer multistore-prefix made it; '
                         f'nothing was changed)',
    }

    def take_action(self, parsed_args):
        configured = bool(self.app.options.config_sources)
        database = open_database(
            self.app.conf if configured else main.load_config([]),
            operator=configured, create=True)
        try:
            with cmd.database_errors(f'cannot connect to {database.safe_url}'):
                before = migration.current_revision(database)
            after = migration.sync(database)
        finally:
            database.dispose()
        if before == after:
            what = f'already at revision {after}'
        elif before is None:
            what = f'created at revision {after}'
        else:
            what = f'upgraded from revision {before} to {after}'
        self.app.stdout.write(f'{database.safe_url}: schema {what}\n')
