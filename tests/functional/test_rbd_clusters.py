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

"""Three Ceph clusters with one pool name, as an operator runs the tool.

An edge layout: every cluster's pool is ``images``.  A ceph.conf path
with a typo is a configuration error for every command (exit 2, one line
naming the store, the option and the path), never a store that claims
every cluster's ``images``; a store whose ceph.conf has no fsid never
takes another cluster's URL.  The command runs in this process; the
backfill on SQLite, PostgreSQL and MariaDB.
"""

import json

import pytest
import sqlalchemy as sa

from tests.functional import test_backfill_cli as cli
from tests.functional import test_cli

EAST = '6e4b1d2a-3c5f-4e7a-9b8c-0d1e2f3a4b5c'
WEST = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee'
ELSEWHERE = '00000000-0000-4000-8000-000000000000'

CONF = """\
[DEFAULT]
enabled_backends = east:rbd, west:rbd, edge:rbd

[backend_defaults]
rbd_store_pool = images

[east]
rbd_store_ceph_conf = {east}

[west]
rbd_store_ceph_conf = {west}

[edge]
rbd_store_ceph_conf = {edge}

[database]
connection = {url}
"""


def url(fsid, image='0a1b'):
    return f'rbd://{fsid}/images/{image}/snap'


@pytest.fixture
def layout(tmp_path):
    """Write the layout; ``edge`` is 'typo' or 'no-fsid'."""
    def write(edge, db_url=f'sqlite:///{tmp_path}/unused.sqlite'):
        confs = {}
        for name, fsid in (('east', EAST), ('west', WEST), ('edge', None)):
            path = confs[name] = tmp_path / f'{name}.conf'
            path.write_text('[global]\nmon host = 10.0.0.1\n'
                            + (f'fsid = {fsid}\n' if fsid else ''))
        if edge == 'typo':
            confs['edge'] = tmp_path / 'edge.cnf'
        conf = tmp_path / 'glance-api.conf'
        conf.write_text(CONF.format(url=db_url, **confs))
        return conf, confs['edge']
    return write


@pytest.mark.parametrize('command', [
    ['stores'],
    ['resolve', url(WEST)],
    ['backfill', '--dry-run'],
])
def test_a_ceph_conf_typo_stops_every_command(layout, command):
    conf, typo = layout('typo')

    result = test_cli.run('--config-file', conf, *command)

    line = test_cli.assert_config_error(result, '[edge]/rbd_store_ceph_conf',
                                        f'{typo} does not exist')
    assert 'east' not in line and 'west' not in line


def test_resolve_never_guesses_the_cluster(layout):
    conf, edge = layout('no-fsid')

    rows, result = test_cli.resolve_json(
        conf, url(EAST), url(WEST), url(ELSEWHERE), extra=['--explain'])

    assert [(r['store'], r['reason'].partition(':')[0]) for r in rows] == [
        ('east', ''), ('west', ''), ('', 'missing-fsid')]
    reason = rows[2]['reason']
    assert 'store edge has no cluster fsid' in reason
    assert str(edge) in reason and 'stores east, west' in reason
    # The operator hears about it once, on stderr, when the map is built.
    assert result.stderr.count('stores east, west use pool') == 1


def test_backfill_leaves_the_unknown_cluster_alone(layout, db_url, tmp_path):
    conf, _ = layout('no-fsid', db_url)
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    report = tmp_path / 'report.json'
    try:
        cli.seed(engine, [(url(EAST), '{}'), (url(WEST), '{}'),
                          (url(ELSEWHERE), '{}')])

        result = cli.run_backfill(conf, '--quiet', '--report', report,
                                  '-f', 'json')

        assert result.returncode == 0, result.stderr
        stores = {row['value']: json.loads(row['meta_data']).get('store')
                  for row in cli.table_rows(engine, cli._L).values()}
    finally:
        engine.dispose()
    assert stores == {url(EAST): 'east', url(WEST): 'west',
                      url(ELSEWHERE): None}
    written = json.loads(report.read_text())
    assert written['unresolved'] == {'missing-fsid': 1}
    [row] = written['unresolved_locations']
    assert (row['url'], row['reason']) == (url(ELSEWHERE), 'missing-fsid')
    assert 'store edge has no cluster fsid' in row['detail']
