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


"""Engine facade per configuration: multistore_prefix/db/engine.py and
options.py."""

import os

from oslo_config import cfg
from oslo_db import exception as db_exc
from oslo_utils import timeutils
import pytest

from multistore_prefix.db import api
from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import exceptions
from multistore_prefix.db import options


def test_default_connection_is_a_file_in_the_state_directory(monkeypatch,
                                                             tmp_path):
    monkeypatch.delenv(options.STATE_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert options.default_connection() == (
        f'sqlite:///{tmp_path}/state/multistore-prefix.sqlite')
    monkeypatch.setenv(options.STATE_DIR_ENV, str(tmp_path / 'elsewhere'))
    assert options.default_connection() == (
        f'sqlite:///{tmp_path}/elsewhere/multistore-prefix.sqlite')


def test_from_config_embedded_default(monkeypatch, tmp_path):
    monkeypatch.setenv(options.STATE_DIR_ENV, str(tmp_path / 'state'))
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    options.register_opts(conf)
    options.register_opts(conf)  # twice, as glance and we both may
    database = db_engine.Database.from_config(conf)
    assert database.connection == (
        f'sqlite:///{tmp_path}/state/multistore-prefix.sqlite')
    # Only a command that makes the database makes its directory.
    assert not os.path.exists(tmp_path / 'state')


def test_a_database_never_creates_a_missing_directory(tmp_path):
    database = db_engine.Database(f'sqlite:///{tmp_path}/typo/glance.sqlite')
    try:
        with pytest.raises(db_exc.DBNonExistentDatabase):
            with database.reader() as conn:
                conn.exec_driver_sql('SELECT 1')
    finally:
        database.dispose()
    assert not os.path.exists(tmp_path / 'typo')


def test_from_config_reads_database_connection(make_gateway_conf, db_url):
    database = db_engine.Database.from_config(make_gateway_conf(db_url))
    try:
        assert database.connection == db_url
        with database.reader() as conn:
            assert conn.exec_driver_sql('SELECT 1').scalar() == 1
    finally:
        database.dispose()


def test_safe_url_hides_the_password():
    database = db_engine.Database('mysql+pymysql://u:s3cret@db/glance')
    assert 's3cret' not in database.safe_url
    assert database.safe_url.startswith('mysql+pymysql://u:***@db')


@pytest.mark.parametrize('connection, safe', [
    # SQLAlchemy reads a raw '@' in the password as part of the host.
    ('mysql+pymysql://root:Pa55@w0rd-tail@db.example.com/glance',
     'mysql+pymysql://root:***@db.example.com/glance'),
    ('postgresql://glance:a@b@c-tail@db:5432/glance?sslmode=require',
     'postgresql://glance:***@db:5432/glance?sslmode=require'),
    # libpq takes a password in the query too.
    ('postgresql://glance@db/glance?password=Pa55-w0rd&sslmode=require',
     'postgresql://glance@db/glance?password=***&sslmode=require'),
])
def test_safe_url_hides_every_part_of_the_password(connection, safe):
    assert db_engine.Database(connection).safe_url == safe


@pytest.mark.engines('sqlite')
def test_sqlite_writers_begin_immediate(db_url, database_server,
                                        statement_log):
    database = db_engine.Database(db_url)
    try:
        with statement_log(database.engine) as log:
            with database.reader() as conn:
                conn.exec_driver_sql('SELECT 1')
            with database.writer() as conn:
                conn.exec_driver_sql('SELECT 1')
        assert [s for s in log.statements if s.startswith('BEGIN')] == [
            'BEGIN', 'BEGIN IMMEDIATE']
    finally:
        database.dispose()


def test_read_only_database_is_forbidden(database_server, db_url):
    database = db_engine.Database(database_server.read_only_url(db_url))
    try:
        with database.reader() as conn:
            assert api.image_get_all(conn) == []
        with pytest.raises(exceptions.Forbidden) as caught:
            with database.writer() as conn:
                api.image_create(conn, {'id': 'x', 'status': 'queued'}, {},
                                 [], [], timeutils.utcnow())
        assert caught.value.reason
    finally:
        database.dispose()


def test_other_errors_are_not_forbidden(db_url):
    database = db_engine.Database(db_url)
    try:
        with pytest.raises(Exception) as caught:
            with database.writer() as conn:
                conn.exec_driver_sql('SELECT * FROM no_such_table')
        assert not isinstance(caught.value, exceptions.Forbidden)
        assert db_engine.permission_denied(caught.value) is None
    finally:
        database.dispose()
