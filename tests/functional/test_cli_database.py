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

"""Which database a command uses, and the drivers a plain install brings.

The command as an operator runs it (in this process; in a subprocess where
a module is hidden from it on ``PYTHONPATH``): an unset
``[database]/connection`` is an error on an operator's configuration, a
mistyped SQLite path is never created, every backfill says which database
it used, and Glance's own URL forms work after a plain install while a
driver that is not installed is named with its package.
"""

import importlib.metadata
import json
import os
import textwrap

import pytest
import sqlalchemy as sa

from tests.functional.command import run
from tests.functional.command import run_process
from tests.functional import test_backfill_cli as backfill_cli
from tests.functional.test_cli import assert_config_error
from tests.functional.test_cli import write_conf

STORES = """\
    [DEFAULT]
    enabled_backends = fast:file
    [fast]
    filesystem_store_datadir = /var/lib/glance/images
"""

PASSWORD = 'Db-Pa55-SECRET'


def stores_conf(tmp_path, database=''):
    return write_conf(tmp_path, STORES + textwrap.indent(
        textwrap.dedent(database), '    '))


def safe(url):
    return sa.engine.make_url(url).render_as_string(hide_password=True)


# -- an operator's configuration names its database ---------------------------

@pytest.mark.parametrize('database', [
    '',
    '[database]\n',
    '[database]\nconnection =\n',
], ids=['no-group', 'no-option', 'empty'])
@pytest.mark.parametrize('command', [['backfill'], ['db', 'sync']],
                         ids=['backfill', 'db-sync'])
def test_unset_connection_is_a_configuration_error(tmp_path, database,
                                                   command):
    conf = stores_conf(tmp_path, database)

    result = run('--config-file', conf, *command, cwd=tmp_path)

    line = assert_config_error(result, '[database]/connection')
    assert 'not set' in line
    # Nothing made where the embedded default would live.
    assert sorted(os.listdir(tmp_path)) == ['glance-api.conf']


def test_unset_connection_in_a_config_dir_too(tmp_path):
    conf_dir = tmp_path / 'glance-api.conf.d'
    conf_dir.mkdir()
    (conf_dir / '00-stores.conf').write_text(textwrap.dedent(STORES))

    result = run('--config-dir', conf_dir, 'backfill', cwd=tmp_path)

    assert_config_error(result, '[database]/connection')
    assert not (tmp_path / 'state').exists()


def test_connection_in_a_later_config_dir_counts(tmp_path, db_url):
    conf = stores_conf(tmp_path)
    conf_dir = tmp_path / 'glance-api.conf.d'
    conf_dir.mkdir()
    (conf_dir / '10-db.conf').write_text(
        f'[database]\nconnection = {db_url}\n')

    result = run('--config-file', conf, '--config-dir', conf_dir,
                 'backfill', '-f', 'json')

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)['database'] == safe(db_url)


@pytest.mark.parametrize('where', ['missing-file', 'missing-directory'])
def test_backfill_never_creates_a_sqlite_database(tmp_path, where):
    directory = tmp_path / ('glance' if where == 'missing-file'
                            else 'glnace')  # the typo
    if where == 'missing-file':
        directory.mkdir()
    path = directory / 'glance.sqlite'
    conf = stores_conf(tmp_path, f'[database]\nconnection = '
                                 f'sqlite:///{path}\n')

    result = run('--config-file', conf, 'backfill')

    line = assert_config_error(result, '[database]/connection', str(path),
                               'does not exist')
    assert 'db sync' in line
    assert not path.exists()
    assert directory.exists() == (where == 'missing-file')


def test_backfill_never_creates_a_sqlite_uri_database(tmp_path):
    path = tmp_path / 'glance.sqlite'
    conf = stores_conf(tmp_path, f'[database]\nconnection = '
                                 f'sqlite:///file:{path}?mode=rwc&uri=true\n')

    result = run('--config-file', conf, 'backfill')

    assert_config_error(result, str(path), 'does not exist')
    assert not path.exists()


def test_db_sync_makes_the_directory_it_is_asked_for(tmp_path):
    path = tmp_path / 'new' / 'dir' / 'own.sqlite'
    conf = stores_conf(tmp_path, f'[database]\nconnection = '
                                 f'sqlite:///{path}\n')

    result = run('--config-file', conf, 'db', 'sync')

    assert result.returncode == 0, result.stderr
    assert path.exists()


def test_not_a_url_names_the_option_not_the_value(tmp_path):
    conf = stores_conf(tmp_path, f'[database]\nconnection = '
                                 f'glance:{PASSWORD}@db/glance\n')

    result = run('--config-file', conf, 'backfill')

    assert_config_error(result, '[database]/connection',
                        'not a database URL')
    assert PASSWORD not in result.stderr


def test_a_raw_at_in_the_password_is_named_not_shown(tmp_path):
    # SQLAlchemy (and so Glance) ends the password at its first '@' and
    # takes the rest for the host; the error would show the password's tail.
    conf = stores_conf(tmp_path, '[database]\nconnection = mysql+pymysql'
                                 '://glance:Pa55@w0rd@db/glance\n')

    result = run('--config-file', conf, 'backfill')

    assert_config_error(result, '[database]/connection', "raw '@'", '%40')
    assert 'w0rd' not in result.stderr and 'Pa55' not in result.stderr


def test_unknown_database_type(tmp_path):
    conf = stores_conf(tmp_path, f'[database]\nconnection = '
                                 f'oracel://glance:{PASSWORD}@db/glance\n')

    result = run('--config-file', conf, 'backfill')

    assert_config_error(result, '[database]/connection', 'oracel://',
                        'mysql+pymysql://')
    assert PASSWORD not in result.stderr


# -- every run says which database it used ----------------------------------

def test_backfill_says_which_database_first_and_in_the_summary(
        engine, db_url, tmp_path):
    backfill_cli.seed(engine, backfill_cli.legacy_locations(6))
    conf = backfill_cli.write_conf(tmp_path, db_url)

    for args in (['-f', 'json'], ['-f', 'json', '--quiet'],
                 ['-f', 'json', '--dry-run']):
        result = backfill_cli.run_backfill(conf, *args)
        assert result.returncode == 0, result.stderr
        first = result.stderr.splitlines()[0]
        assert first.startswith(f'backfill: database {safe(db_url)}')
        assert ('(dry run)' in first) == ('--dry-run' in args)
        table = json.loads(result.stdout)
        assert list(table)[0] == 'database'
        assert table['database'] == safe(db_url)


@pytest.mark.engines('postgresql')
def test_the_password_is_masked_in_the_first_line_and_summary(
        engine, db_url, tmp_path):
    # The test server trusts local connections: any password connects.
    url = sa.engine.make_url(db_url).set(password=PASSWORD)
    url = url.render_as_string(hide_password=False)
    backfill_cli.seed(engine, backfill_cli.legacy_locations(3))
    conf = backfill_cli.write_conf(tmp_path, url)

    result = backfill_cli.run_backfill(conf, '-f', 'table')

    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert result.stderr.splitlines()[0] == f'backfill: database {safe(url)}'
    assert ':***@' in result.stderr.splitlines()[0]
    [row] = [line for line in result.stdout.splitlines()
             if line.startswith('| database ')]
    assert row.split('|')[2].strip() == safe(url)


@pytest.fixture
def engine(db_url):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


# -- drivers -----------------------------------------------------------------

def test_a_plain_install_brings_the_drivers_of_glance_urls():
    requires = importlib.metadata.requires('multistore-prefix')
    plain = [r for r in requires if 'extra ==' not in r]
    names = {r.split('>')[0].split('[')[0].lower() for r in plain}
    assert {'pymysql', 'psycopg'} <= names
    # Its psycopg2 module would collide with glance-api's psycopg2.
    assert 'psycopg2-binary' not in names
    extras = importlib.metadata.metadata('multistore-prefix').get_all(
        'Provides-Extra')
    # Old install commands keep working.
    assert {'mysql', 'postgresql', 'cinder'} <= set(extras)


@pytest.mark.engines('postgresql', 'mysql')
def test_glance_url_forms_work(engine, db_url, database_server, tmp_path):
    """The URLs of Glance's install guides, as written there."""
    url = sa.engine.make_url(db_url)
    forms = (['postgresql+psycopg2', 'postgresql']
             if database_server.name == 'postgresql' else ['mysql+pymysql'])
    backfill_cli.seed(engine, backfill_cli.legacy_locations(len(forms)))
    for form in forms:
        glance_url = url.set(drivername=form).render_as_string(
            hide_password=False)
        conf = backfill_cli.write_conf(tmp_path, glance_url)
        result = backfill_cli.run_backfill(conf, '-f', 'json', '--quiet')
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)['database'] == safe(glance_url)
    assert backfill_cli.done_count(engine) == len(forms)


@pytest.mark.engines('postgresql')
def test_psycopg2_urls_open_with_psycopg_3_where_psycopg2_is_absent(
        engine, db_url, tmp_path):
    """A plain install has psycopg 3 only: Glance's psycopg2 URLs work."""
    url = sa.engine.make_url(db_url)
    env = {'PYTHONPATH': block_module(tmp_path, 'psycopg2')}
    forms = ['postgresql+psycopg2', 'postgresql']
    backfill_cli.seed(engine, backfill_cli.legacy_locations(len(forms)))
    for form in forms:
        glance_url = url.set(drivername=form).render_as_string(
            hide_password=False)
        conf = backfill_cli.write_conf(tmp_path, glance_url)
        result = run_process('--config-file', conf, 'backfill', '-f',
                             'json', '--quiet', env=env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)['database'] == safe(glance_url)
    assert backfill_cli.done_count(engine) == len(forms)


def block_module(tmp_path, module):
    """A PYTHONPATH entry on which ``import module`` fails as if absent."""
    stub = tmp_path / 'blocked' / module
    stub.mkdir(parents=True)
    (stub / '__init__.py').write_text(
        f'raise ModuleNotFoundError("No module named {module!r}", '
        f'name={module!r})\n')
    return str(stub.parent)


@pytest.mark.parametrize('scheme, module, package', [
    ('mysql+pymysql', 'pymysql', 'PyMySQL'),
    # psycopg 3 stands in for psycopg2 (the test above): both absent.
    ('postgresql+psycopg2', 'psycopg2 psycopg', 'psycopg2-binary'),
    ('postgresql', 'psycopg', 'psycopg[binary]'),
    ('mysql', 'MySQLdb', 'mysqlclient'),
    ('postgresql+pg8000', 'pg8000', 'pg8000'),
])
def test_a_driver_not_installed_names_its_package(tmp_path, scheme, module,
                                                  package):
    conf = stores_conf(tmp_path, f'[database]\nconnection = '
                                 f'{scheme}://glance:{PASSWORD}@127.0.0.1:1/'
                                 f'glance\n')
    blocked = [block_module(tmp_path, name) for name in module.split()]
    env = {'PYTHONPATH': blocked[0]}
    module = module.split()[0]

    for command in (['backfill'], ['db', 'sync']):
        result = run_process('--config-file', conf, *command, env=env)
        line = assert_config_error(result, '[database]/connection',
                                   f'{scheme}://', module,
                                   f'pip install "{package}"')
        assert 'No module named' not in line
        assert PASSWORD not in result.stderr
