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


"""``db sync``: create and upgrade the project's own schema, never Glance's.

Before alembic runs, :func:`check_ownership` looks at what the database
holds.  A database Glance manages has Glance's migration history: its
``alembic_version`` table (revision ids such as ``liberty``,
``pike_contract01``, ``2024_1_expand01``), or sqlalchemy-migrate's
``migrate_version`` table from before Glance moved to alembic.  Such a
database, or one whose image tables no known migration history explains, is
refused with nothing changed.  The project's own history lives in a table
of its own, :data:`VERSION_TABLE`, so the two can never be confused.
"""

import os
import re
from typing import NamedTuple

import sqlalchemy as sa

from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import exceptions

#: The project's alembic version table (Glance's is ``alembic_version``).
VERSION_TABLE = 'multistore_prefix_version'

_MIGRATIONS = os.path.join(os.path.dirname(__file__), 'migrations')
_GLANCE_ALEMBIC_TABLE = 'alembic_version'
_MIGRATE_TABLE = 'migrate_version'
_IMAGE_TABLES = ('images', 'image_properties', 'image_locations',
                 'image_tags', 'image_members', 'tasks')
# liberty, mitaka01, ocata01, pike01, ocata_expand01, rocky_contract02,
# 2023_1_expand01...: every revision id Glance has used.
_GLANCE_REVISION = re.compile(
    r'^(liberty|[a-z]+\d\d|[a-z]+_(expand|contract)\d\d'
    r'|\d{4}_\d+_(expand|contract)\d\d)$')

OWNER_EMPTY = 'empty'
OWNER_OURS = 'ours'
OWNER_GLANCE = 'glance'
OWNER_UNKNOWN = 'unknown'


class SchemaState(NamedTuple):
    """Who manages a database's schema (an ``OWNER_*``), and the evidence.

    ``revision`` is the project's, when the schema is ours.
    """

    owner: str
    revision: str | None = None
    evidence: str = ''

    @property
    def foreign(self) -> bool:
        return self.owner in (OWNER_GLANCE, OWNER_UNKNOWN)


def alembic_config():
    """The alembic configuration of the project's migrations.

    (alembic is imported here: the backfill only reads the schema's
    state, and importing alembic is a quarter of its start-up.)
    """
    from alembic import config as alembic_cfg
    config = alembic_cfg.Config(os.path.join(_MIGRATIONS, 'alembic.ini'))
    config.attributes['configure_logger'] = False
    return config


def _scripts():
    from alembic import script as alembic_script
    return alembic_script.ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    return _scripts().get_current_head()


def inspect_schema(conn: sa.engine.Connection) -> SchemaState:
    """What the database holds; reads only."""
    tables = set(sa.inspect(conn).get_table_names())
    if _MIGRATE_TABLE in tables:
        repositories = [str(r) for r in conn.execute(sa.text(
            f'SELECT repository_id FROM {_MIGRATE_TABLE}')).scalars()]
        evidence = (f'table {_MIGRATE_TABLE} (sqlalchemy-migrate history, '
                    f'repository {", ".join(repositories) or "none"})')
        glance = any('glance' in r.lower() for r in repositories)
        return SchemaState(OWNER_GLANCE if glance or tables & {'images'}
                           else OWNER_UNKNOWN, evidence=evidence)
    if _GLANCE_ALEMBIC_TABLE in tables:
        revisions = list(conn.execute(sa.text(
            f'SELECT version_num FROM {_GLANCE_ALEMBIC_TABLE}')).scalars())
        glance = [r for r in revisions if _GLANCE_REVISION.match(r)]
        if glance:
            return SchemaState(OWNER_GLANCE, evidence=(
                f'table {_GLANCE_ALEMBIC_TABLE} holds Glance revision '
                f'{", ".join(glance)}'))
        return SchemaState(OWNER_UNKNOWN, evidence=(
            f'table {_GLANCE_ALEMBIC_TABLE} holds revision '
            f'{", ".join(revisions) or "(none)"} of another application'))
    if VERSION_TABLE in tables:
        revisions = list(conn.execute(sa.text(
            f'SELECT version_num FROM {VERSION_TABLE}')).scalars())
        return SchemaState(OWNER_OURS, revisions[0] if revisions else None,
                           f'table {VERSION_TABLE}')
    present = sorted(tables.intersection(_IMAGE_TABLES))
    if present:
        return SchemaState(OWNER_UNKNOWN, evidence=(
            f'table {", ".join(present)} exists with no migration history'))
    return SchemaState(OWNER_EMPTY)


#: The columns the backfill reads and writes, by table.
BACKFILL_COLUMNS = {
    'images': ('id', 'status', 'deleted'),
    'image_locations': ('id', 'image_id', 'value', 'meta_data', 'status',
                        'deleted', 'updated_at'),
}


def missing_columns(conn: sa.engine.Connection,
                    needed=BACKFILL_COLUMNS) -> list[str]:
    """``table`` or ``table.column`` names that ``needed`` lacks here."""
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    missing = []
    for table, columns in needed.items():
        if table not in tables:
            missing.append(table)
            continue
        present = {c['name'] for c in inspector.get_columns(table)}
        missing += [f'{table}.{c}' for c in columns if c not in present]
    return missing


def check_ownership(conn: sa.engine.Connection) -> SchemaState:
    """The schema state, if ``db sync`` may work on it.

    :raises ForeignSchema: Glance (or an unknown tool) manages it.
    :raises SchemaTooNew: a newer multistore-prefix migrated it.
    """
    state = inspect_schema(conn)
    if state.foreign:
        raise exceptions.ForeignSchema(state.owner, state.evidence)
    if state.revision is not None:
        try:
            _scripts().get_revision(state.revision)
        except Exception:
            raise exceptions.SchemaTooNew(state.revision) from None
    return state


def current_revision(database: db_engine.Database) -> str | None:
    """The project's revision of the database, ``None`` if it has none."""
    with database.engine.connect() as conn:
        state = inspect_schema(conn)
    return state.revision if state.owner == OWNER_OURS else None


def sync(database: db_engine.Database) -> str:
    """Create or upgrade the project's schema; the revision it is at.

    On PostgreSQL and SQLite it runs in one transaction: all or nothing.

    :raises ForeignSchema: the database is Glance's (or unknown); nothing
        was changed.
    :raises SchemaTooNew: a newer multistore-prefix migrated it.
    """
    with database.engine.begin() as conn:
        state = check_ownership(conn)
        head = head_revision()
        if state.revision != head:
            from alembic import command as alembic_command
            config = alembic_config()
            config.attributes['connection'] = conn
            alembic_command.upgrade(config, 'head')
    if database.engine.dialect.name == 'sqlite':
        # Readers and one writer at a time, without readers blocking the
        # writer.  The journal mode is a property of the file: set once
        # here, on the project's own database only.
        raw = database.engine.raw_connection()
        try:
            raw.driver_connection.execute('PRAGMA journal_mode=WAL')
        finally:
            raw.close()
    return head
