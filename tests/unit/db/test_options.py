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

"""Where the database is: the operator's value, SQLite files, drivers."""

import pytest
from sqlalchemy import exc as sa_exc

from multistore_prefix.db import options


@pytest.mark.parametrize('text, expected', [
    ('', None),
    ('[database]\n', None),
    ('[database]\nconnection =\n', None),
    ('[database]\nconnection = mysql+pymysql://g:p@db/glance\n',
     'mysql+pymysql://g:p@db/glance'),
])
def test_configured_connection_ignores_the_embedded_default(make_conf, text,
                                                            expected):
    conf = make_conf(text)
    options.register_opts(conf)  # the default is there, and not the answer

    assert options.configured_connection(conf) == expected
    if 'connection' not in text:
        assert conf.database.connection == options.default_connection()


@pytest.mark.parametrize('url, path', [
    ('sqlite:////var/lib/glance/glance.sqlite',
     '/var/lib/glance/glance.sqlite'),
    ('sqlite:///relative/g.sqlite', 'CWD/relative/g.sqlite'),
    ('sqlite:///file:/srv/g%20x.sqlite?mode=ro&uri=true', '/srv/g x.sqlite'),
    ('sqlite:///file:mem?mode=memory&uri=true', None),
    ('sqlite://', None),
    ('sqlite:///:memory:', None),
    ('mysql+pymysql://g:p@db/glance', None),
    ('postgresql://g@db/glance', None),
])
def test_sqlite_file(url, path, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    expected = path and path.replace('CWD', str(tmp_path))

    assert options.sqlite_file(url) == expected


def test_missing_driver_names_module_and_package():
    assert options.missing_driver('sqlite://') is None
    assert options.missing_driver('mysql+pymysql://g@db/glance') is None
    assert options.missing_driver('postgresql+psycopg2://g@db/g') is None
    assert options.missing_driver('postgresql://g@db/glance') is None
    assert options.missing_driver('mysql://g@db/glance') == (
        'MySQLdb', 'mysqlclient')
    assert options.missing_driver('postgresql+pg8000://g@db/g') == (
        'pg8000', 'pg8000')


def test_missing_driver_of_no_url():
    with pytest.raises(sa_exc.ArgumentError):
        options.missing_driver('glance:secret@db/glance')
    with pytest.raises(sa_exc.NoSuchModuleError):
        options.missing_driver('oracel://g@db/glance')
