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


"""``db sync``: the project's own schema, and a refusal for Glance's.

A Glance database is recognised by its migration history: Glance's
``alembic_version`` (revision ids such as ``liberty``, ``pike_contract01``,
``2024_1_contract01``) or sqlalchemy-migrate's ``migrate_version``.  Such a
database comes out of ``db sync`` exactly as it went in.
"""

import argparse
import io

import pytest
import sqlalchemy as sa

from multistore_prefix.cmd import db as db_cmd
from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import exceptions
from multistore_prefix.db import migration
from multistore_prefix.db import models
from tests.functional import command


def _engine(url):
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def _schema(url):
    """Everything a schema change could touch, and every row of history."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            tables = {}
            for table in sorted(inspector.get_table_names()):
                tables[table] = (
                    [(c['name'], str(c['type'])) for c in
                     inspector.get_columns(table)],
                    sorted(str(sorted(i.items()))
                           for i in inspector.get_indexes(table)),
                    sorted(str(sorted(u.items())) for u in
                           inspector.get_unique_constraints(table)),
                    [tuple(r) for r in conn.execute(
                        sa.text(f'SELECT * FROM {table}'))])
            return tables
    finally:
        engine.dispose()


def _glance_database(url, history):
    """A database with Glance's layout and the given migration history."""
    engine = _engine(url)
    try:
        models.metadata.create_all(engine)
        with engine.begin() as conn:
            if history == 'migrate':
                conn.exec_driver_sql(
                    'CREATE TABLE migrate_version (repository_id '
                    'VARCHAR(250) PRIMARY KEY, repository_path TEXT, '
                    'version INTEGER)')
                conn.exec_driver_sql(
                    "INSERT INTO migrate_version VALUES ('Glance Migrations',"
                    " '/usr/lib/python3/glance/db/sqlalchemy/migrate_repo',"
                    " 44)")
            elif history is not None:
                conn.exec_driver_sql(
                    'CREATE TABLE alembic_version (version_num VARCHAR(32) '
                    'NOT NULL PRIMARY KEY)')
                conn.execute(sa.text('INSERT INTO alembic_version VALUES '
                                     '(:v)'), {'v': history})
    finally:
        engine.dispose()


class _App:
    #: The configuration is the operator's (it names the database).
    options = argparse.Namespace(config_sources=[('--config-file', 'x')])

    def __init__(self, conf):
        self.conf = conf
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()


def _db_sync(conf):
    app = _App(conf)
    result = db_cmd.DbSync(app, None).run(argparse.Namespace())
    return result, app.stdout.getvalue()


def test_creates_then_keeps_the_schema(database_server, make_gateway_conf):
    url = database_server.create()
    conf = make_gateway_conf(url)
    assert _db_sync(conf) == (
        0, f'{_safe(url)}: schema created at revision '
           f'{migration.head_revision()}\n')
    created = _schema(url)
    assert set(created) == {'images', 'image_properties', 'image_locations',
                            'image_tags', migration.VERSION_TABLE}
    assert _db_sync(conf)[1].endswith(
        f'schema already at revision {migration.head_revision()}\n')
    assert _schema(url) == created


def test_own_schema_has_glance_columns(database_server):
    url = database_server.create_synced()
    engine = _engine(url)
    try:
        inspector = sa.inspect(engine)
        for table in models.metadata.sorted_tables:
            columns = {c['name'] for c in inspector.get_columns(table.name)}
            assert {c.name for c in table.columns} <= columns
            assert columns - {c.name for c in table.columns} <= {
                'live', 'value_hash'}
    finally:
        engine.dispose()


@pytest.mark.parametrize('history, owner', [
    ('liberty', 'glance'),
    ('pike_contract01', 'glance'),
    ('ocata01', 'glance'),
    ('rocky_expand02', 'glance'),
    ('2024_1_contract01', 'glance'),
    ('migrate', 'glance'),
    ('4f1e2d3c5b6a', 'unknown'),
    (None, 'unknown'),
])
def test_refuses_a_database_it_does_not_manage(database_server, history,
                                               owner, make_gateway_conf):
    url = database_server.create()
    _glance_database(url, history)
    before = _schema(url)
    database = db_engine.Database(url)
    try:
        with pytest.raises(exceptions.ForeignSchema) as caught:
            migration.sync(database)
    finally:
        database.dispose()
    assert caught.value.owner == owner
    assert 'changed nothing' in str(caught.value)
    if history not in (None, 'migrate'):
        assert history in str(caught.value)
    with pytest.raises(exceptions.ForeignSchema):
        _db_sync(make_gateway_conf(url))
    assert _schema(url) == before


def test_refuses_a_newer_revision(database_server):
    url = database_server.create()
    database = db_engine.Database(url)
    try:
        migration.sync(database)
        with database.engine.begin() as conn:
            conn.execute(sa.text(
                f'UPDATE {migration.VERSION_TABLE} SET version_num = '
                f"'msp9999'"))
        with pytest.raises(exceptions.SchemaTooNew):
            migration.sync(database)
    finally:
        database.dispose()


def test_runtime_never_changes_a_glance_schema(database_server,
                                               make_gateway, statement_log):
    """On Glance's own schema: reads, and UPDATEs of rows; no DDL."""
    url = database_server.create()
    _glance_database(url, '2024_1_contract01')
    gateway = make_gateway(url, stores=None)
    factory, repo = gateway.get_image_factory(), gateway.get_repo()
    image = factory.new_image(name='glance', extra_properties={'a': '1'})
    image.locations.append({'url': 'file:///var/lib/glance/images2/x',
                            'metadata': {}, 'status': 'active'})
    repo.add(image)
    before = {table: columns for table, (columns, *_rest)
              in _schema(url).items()}
    resolving = make_gateway(url)
    with statement_log(resolving.database.engine) as log:
        resolved = resolving.get_repo().get(image.image_id)
        resolved.extra_properties['a'] = '2'
        resolving.get_repo().save(resolved)
    assert resolved.locations[0]['metadata'] == {'store': 'slow'}
    assert [s.split()[0].upper() for s in log.writes] == ['UPDATE', 'UPDATE']
    assert not [s for s in log.statements
                if s.split()[0].upper() in ('CREATE', 'ALTER', 'DROP')]
    again = make_gateway(url, stores=None).get_repo().get(image.image_id)
    assert again.extra_properties == {'a': '2'}
    assert again.locations[0]['metadata'] == {'store': 'slow'}
    assert {table: columns for table, (columns, *_rest)
            in _schema(url).items()} == before


def _run_cli(conf_file):
    """``multistore-prefix --config-file F db sync`` in this process."""
    result = command.run('--config-file', conf_file, 'db', 'sync')
    return result.returncode, result.stdout, result.stderr


def test_command_line_refuses_glance_with_non_zero_exit(
        database_server, tmp_path):
    url = database_server.create()
    _glance_database(url, 'pike_contract01')
    before = _schema(url)
    conf_file = tmp_path / 'glance-api.conf'
    conf_file.write_text(f'[database]\nconnection = {url}\n')
    code, out, err = _run_cli(conf_file)
    assert code != 0
    assert 'Glance manages this database' in err
    assert 'pike_contract01' in err
    assert out == ''
    assert _schema(url) == before


def test_command_line_creates_the_schema(database_server, tmp_path):
    url = database_server.create()
    conf_file = tmp_path / 'glance-api.conf'
    conf_file.write_text(f'[database]\nconnection = {url}\n')
    code, out, _err = _run_cli(conf_file)
    assert code == 0
    assert out == (f'{_safe(url)}: schema created at revision '
                   f'{migration.head_revision()}\n')


def _safe(url):
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def test_properties_come_back_on_a_glance_schema(database_server,
                                                 make_gateway):
    """A property removed and set again revives its row, as in Glance.

    Glance's unique (image_id, name) counts deleted rows.
    """
    url = database_server.create()
    _glance_database(url, '2024_1_contract01')
    gateway = make_gateway(url, stores=None)
    repo = gateway.get_repo()
    image = gateway.get_image_factory().new_image(
        name='g', extra_properties={'a': '1'})
    repo.add(image)
    del image.extra_properties['a']
    repo.save(image)
    image.extra_properties['a'] = '2'
    repo.save(image)
    assert repo.get(image.image_id).extra_properties == {'a': '2'}
    other = repo.get(image.image_id)
    image.extra_properties['b'] = 'x'
    other.extra_properties['b'] = 'y'
    repo.save(image)
    with pytest.raises(exceptions.Duplicate):
        repo.save(other)


def test_command_line_needs_no_config_for_the_embedded_default(tmp_path):
    result = command.run('db', 'sync', cwd=tmp_path,
                         env={'MSP_STATE_DIR': str(tmp_path / 'state')})
    assert result.returncode == 0, result.stderr
    database = tmp_path / 'state' / 'multistore-prefix.sqlite'
    assert str(database) in result.stdout
    assert 'images' in sa.inspect(
        sa.create_engine(f'sqlite:///{database}')).get_table_names()
