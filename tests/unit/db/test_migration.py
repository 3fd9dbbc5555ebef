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


"""Who owns a schema, and the migration scripts: multistore_prefix/db/
migration.py and migrations/."""

import subprocess
import sys

import pytest
import sqlalchemy as sa

from multistore_prefix.db import migration
from multistore_prefix.db import models


@pytest.fixture
def conn():
    engine = sa.create_engine('sqlite://')
    with engine.begin() as connection:
        yield connection
    engine.dispose()


@pytest.mark.parametrize('revision', [
    'liberty', 'mitaka01', 'mitaka02', 'ocata01', 'pike01',
    'ocata_expand01', 'ocata_contract01', 'queens_contract01',
    'rocky_expand02', 'wallaby_expand01', '2023_1_expand01',
    '2024_1_contract01', '2026_2_expand01'])
def test_glance_revisions_are_recognised(conn, revision):
    conn.exec_driver_sql('CREATE TABLE alembic_version (version_num '
                         'VARCHAR(32) PRIMARY KEY)')
    conn.execute(sa.text('INSERT INTO alembic_version VALUES (:r)'),
                 {'r': revision})
    state = migration.inspect_schema(conn)
    assert (state.owner, state.foreign) == (migration.OWNER_GLANCE, True)
    assert revision in state.evidence


def test_empty_database(conn):
    conn.exec_driver_sql('CREATE TABLE unrelated (x INTEGER)')
    assert migration.inspect_schema(conn) == migration.SchemaState(
        migration.OWNER_EMPTY)


def test_image_tables_without_history(conn):
    models.metadata.create_all(conn)
    state = migration.inspect_schema(conn)
    assert state.owner == migration.OWNER_UNKNOWN
    assert 'images' in state.evidence


def test_migrate_version_of_another_application(conn):
    conn.exec_driver_sql('CREATE TABLE migrate_version (repository_id '
                         'VARCHAR(250), repository_path TEXT, version INT)')
    conn.exec_driver_sql("INSERT INTO migrate_version VALUES ('nova', '', 1)")
    assert migration.inspect_schema(conn).owner == migration.OWNER_UNKNOWN


def test_own_history(conn):
    conn.exec_driver_sql(f'CREATE TABLE {migration.VERSION_TABLE} '
                         f'(version_num VARCHAR(32) PRIMARY KEY)')
    conn.exec_driver_sql(
        f"INSERT INTO {migration.VERSION_TABLE} VALUES ('msp0001')")
    state = migration.check_ownership(conn)
    assert (state.owner, state.revision) == (migration.OWNER_OURS, 'msp0001')


def test_one_head_and_a_version_table_of_our_own():
    assert migration.head_revision() == 'msp0001'
    assert migration.VERSION_TABLE != 'alembic_version'


def test_alembic_command_line_uses_the_same_checks(tmp_path):
    """``alembic -c .../alembic.ini -x url=...`` refuses Glance too."""
    ini = migration.alembic_config().config_file_name
    url = f'sqlite:///{tmp_path}/own.sqlite'
    run = [sys.executable, '-m', 'alembic', '-c', ini, '-x', f'url={url}',
           'upgrade', 'head']
    subprocess.run(run, check=True, capture_output=True)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        assert migration.inspect_schema(connection).revision == 'msp0001'
        connection.exec_driver_sql(
            'CREATE TABLE alembic_version (version_num VARCHAR(32))')
        connection.exec_driver_sql(
            "INSERT INTO alembic_version VALUES ('liberty')")
    engine.dispose()
    result = subprocess.run(run, capture_output=True, text=True)
    assert result.returncode != 0
    assert 'Glance manages this database' in result.stderr


def test_the_backfill_starts_without_alembic():
    # alembic is a quarter of the command's start-up and only migrations
    # need it: the backfill's schema check reads the tables itself.
    code = ('import sys; from multistore_prefix.cmd import backfill, main; '
            'print(sorted(m for m in sys.modules if m == "alembic" '
            'or m.startswith("alembic.")))')
    out = subprocess.run([sys.executable, '-c', code], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == '[]'
    assert migration.head_revision()  # and migrations still find it
