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

"""The command line is safe to type at: names, help, exit codes, output.

No abbreviation or typo runs a command, no argument opens no shell, every
help lists the exit codes its command returns (and those codes are the
ones it returns), and the libraries' deprecation banners never reach the
output.  The command runs in this process, except where the process is
what is tested (a terminal, a signal, ``PYTHONWARNINGS``): there the real
console script runs in a subprocess.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from multistore_prefix.db import models
from multistore_prefix import demo
from tests.functional.command import environment
from tests.functional.command import REPO
from tests.functional.command import run
from tests.functional.command import script
from tests.functional import test_backfill_cli as backfill_cli
from tests.functional.test_cli import assert_config_error
from tests.functional.test_cli import write_conf

_L = models.image_locations

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130

#: What each command can return, read from the code: 1 for an unexpected
#: error (every command) or a database error, 2 for configuration and
#: usage, 3 for resolve --strict, 130 for Ctrl-C (cliff's own code).
EXIT_CODES = {
    'stores': {0, 1, 2, 130},
    'resolve': {0, 1, 2, 3, 130},
    'status-machine': {0, 1, 2, 130},
    'backfill': {0, 1, 2, 130},
    'db sync': {0, 1, 2, 130},
    'demo': {0, 1, 2, 130},
    'filter check': {0, 2, 4},
    'upgrade check': {0, 1, 2, 255},
}


# -- no abbreviations, no shell ---------------------------------------------

@pytest.mark.engines('sqlite')
@pytest.mark.parametrize('typed, meant', [
    ('b', 'backfill'), ('backfil', 'backfill'), ('back', 'backfill'),
    ('BACKFILL', 'backfill'), ('db', 'db sync'), ('stroes', 'stores'),
])
def test_no_abbreviation_or_typo_runs_a_command(db_url, tmp_path, typed,
                                                meant):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        seeded = backfill_cli.seed(engine,
                                   backfill_cli.legacy_locations(3))
        conf = backfill_cli.write_conf(tmp_path, db_url)

        result = run('--config-file', conf, *typed.split())

        line = assert_config_error(result, f"unknown command '{typed}'",
                                   f"'{meant}'", 'never abbreviated')
        assert 'backfill: database' not in result.stderr
        assert backfill_cli.table_rows(engine, backfill_cli._L) == seeded
    finally:
        engine.dispose()
    assert line.count("'") == 4  # the typed word and the one close name


def test_help_of_an_abbreviation_is_an_error_too():
    for args in (['b', '--help'], ['help', 'backfil']):
        assert_config_error(run(*args), 'unknown command', "'backfill'")


def test_a_word_close_to_nothing_says_where_the_list_is():
    assert_config_error(run('xyzzy'), "unknown command 'xyzzy'", '--help')


def test_no_arguments_prints_the_help_and_exits_2():
    for args in ([], ['--config-file', 'etc/glance-api.conf']):
        result = run(*args, stdin='help\n')
        assert result.returncode == 2, result
        assert result.stdout == ''
        assert 'Commands:' in result.stderr and 'backfill' in result.stderr
        assert 'Exit codes:' in result.stderr
        assert result.stderr.splitlines()[-1].startswith(
            'ERROR: no command given')
        assert '(Cmd)' not in result.stderr


def test_no_arguments_on_a_terminal_opens_no_shell():
    main, secondary = os.openpty()
    try:
        process = subprocess.Popen(script(), stdin=secondary,
                                   stdout=secondary, stderr=secondary,
                                   cwd=REPO)
    finally:
        os.close(secondary)
    try:
        # A shell would wait for input for ever.
        returncode = process.wait(timeout=60)
        screen = _read_all(main)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(main)
    assert returncode == 2
    assert '(Cmd)' not in screen
    assert 'no command given' in screen


def _read_all(fd):
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: nobody holds the terminal any more
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b''.join(chunks).decode(errors='replace')


# -- help: exit codes, plain text ---------------------------------------------

def exit_codes(help_text):
    """The codes of the "Exit codes:" list of a help text."""
    section = help_text.split('Exit codes:\n', 1)[1]
    codes = set()
    for line in section.splitlines():
        found = re.match(r'  (\d+) ', line)
        if found:
            codes.add(int(found.group(1)))
        elif line and not line.startswith(' '):
            break
    return codes


def test_main_help_lists_every_exit_code():
    result = run('--help')

    assert result.returncode == 0
    assert exit_codes(result.stdout) == {0, 1, 2, 3, 130}


@pytest.mark.parametrize('command', sorted(EXIT_CODES))
def test_each_command_help_lists_its_exit_codes(command):
    by_flag = run(*command.split(), '--help')
    by_help = run('help', *command.split())

    assert by_flag.returncode == 0, by_flag.stderr
    assert by_flag.stdout == by_help.stdout
    assert exit_codes(by_flag.stdout) == EXIT_CODES[command]
    # cliff prints docstrings as they are: no reST may show.
    for markup in ('``', ':ivar', ':param', ':class:', ':func:'):
        assert markup not in by_flag.stdout


def test_status_machine_help_is_plain_text():
    result = run('status-machine', '--help')

    assert '``' not in result.stdout
    assert 'Columns "from", "event" and "to"' in result.stdout


# -- the codes the help promises are the ones returned ------------------------

FAST_FAIL = 'max_retries = 1\nretry_interval = 1\n'


def test_db_sync_on_an_unreachable_database_is_a_database_error(tmp_path):
    conf = write_conf(tmp_path, f"""\
        [database]
        connection = postgresql+psycopg2://glance@127.0.0.1:1/glance
        {FAST_FAIL.replace(chr(10), chr(10) + '        ')}
    """)

    result = run('--config-file', conf, 'db', 'sync')

    assert result.returncode == EXIT_FAILURE, result
    [line] = result.stderr.splitlines()
    assert line.startswith('ERROR: cannot connect to postgresql+psycopg2://')
    assert '127.0.0.1:1/glance' in line


def test_an_interrupted_demo_exits_130(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('PYTHONWARNINGS')}
    process = subprocess.Popen(
        [*script(), 'demo', '--images', '3000', '--batch-size', '2',
         '--state-dir', str(tmp_path), '-f', 'json'],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env)
    database = tmp_path / 'demo' / 'demo.sqlite'

    def backfilling():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if database.exists() and _done(database):
                return
            time.sleep(0.05)
        pytest.fail(f'the demo never backfilled: {process.communicate()}')

    out, err = backfill_cli.interrupt_when(process, backfilling,
                                           signal.SIGINT)
    assert process.returncode == EXIT_INTERRUPTED, err
    assert '"interrupted": true' in out


def _done(database):
    """Rows the demo's backfill wrote (not the ones its seeding made).

    The seeded rows carry the demo's creation time: a signal sent once
    they exist could still arrive before the backfill begins.
    """
    engine = sa.create_engine(f'sqlite:///{database}',
                              poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(_L)
                .where(_L.c.updated_at > demo._CREATED)).scalar()
    except sa.exc.OperationalError:  # not made yet, or locked
        return 0
    finally:
        engine.dispose()


# -- no eventlet banner, whatever PYTHONWARNINGS says ------------------------

def _every_command(tmp_path, db_url):
    conf = backfill_cli.write_conf(tmp_path, db_url)
    return [
        ['--help'],
        ['--config-file', conf, 'stores', '-f', 'json'],
        ['--config-file', conf, 'resolve', '--explain',
         'file:///var/lib/glance/images/x', 'rbd://y'],
        ['status-machine'],
        ['--config-file', conf, 'backfill', '--dry-run'],
        ['--config-file', conf, 'backfill'],
        ['--config-file', conf, 'db', 'sync'],
        ['demo', '--images', '20', '--state-dir', tmp_path / 'state'],
        ['-v', '--config-file', conf, 'stores'],
    ]


#: Runs each command line of argv[1] (JSON) in turn, as the console script
#: does, and writes their exit codes to argv[2].
_ONE_PROCESS = """\
import json, sys
from multistore_prefix.cmd.main import main
codes = []
for argv in json.loads(sys.argv[1]):
    print(f'--- {argv}', file=sys.stderr, flush=True)
    try:
        codes.append(main(argv))
    except SystemExit as exc:  # --help
        codes.append(exc.code or 0)
with open(sys.argv[2], 'w') as out:
    json.dump(codes, out)
"""


@pytest.mark.engines('sqlite')
@pytest.mark.parametrize('warnings', [None, 'default', 'error'])
def test_no_library_banner_on_any_command(db_url, tmp_path, warnings):
    # PYTHONWARNINGS is read when the interpreter starts and the banners
    # come with the imports: one new process runs every command, whose
    # first use of each library is in one of them.
    env = environment({} if warnings is None
                      else {'PYTHONWARNINGS': warnings})
    commands = [[str(a) for a in args]
                for args in _every_command(tmp_path, db_url)]
    codes_file = tmp_path / 'codes.json'
    result = subprocess.run(
        [sys.executable, '-c', _ONE_PROCESS, json.dumps(commands),
         str(codes_file)], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert json.loads(codes_file.read_text()) == [0] * len(commands), output
    assert 'eventlet' not in output.lower(), output
    assert 'DeprecationWarning' not in output, output


# -- the documented benchmark command ----------------------------------------

def test_documented_benchmark_command_works_without_an_active_venv():
    readme = (REPO / 'doc' / 'source' / 'contributor' /
              'testing.rst').read_text()
    # (The glance-api benchmark runs in .venv-glance, the page says so.)
    commands = [line.strip() for line in readme.splitlines()
                if 'benchmarks/bench_resolve.py' in line
                and line.strip().split()[0].endswith(('python', 'python3'))]
    assert commands
    # Not activated: no VIRTUAL_ENV, the venv's bin not on PATH.
    env = {k: v for k, v in os.environ.items()
           if k not in ('VIRTUAL_ENV', 'PYTHONPATH', 'PYTHONHOME')}
    env['PATH'] = os.pathsep.join(
        p for p in env.get('PATH', '').split(os.pathsep)
        if not os.path.exists(os.path.join(p, 'multistore-prefix')))
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == '.venv/bin/python', command
        if not (REPO / argv[0]).exists():
            # Not run by tools/run-tests (tox): the same script, with the
            # interpreter running these tests.
            argv[0] = sys.executable
        result = subprocess.run(
            argv + ['--urls', '300', '--stores', '2', '--repeat', '1'],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert 'speedup' in result.stdout
