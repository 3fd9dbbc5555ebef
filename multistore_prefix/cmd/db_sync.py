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


"""``multistore-prefix db sync``: create or upgrade the project's database."""

from cliff import command
from oslo_db import exception as db_exc
from sqlalchemy import exc as sa_exc

from multistore_prefix import cmd
from multistore_prefix.cmd import connection as cmd_connection
from multistore_prefix.cmd import helptext
from multistore_prefix.db import migration
from multistore_prefix import urls


class DbSync(helptext.HelpWithExitCodes, command.Command):
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

    exit_codes = (
        (cmd.EXIT_OK, 'the schema is created, upgraded or already current'),
        (cmd.EXIT_FAILURE, 'a database error (it cannot be reached) or an '
                           'unexpected error'),
        (cmd.EXIT_CONFIG, f'{helptext.CONFIG_TEXT} (also: the database is '
                          f'Glance\'s, or a newer multistore-prefix made '
                          f'it; nothing was changed)'),
        (cmd.EXIT_INTERRUPTED, helptext.INTERRUPTED_TEXT),
    )

    def take_action(self, parsed_args):
        database = cmd_connection.open_database(
            self.app.conf_or_defaults(),
            operator=self.app.configured, create=True)
        try:
            try:
                before = migration.current_revision(database)
            except (db_exc.DBConnectionError, sa_exc.OperationalError) as exc:
                reason = str(exc).strip().splitlines()[0]
                raise cmd.CommandError(
                    f'cannot connect to {database.safe_url}: '
                    f'{urls.mask_text(reason)}',
                    exit_code=cmd.EXIT_FAILURE) from None
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
