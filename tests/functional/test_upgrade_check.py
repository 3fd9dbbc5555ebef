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

"""``multistore-prefix upgrade check``, run as an operator runs it.

In this process (the console script, for ``PYTHONWARNINGS``), on SQLite,
PostgreSQL and MariaDB:
its counts against the test's own seed, the exit codes of
oslo.upgradecheck, the fix it names (run, it clears the check), and that
it writes nothing.
"""

import json

import pytest
import sqlalchemy as sa

from multistore_prefix import crypt
from tests.functional import command
from tests.functional import test_backfill_cli as cli
from tests.functional import test_filter_check as paste

#: Locations that name the wrong enabled store (Glance's first match).
WRONG = [(cli.url_for('slow', 5), '{"store": "fast"}'),
         (cli.url_for('slow', 6), '{"store": "fast", "k": 1}'),
         (cli.url_for('fast', 5), '{"store": "multi"}')]


def write_conf(tmp_path, url, filter_in_pipeline=True):
    conf = cli.write_conf(tmp_path, url)
    write_paste(conf, filter_in_pipeline)
    return conf


def write_paste(conf, filter_in_pipeline=True):
    """The paste file beside ``conf``, where glance-api looks for it."""
    (conf.parent / f'{conf.stem}-paste.ini').write_text(paste.PASTE.format(
        default='multistore_prefix' if filter_in_pipeline else '',
        caching='', declaration=paste.USE))


def upgrade_check(conf, *args):
    """(exit code, {check: (result, details)}, stderr); --json output."""
    result = command.run('--config-file', conf, 'upgrade', 'check',
                         '--json', *args)
    assert 'Traceback' not in result.stderr
    for secret in cli.SECRETS:
        assert secret not in result.stdout + result.stderr
    checks = {}
    if result.stdout:
        output = json.loads(result.stdout)
        assert output['name'] == 'multistore-prefix upgrade check'
        checks = {c['check']: (c['result'], c['details'])
                  for c in output['checks']}
    return result.returncode, checks, result.stderr


WITHOUT = 'Locations without a store'
RETIRED = 'Locations naming a store no longer enabled'
WRONG_STORE = 'Locations naming the wrong store'
UNRESOLVED = 'Locations that cannot get a store'
FILTER = 'The filter in glance-api\'s pipeline'


def test_counts_follow_the_seed_and_the_fix_clears_them(engine, db_url,
                                                        tmp_path):
    cli.seed_mixed(engine)
    cli.seed(engine, WRONG)
    before = cli.table_rows(engine, cli._L)
    conf = write_conf(tmp_path, db_url)

    code, checks, stderr = upgrade_check(conf)
    # A wrong store is a Failure: the highest code wins.
    assert code == 2, stderr
    # Legacy rows of MIXED: no store, by type and store.
    legacy = [want for (url, text, want) in cli.MIXED
              if want in cli.DIRS and 'store' not in text]
    assert checks[WITHOUT][0] == 1
    assert checks[WITHOUT][1].startswith(
        f'{len(legacy)} have no store: file {len(legacy)} (fast 1, '
        f'multi 1, slow 1);')
    assert f'--config-file {conf} backfill' in checks[WITHOUT][1]
    assert checks[RETIRED] == (1, '1 name a store that is not enabled '
                                  f'(renamed: 1); run multistore-prefix '
                                  f'--config-file {conf} backfill')
    assert checks[WRONG_STORE][0] == 2
    assert ('3 name an enabled store that does not hold them (fast instead '
            'of slow: 2, multi instead of fast: 1)') in checks[WRONG_STORE][1]
    assert checks[WRONG_STORE][1].endswith(
        f'--config-file {conf} backfill --fix-wrong-stores')
    unresolved = [want for (_, _, want) in cli.MIXED
                  if want not in cli.DIRS and want != 'already-set']
    detail = checks[UNRESOLVED][1]
    assert checks[UNRESOLVED][0] == 1
    assert detail.startswith(f'{len(unresolved)} cannot get a store: ')
    for reason in set(unresolved):
        assert f'{reason}: {unresolved.count(reason)} (' in detail
    assert checks[FILTER][0] == 0
    # It only reads.
    assert cli.table_rows(engine, cli._L) == before

    # The fixes it names clear the store checks; the rest stay.
    fixed = cli.run_backfill(conf, '--fix-wrong-stores')
    assert fixed.returncode == 0, fixed.stderr
    code, checks, _ = upgrade_check(conf)
    assert code == 1
    nothing = (0, f'none of {len(before)} live locations')
    assert checks[WITHOUT] == checks[RETIRED] == checks[WRONG_STORE] == (
        nothing)
    assert checks[UNRESOLVED][0] == 1


def test_a_clean_database_passes_and_the_filter_is_checked(engine, db_url,
                                                           tmp_path):
    cli.seed(engine, [(cli.url_for('fast', 0), '{"store": "fast"}')])
    code, checks, stderr = upgrade_check(write_conf(tmp_path, db_url))
    assert code == 0, (checks, stderr)
    assert {result for result, _ in checks.values()} == {0}

    code, checks, _ = upgrade_check(
        write_conf(tmp_path, db_url, filter_in_pipeline=False))
    assert code == 2
    assert checks[FILTER][0] == 2
    assert 'not in [composite:api]' in checks[FILTER][1]
    assert 'filter check checks the rest' in checks[FILTER][1]


def test_the_table_is_oslo_upgradecheck_s(engine, db_url, tmp_path):
    cli.seed(engine, [(cli.url_for('slow', 0), '{}')])
    conf = write_conf(tmp_path, db_url)
    # The libraries' deprecations (prettytable's, in oslo.upgradecheck's
    # table) are not the operator's: none fails the check, even when every
    # warning is an error.
    # (In a process of its own: PYTHONWARNINGS is read at start-up.)
    result = command.run_process('--config-file', conf, 'upgrade', 'check',
                                 env={'PYTHONWARNINGS': 'error'})
    assert result.returncode == 1, result.stderr
    assert result.stderr == ''
    lines = result.stdout.splitlines()
    assert lines[1].startswith('| multistore-prefix upgrade check ')
    assert lines[1].endswith(' |') and lines[0].startswith('+---')
    assert f'| Check: {WITHOUT}' in result.stdout
    assert '| Result: Warning' in result.stdout
    assert '| Result: Failure' not in result.stdout


@pytest.mark.parametrize('driver', ['postgresql+psycopg2',
                                    'mysql+pymysql'])
def test_unreachable_database_fails_each_count_without_password(
        driver, tmp_path):
    # Port 1: nothing listens, the connection is refused at once.
    url = f'{driver}://glance:{cli.DB_PASSWORD}@127.0.0.1:1/glance'
    conf = cli.write_conf(tmp_path, url, cli.FAST_FAIL)
    write_paste(conf)
    code, checks, stderr = upgrade_check(conf)
    assert code == 2
    assert cli.DB_PASSWORD not in stderr
    for name in (WITHOUT, RETIRED, WRONG_STORE, UNRESOLVED):
        result, detail = checks[name]
        assert result == 2 and detail.startswith('cannot read the database')
        assert '127.0.0.1' in detail and cli.DB_PASSWORD not in detail
    assert checks[FILTER][0] == 0


def test_a_key_that_decrypts_nothing_fails_each_count(
        engine, db_url, tmp_path):
    # Glance wrote the URL encrypted with one key; the check is given
    # another: nothing it counts could be trusted, so every count fails
    # with the backfill's own line, which never quotes a key.
    written_with, configured = 'Wr1tt3n-w1th-k3y', 'C0nf1gur3d-k3y-0'
    stored = crypt.UrlCipher(written_with).encrypt(cli.url_for('fast', 1))
    cli.seed(engine, [(stored, '{}')])
    conf = write_conf(tmp_path, db_url)
    conf.write_text(conf.read_text().replace(
        '[DEFAULT]\n',
        f'[DEFAULT]\nmetadata_encryption_key = {configured}\n', 1))
    code, checks, stderr = upgrade_check(conf)
    assert code == 2, stderr
    for name in (WITHOUT, RETIRED, WRONG_STORE, UNRESOLVED):
        result, detail = checks[name]
        assert result == 2, (name, detail)
        assert '[DEFAULT]/metadata_encryption_key decrypts none of the 1 ' \
            'location URLs' in detail, detail
    everything = json.dumps(checks) + stderr
    assert written_with not in everything and configured not in everything


def test_configuration_errors_are_one_line(tmp_path):
    missing = tmp_path / 'absent.sqlite'
    conf = write_conf(tmp_path, f'sqlite:///{missing}')
    code, checks, stderr = upgrade_check(conf)
    assert code == 2 and checks == {}
    [line] = stderr.splitlines()
    assert line.startswith('ERROR: ') and str(missing) in line


@pytest.fixture
def engine(db_url):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()
