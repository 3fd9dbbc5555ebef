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

"""Unresolved reasons that say what is missing, as an operator sees them.

``resolve --explain`` and the backfill report name why a location has no
store: legacy forms that carry no store (``rbd://<image>``,
``cinder://<volume id>`` when Cinder is not asked) are ``no-store-in-url``,
not ``no-matching-prefix``.  The command runs in this process.
"""

import json

import pytest
import sqlalchemy as sa

from tests.functional import test_backfill_cli as cli
from tests.functional import test_cli

FSID = '7c4e4f1a-3d2b-4c8e-9f0a-5b6d7e8f9a0b'
VOLUME = '5b1c4f9e-0d3a-4b6e-9f2c-7a8d1e3b5c60'

CONF = """\
[DEFAULT]
enabled_backends = fast:file, ceph:rbd, volumes:cinder

[fast]
filesystem_store_datadir = /var/lib/glance/images

[ceph]
rbd_store_pool = images
rbd_store_ceph_conf = {ceph_conf}

[database]
connection = {url}
"""

#: (URL, store, reason) with the cinder extra installed.
CASES = [
    (f'rbd://{FSID}/images/a/snap', 'ceph', ''),
    ('rbd://0a1b2c3d', '', 'no-store-in-url'),
    (f'cinder://volumes/{VOLUME}', 'volumes', ''),
    (f'cinder://{VOLUME}', '', 'no-store-in-url'),
    ('file:///var/lib/glance/images2/x', '', 'no-matching-prefix'),
    ('s3://bucket/x', '', 'unknown-scheme'),
]


@pytest.fixture
def conf(tmp_path):
    ceph_conf = tmp_path / 'ceph.conf'
    ceph_conf.write_text(f'[global]\nfsid = {FSID}\n')

    def write(url=f'sqlite:///{tmp_path}/unused.sqlite'):
        path = tmp_path / 'glance-api.conf'
        path.write_text(CONF.format(url=url, ceph_conf=ceph_conf))
        return path
    return write


def test_resolve_explain_names_the_legacy_forms(conf):
    rows, result = test_cli.resolve_json(conf(), *[u for u, _, _ in CASES],
                                         extra=['--explain'])
    assert result.stderr == ''
    assert [(r['url'], r['store'], r['reason'].partition(':')[0])
            for r in rows] == CASES
    reasons = {r['url']: r['reason'] for r in rows}
    assert 'names neither cluster fsid nor pool' in reasons[
        'rbd://0a1b2c3d']
    assert 'only Cinder can tell' in reasons[f'cinder://{VOLUME}']


def test_backfill_report_uses_them(conf, db_url, tmp_path):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    report = tmp_path / 'report.json'
    try:
        cli.seed(engine, [(url, '{}') for url, _, _ in CASES])

        result = cli.run_backfill(conf(db_url), '--no-backend-lookups',
                                  '--quiet', '--report', report, '-f',
                                  'json')

        assert result.returncode == 0, result.stderr
        stores = {row['value']: json.loads(row['meta_data']).get('store')
                  for row in cli.table_rows(engine, cli._L).values()}
    finally:
        engine.dispose()
    assert stores == {url: store or None for url, store, _ in CASES}
    written = json.loads(report.read_text())
    assert written['unresolved'] == {'no-store-in-url': 2,
                                     'no-matching-prefix': 1,
                                     'unknown-scheme': 1}
    assert sorted((row['url'], row['reason'])
                  for row in written['unresolved_locations']) == sorted(
        (url, reason) for url, store, reason in CASES if reason)
    assert cli.summary(result.stdout)['unresolved: no-store-in-url'] == 2
