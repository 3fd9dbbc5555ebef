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

"""Cinder stores on an install without the ``cinder`` extra.

glance_store's cinder driver imports os-brick and python-cinderclient just
to declare its options.  A ``cinder://<store>/<volume>`` location needs no
cinder option: without the extra, every command still works and those
locations resolve by prefix; only legacy ``cinder://<volume>`` locations,
which need a Cinder lookup, stay unresolved with a reason that names the
install command.  Each test runs the real command in a subprocess whose
import system refuses os-brick and cinderclient (no_cinder_extra.py).
"""

import json
import pathlib
import subprocess
import sys
import textwrap
import uuid

import pytest
import sqlalchemy as sa

from tests.functional import test_backfill_cli as cli

HELPER = pathlib.Path(__file__).with_name('no_cinder_extra.py')
INSTALL = "pip install 'multistore-prefix[cinder]'"
VOLUME = '5b1c4f9e-0d3a-4b6e-9f2c-7a8d1e3b5c60'
OTHER_VOLUME = '0f6e2d1c-9b8a-4c7d-8e6f-5a4b3c2d1e0f'
PASSWORD = 'c1nder-Pa55-SECRET'

CONF = """\
[DEFAULT]
enabled_backends = fast:file, volumes:cinder, ssd:cinder

[fast]
filesystem_store_datadir = /var/lib/glance/images

[volumes]
cinder_store_auth_address = http://keystone.example.com:5000/v3
cinder_store_user_name = glance
cinder_store_password = {password}
cinder_store_project_name = service

[database]
connection = {url}
"""


def run(*args):
    """The command without the cinder extra; the CompletedProcess."""
    return subprocess.run([sys.executable, str(HELPER), *map(str, args)],
                          capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)


@pytest.fixture
def conf(tmp_path):
    def write(url=f'sqlite:///{tmp_path}/unused.sqlite'):
        path = tmp_path / f'glance-api-{uuid.uuid4().hex[:6]}.conf'
        path.write_text(CONF.format(url=url, password=PASSWORD))
        return path
    return write


def test_the_helper_really_hides_the_extra():
    code = textwrap.dedent("""
        import runpy
        runpy.run_path(%r, run_name='blocker')
        for name in ('os_brick', 'cinderclient.v3.client',
                     'glance_store._drivers.cinder'):
            try:
                __import__(name)
            except ImportError as exc:
                print(name, 'blocked:', exc.name)
            else:
                print(name, 'imported')
    """ % str(HELPER))
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        'os_brick blocked: os_brick',
        'cinderclient.v3.client blocked: cinderclient',
        'glance_store._drivers.cinder blocked: os_brick']


def test_stores_lists_the_cinder_prefixes(conf):
    result = run('--config-file', conf(), 'stores', '-f', 'json')

    assert result.returncode == 0, result.stderr
    rows = {row['store']: row['prefixes']
            for row in json.loads(result.stdout)}
    assert rows == {'fast': ['file:///var/lib/glance/images'],
                    'ssd': ['cinder://ssd'], 'volumes': ['cinder://volumes']}
    # Said once per store, on stderr: what is missing and the fix.
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 2, result.stderr
    for line, store in zip(sorted(warnings), ('ssd', 'volumes')):
        assert line.startswith(f'WARNING: Store {store}: '), line
        assert INSTALL in line
    assert PASSWORD not in result.stdout + result.stderr


def test_resolve_by_prefix_and_says_what_to_install(conf):
    result = run('--config-file', conf(), 'resolve', '--explain',
                 '-f', 'json', f'cinder://volumes/{VOLUME}',
                 f'cinder://SSD/{OTHER_VOLUME}', f'cinder://{VOLUME}',
                 'cinder://nowhere/x')

    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r['store'], r['reason'].partition(':')[0]) for r in rows] == [
        ('volumes', ''), ('ssd', ''), ('', 'backend-not-installed'),
        ('', 'no-matching-prefix')]
    assert INSTALL in rows[2]['reason']


def test_backfill_writes_the_prefixed_ones(conf, db_url, tmp_path):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        seeded = cli.seed(engine, [
            (f'cinder://volumes/{VOLUME}', '{}'),
            (f'cinder://ssd/{OTHER_VOLUME}', '{"store": "renamed"}'),
            (f'cinder://{VOLUME}', '{}'),
            ('file:///var/lib/glance/images/x', '{}')])
        report = tmp_path / 'report.json'

        result = run('--config-file', conf(db_url), 'backfill', '--quiet',
                     '--report', report, '-f', 'json')

        assert result.returncode == 0, result.stderr
        stores = {row['value']: json.loads(row['meta_data']).get('store')
                  for row in cli.table_rows(engine, cli._L).values()}
    finally:
        engine.dispose()
    assert stores == {f'cinder://volumes/{VOLUME}': 'volumes',
                      f'cinder://ssd/{OTHER_VOLUME}': 'ssd',
                      f'cinder://{VOLUME}': None,
                      'file:///var/lib/glance/images/x': 'fast'}
    assert len(seeded) == 4
    written = json.loads(report.read_text())
    assert written['unresolved'] == {'backend-not-installed': 1}
    [unresolved] = written['unresolved_locations']
    assert unresolved['url'] == f'cinder://{VOLUME}'
    assert unresolved['reason'] == 'backend-not-installed'
    assert INSTALL in unresolved['detail']
    assert PASSWORD not in result.stdout + result.stderr + report.read_text()
