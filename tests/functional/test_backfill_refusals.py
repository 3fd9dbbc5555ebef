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

"""Refusals no retry can cure end the backfill at once, in their words.

A wrong password, an unknown database or role, a user who may not use
the database: each ends the run with exit 1 and one line that keeps the
server's own words (the code, the user and the host, which are no
secrets) and masks the password alone, without waiting through
``max_retries`` x ``retry_interval``.

The wrong password is a real one: MariaDB gets a user with a password;
PostgreSQL, whose test server trusts every local connection, gets a
private server of its own that asks for passwords (``initdb`` with
scram-sha-256).
"""

import glob
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import sqlalchemy as sa

from tests.functional import test_backfill_cli as cli

pytestmark = pytest.mark.engines('postgresql', 'mysql')

RIGHT = 'R1ght-Pa55'
WRONG = 'Wr0ng-Pa55-SECRET'
#: Retries an operator may well configure: a refusal must not wait them.
PATIENT = """
max_retries = 5
retry_interval = 10
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _as_postgres(argv, **kwargs):
    """Run a PostgreSQL tool (as the postgres user when we are root)."""
    if os.geteuid() == 0:
        argv = ['runuser', '-u', 'postgres', '--', *argv]
    return subprocess.run(argv, check=True, capture_output=True, text=True,
                          timeout=120, **kwargs)


@pytest.fixture(scope='module')
def postgresql_with_passwords():
    """A private PostgreSQL that asks for passwords; its port.

    Its superuser ``postgres`` has the password :data:`RIGHT`.
    """
    bindirs = sorted(glob.glob('/usr/lib/postgresql/*/bin'))
    if not bindirs:
        pytest.fail('no PostgreSQL server binaries in /usr/lib/postgresql')
    bindir = bindirs[-1]
    # Not under pytest's own directory: the postgres user must reach it.
    directory = pathlib.Path(tempfile.mkdtemp(prefix='msp-pg-passwords-'))
    pwfile = directory / 'pw'
    pwfile.write_text(RIGHT + '\n')
    if os.geteuid() == 0:
        owner = pwd.getpwnam('postgres')
        for path in (directory, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    data = directory / 'data'
    _as_postgres([f'{bindir}/initdb', '-D', str(data), '-U', 'postgres',
                  '--auth-local=trust', '--auth-host=scram-sha-256',
                  f'--pwfile={pwfile}'])
    port = _free_port()
    _as_postgres([f'{bindir}/pg_ctl', '-D', str(data), '-w', '-l',
                  str(directory / 'log'), '-o',
                  f'-p {port} -k {directory} -c listen_addresses=127.0.0.1 '
                  f'-c fsync=off', 'start'])
    try:
        yield port
    finally:
        _as_postgres([f'{bindir}/pg_ctl', '-D', str(data), '-m',
                      'immediate', 'stop'])
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def password_user(database_server, db_url, request):
    """(URL with the right password, the user's name) of a real user."""
    if database_server.name == 'postgresql':
        port = request.getfixturevalue('postgresql_with_passwords')
        yield (f'postgresql+psycopg2://postgres:{RIGHT}@127.0.0.1:{port}/'
               f'postgres', 'postgres')
        return
    user = f'msp_pw_{uuid.uuid4().hex[:8]}'
    database = sa.engine.make_url(db_url).database
    admin = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE USER '{user}'@'127.0.0.1' "
                             f"IDENTIFIED BY '{RIGHT}'")
        conn.exec_driver_sql(f"GRANT ALL PRIVILEGES ON {database}.* TO "
                             f"'{user}'@'127.0.0.1'")
    try:
        yield (f'mysql+pymysql://{user}:{RIGHT}@127.0.0.1/{database}', user)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP USER '{user}'@'127.0.0.1'")
        admin.dispose()


def refused_at_once(tmp_path, url, *secrets):
    """Run the backfill on ``url``; its one error line, checked."""
    started = time.monotonic()
    result = cli.run_backfill(cli.write_conf(tmp_path, url, PATIENT),
                              '-f', 'json')
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert took < 10, f'waited {took:.1f} s: retried?\n{result.stderr}'
    assert 'trying again' not in result.stderr
    assert 'Traceback' not in result.stderr
    for secret in secrets:
        assert secret not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines()
              if line.startswith('ERROR')]
    assert len(errors) == 1, result.stderr
    # One masked form of the URL: the first line's.
    first = result.stderr.splitlines()[0]
    shown = first.split('database ', 1)[1].split()[0]
    assert f'the database {shown}:' in errors[0], (first, errors[0])
    return errors[0]


def test_a_wrong_password_ends_the_run_at_once(tmp_path, database_server,
                                               password_user):
    url, user = password_user
    # The user is real: the right password connects.
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        assert conn.exec_driver_sql('SELECT 1').scalar() == 1
    engine.dispose()
    line = refused_at_once(tmp_path, url.replace(RIGHT, WRONG), WRONG)
    assert f'{user}:***@127.0.0.1' in line
    if database_server.name == 'mysql':
        assert (f"(1045, \"Access denied for user '{user}'@'127.0.0.1' "
                f"(using password: YES)\")") in line
    else:
        assert f'password authentication failed for user "{user}"' in line


def test_an_unknown_database_ends_the_run_at_once(tmp_path, db_url,
                                                  database_server):
    url = sa.engine.make_url(db_url).set(database='msp_no_such_database')
    line = refused_at_once(tmp_path, url.render_as_string(
        hide_password=False))
    if database_server.name == 'mysql':
        assert "Unknown database 'msp_no_such_database'" in line
    else:
        assert 'database "msp_no_such_database" does not exist' in line


def test_a_user_refused_the_database_ends_the_run_at_once(
        tmp_path, db_url, database_server):
    # PostgreSQL: a role that does not exist; MariaDB: a user with no
    # privilege on the database.
    user = f'msp_none_{uuid.uuid4().hex[:8]}'
    url = sa.engine.make_url(db_url).set(username=user)
    if database_server.name == 'postgresql':
        line = refused_at_once(tmp_path, url.render_as_string(
            hide_password=False))
        assert f'role "{user}" does not exist' in line
        return
    admin = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE USER '{user}'@'127.0.0.1'")
    try:
        line = refused_at_once(tmp_path, url.render_as_string(
            hide_password=False))
        assert f"(1044, \"Access denied for user '{user}'@" in line
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP USER '{user}'@'127.0.0.1'")
        admin.dispose()
