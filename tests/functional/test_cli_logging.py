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

"""The configured log (oslo.log options in the --config-file), for real.

The command runs in this process (the console script, where the log's
file is named after the program) with the logging options an operator
puts in glance-api.conf; the test reads the log it wrote, and checks the
terminal shows exactly what it shows without them.  Logging is
the same on every engine, so the database is a SQLite file (and a
PostgreSQL URL that nothing answers, for the errors).
"""

import json
import re
import socket

import pytest
import sqlalchemy as sa

from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import migration
from tests.functional import command
from tests.functional import test_backfill_cli as cli

#: The database error's password; it must appear nowhere.
DB_PASSWORD = cli.DB_PASSWORD


@pytest.fixture
def seeded(tmp_path):
    """A synced SQLite database holding the backfill tests' mixed rows."""
    url = f'sqlite:///{tmp_path / "glance.sqlite"}'
    database = db_engine.Database(url)
    try:
        migration.sync(database)
    finally:
        database.dispose()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        _, outcome = cli.seed_mixed(engine)
    finally:
        engine.dispose()
    return url, outcome


def conf_with(tmp_path, url, logging_lines):
    """glance-api.conf with ``logging_lines`` added to [DEFAULT]."""
    path = cli.write_conf(tmp_path, url)
    text = path.read_text().replace(
        '[DEFAULT]\n', '[DEFAULT]\n' + '\n'.join(logging_lines) + '\n', 1)
    path.write_text(text)
    return path


def terminal(stderr):
    """stderr without the progress lines' time stamps."""
    return re.sub(r'(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ', '', stderr)


def without_timing(stdout):
    table = cli.summary(stdout)
    del table['elapsed_seconds'], table['rate_per_second']
    return table


def assert_masked(text):
    for secret in cli.SECRETS:
        assert secret not in text


def unresolved_lines(text):
    return [line for line in text.splitlines() if 'has no store:' in line]


def test_log_file_gets_what_the_terminal_says_and_each_unresolved_row(
        seeded, tmp_path):
    url, outcome = seeded
    log_file = tmp_path / 'backfill.log'
    plain = cli.run_backfill(cli.write_conf(tmp_path, url), '--dry-run',
                             '-f', 'json')
    logged = cli.run_backfill(
        conf_with(tmp_path, url, [f'log_file = {log_file}']),
        '--dry-run', '-f', 'json')
    assert plain.returncode == logged.returncode == 0, logged.stderr

    # The terminal is exactly as it is without a configured log.
    assert terminal(logged.stderr) == terminal(plain.stderr)
    assert without_timing(logged.stdout) == without_timing(plain.stdout)

    text = log_file.read_text()
    assert_masked(text)
    assert f'{cli.database_line(url)} (dry run)' in text
    unresolved = unresolved_lines(text)
    reasons = [want for want in outcome.values()
               if want not in cli.DIRS and want != 'already-set']
    assert len(unresolved) == len(reasons) > 0
    for reason in set(reasons):
        assert sum(f': {reason}: ' in line
                   for line in unresolved) == reasons.count(reason)
    for masked in cli.MASKED.values():
        assert any(masked in line for line in unresolved)
    assert all(' WARNING multistore_prefix.cmd.backfill ' in line
               for line in unresolved)
    summary_line = [line for line in text.splitlines()
                    if 'would_update=' in line]
    assert len(summary_line) == 1
    assert f'unresolved={len(reasons)}' in summary_line[0]


def test_use_json_and_log_dir_write_one_json_object_a_line(seeded,
                                                           tmp_path):
    url, _ = seeded
    log_dir = tmp_path / 'logs'
    log_dir.mkdir()
    # In a process of its own: oslo.log names the file after the program.
    result = command.run_process(
        '--config-file', conf_with(tmp_path, url, [
            f'log_dir = {log_dir}', 'use_json = true', 'debug = true']),
        'backfill', '--dry-run', '-f', 'json')
    assert result.returncode == 0, result.stderr
    # log_dir without log_file: oslo.log names the file after the program.
    [path] = log_dir.iterdir()
    assert path.name == 'multistore-prefix.log'
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert_masked(path.read_text())
    unresolved = [r for r in records if 'has no store:' in r['message']]
    assert unresolved and all(r['levelname'] == 'WARNING'
                              for r in unresolved)
    # debug = true: the log has DEBUG records; the terminal never does.
    assert any(r['levelname'] == 'DEBUG' for r in records)
    assert 'DEBUG' not in result.stderr


def test_errors_and_retries_reach_the_log_masked(tmp_path):
    # Nothing listens on port 1: the connection is refused at once.
    url = f'postgresql+psycopg2://glance:{DB_PASSWORD}@127.0.0.1:1/glance'
    log_file = tmp_path / 'errors.log'
    conf = cli.write_conf(tmp_path, url, cli.FAST_FAIL)
    plain = cli.run_backfill(conf, '-f', 'json')
    conf = cli.write_conf(tmp_path, url, cli.FAST_FAIL)
    conf.write_text(conf.read_text().replace(
        '[DEFAULT]\n', f'[DEFAULT]\nlog_file = {log_file}\n', 1))
    logged = cli.run_backfill(conf, '-f', 'json')
    assert logged.returncode == plain.returncode == 1
    assert logged.stderr.splitlines()[1:] == plain.stderr.splitlines()[1:]

    text = log_file.read_text()
    assert DB_PASSWORD not in text + logged.stderr
    retries = [line for line in text.splitlines()
               if ' WARNING multistore_prefix.db.retry ' in line]
    errors = [line for line in text.splitlines() if ' ERROR ' in line]
    assert len(retries) == 1 and 'connection failed' in retries[0]
    assert len(errors) == 1 and '127.0.0.1' in errors[0]
    # The same words as on the terminal.
    terminal_error = logged.stderr.splitlines()[-1]
    assert terminal_error.startswith('ERROR: ')
    assert terminal_error[len('ERROR: '):] in errors[0]


def test_log_config_append_sends_the_log_to_a_syslog_server(seeded,
                                                            tmp_path):
    url, _ = seeded
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(('127.0.0.1', 0))
    server.settimeout(10)
    port = server.getsockname()[1]
    logging_conf = tmp_path / 'logging.conf'
    logging_conf.write_text(f"""\
[loggers]
keys = root, backfill

[handlers]
keys = syslog

[formatters]
keys = plain

[logger_root]
level = ERROR
handlers = syslog

[logger_backfill]
level = WARNING
handlers =
qualname = multistore_prefix.cmd.backfill

[handler_syslog]
class = handlers.SysLogHandler
args = (('127.0.0.1', {port}),)
formatter = plain

[formatter_plain]
format = msp: %(levelname)s %(name)s %(message)s
""")
    plain = cli.run_backfill(cli.write_conf(tmp_path, url), '--dry-run',
                             '-f', 'json')
    with server:
        result = cli.run_backfill(
            conf_with(tmp_path, url,
                      [f'log_config_append = {logging_conf}']),
            '--dry-run', '-f', 'json')
        assert result.returncode == 0, result.stderr
        received = []
        server.settimeout(1)
        try:
            while True:
                received.append(server.recv(65536).decode())
        except socket.timeout:
            pass
    assert terminal(result.stderr) == terminal(plain.stderr)
    assert received and all('msp: ' in packet for packet in received)
    assert_masked('\n'.join(received))
    # The levels of logging.conf apply: the backfill's warnings (its
    # unresolved rows) pass, its info lines do not.
    assert all(' WARNING multistore_prefix.cmd.backfill ' in packet
               for packet in received)
    assert len(unresolved_lines('\n'.join(received))) == len(received)


def test_a_log_that_cannot_be_set_up_is_one_line_exit_2(seeded, tmp_path):
    url, _ = seeded
    missing = tmp_path / 'no-such-directory' / 'backfill.log'
    result = cli.run_backfill(
        conf_with(tmp_path, url, [f'log_file = {missing}']), '--dry-run')
    assert result.returncode == cli.EXIT_CONFIG
    assert result.stdout == ''
    [line] = result.stderr.splitlines()
    assert line.startswith('ERROR: the log cannot be set up: ')
    assert str(missing) in line and 'log_file' in line


def test_use_syslog_and_use_journal_leave_the_terminal_as_it_is(seeded,
                                                                tmp_path):
    url, _ = seeded
    plain = cli.run_backfill(cli.write_conf(tmp_path, url), '--dry-run',
                             '-f', 'json')
    syslog = cli.run_backfill(conf_with(tmp_path, url, ['use_syslog = true']),
                              '--dry-run', '-f', 'json')
    assert syslog.returncode == 0, syslog.stderr
    assert terminal(syslog.stderr) == terminal(plain.stderr)
    assert without_timing(syslog.stdout) == without_timing(plain.stdout)

    journal = cli.run_backfill(
        conf_with(tmp_path, url, ['use_journal = true']), '--dry-run')
    try:
        import systemd.journal  # noqa: F401
    except ImportError:
        # oslo.log needs systemd's Python bindings for the journal: said
        # in one line, before anything is done.
        assert journal.returncode == cli.EXIT_CONFIG
        [line] = journal.stderr.splitlines()
        assert line.startswith('ERROR: the log cannot be set up: ')
        assert 'use_journal' in line
    else:
        assert journal.returncode == 0, journal.stderr
        assert terminal(journal.stderr) == terminal(plain.stderr)
