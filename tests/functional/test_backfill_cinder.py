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

"""``backfill`` over new-style and legacy cinder URLs, Cinder faked.

requests-mock stands in for Keystone and Cinder with their real request
and response shapes; the command runs in this process so that it reaches
them.  On SQLite, PostgreSQL and MariaDB.
"""

import contextlib
import json
import textwrap

from oslo_config import cfg
from oslo_db import exception as oslo_db_exc
import pytest

from multistore_prefix import backfill as backfill_mod
from multistore_prefix.db import engine as db_engine
from multistore_prefix.drivers import cinder_client
from multistore_prefix import location_map as lmap
from multistore_prefix import lookups as lookups_mod
from tests.functional import command
from tests.functional.test_backfill import add_image
from tests.functional.test_backfill import legacy
from tests.functional.test_backfill import rows
from tests.unit.drivers import test_cinder_lookup as fake

VOLUMES = {
    fake.VOLUME: 'fast-ssd',
    fake.OTHER_VOLUME: 'slow-hdd',
    '11111111-2222-4333-8444-555555555555': 'bronze',
}
MISSING = '66666666-7777-4888-9999-000000000000'
DOWN = '77777777-8888-4999-aaaa-bbbbbbbbbbbb'


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(cinder_client, '_CONNECTIONS',
                        type(cinder_client._CONNECTIONS)())
    monkeypatch.setattr(cinder_client, 'BACKOFF', 0)


@pytest.fixture
def cinder_api(requests_mock):
    requests_mock.post(fake.TOKEN_URL, status_code=201,
                       json=fake.token_body(),
                       headers={'X-Subject-Token': fake.TOKEN})
    for volume_id, volume_type in VOLUMES.items():
        requests_mock.get(fake.volume_url(volume_id),
                          json=fake.volume_body(volume_type, volume_id))
    requests_mock.get(fake.volume_url(MISSING), status_code=404,
                      json=fake.NOT_FOUND)
    requests_mock.get(fake.volume_url(DOWN), status_code=503,
                      json={'error': 'maintenance'})
    return requests_mock


@pytest.fixture
def config(tmp_path, db_url):
    path = tmp_path / 'glance-api.conf'
    path.write_text(textwrap.dedent(fake.STORES)
                    + f'\n[database]\nconnection = {db_url}\n')
    return str(path)


def backfill(config, *args):
    result = command.run('--config-file', config, 'backfill', '--quiet',
                         '-f', 'json', *args)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture
def database(db_url):
    database = db_engine.Database(db_url)
    yield database
    database.dispose()


def test_backfill_asks_cinder_about_legacy_urls_only(
        config, database, cinder_api, tmp_path):
    _, ids = add_image(database, [
        legacy(f'cinder://fast/{fake.OTHER_VOLUME}'),  # new style
        legacy(f'cinder://{fake.VOLUME}', '{"keep": "me"}'),
        legacy(f'cinder://{fake.OTHER_VOLUME}'),
        legacy('cinder://11111111-2222-4333-8444-555555555555'),
        legacy(f'cinder://{MISSING}'),
        legacy(f'cinder://{DOWN}'),
    ])
    report_file = tmp_path / 'report.json'
    code, out, err = backfill(config, '--report', str(report_file))
    assert code == 0, err
    after = rows(database)
    values = [after[i]['value'] for i in ids]
    stores = [json.loads(after[i]['meta_data']).get('store') for i in ids]
    assert values[:3] == [f'cinder://fast/{fake.OTHER_VOLUME}',
                          f'cinder://fast/{fake.VOLUME}',
                          f'cinder://slow/{fake.OTHER_VOLUME}']
    assert stores == ['fast', 'fast', 'slow', None, None, None]
    assert json.loads(after[ids[1]]['meta_data'])['keep'] == 'me'
    assert values[3:] == [f'cinder://{v}' for v in (
        '11111111-2222-4333-8444-555555555555', MISSING, DOWN)]
    summary = json.loads(out)
    assert summary['updated'] == 3
    report = json.loads(report_file.read_text())
    assert report['unresolved'] == {'backend-elsewhere': 1,
                                    'backend-not-found': 1,
                                    'backend-unavailable': 1}
    # The new-style URL needed no question; each legacy volume one GET.
    volume_gets = [r.url for r in cinder_api.request_history
                   if r.method == 'GET']
    assert f'cinder://fast/{fake.OTHER_VOLUME}' not in volume_gets
    assert volume_gets.count(fake.volume_url(fake.VOLUME)) == 1
    text = out + err + report_file.read_text()
    assert fake.PASSWORD not in text and fake.TOKEN not in text

    # Cinder back up: a rerun finishes the job and asks nothing twice.
    cinder_api.get(fake.volume_url(DOWN),
                   json=fake.volume_body('slow-hdd', DOWN))
    code, out, err = backfill(config)
    assert code == 0, err
    assert json.loads(out)['updated'] == 1
    assert rows(database)[ids[5]]['value'] == f'cinder://slow/{DOWN}'


def test_no_backend_lookups_asks_nothing(config, database, cinder_api):
    _, [location_id] = add_image(database,
                                 [legacy(f'cinder://{fake.VOLUME}')])
    code, out, err = backfill(config, '--no-backend-lookups')
    assert code == 0, err
    summary = json.loads(out)
    assert summary['updated'] == 0 and summary['unresolved'] == 1
    assert cinder_api.call_count == 0
    assert rows(database)[location_id]['value'] == f'cinder://{fake.VOLUME}'


# -- a rewrite whose answer was lost ------------------------------------------

def rewriting_job(config, database):
    """A backfill of this process, asking the faked Cinder."""
    conf = cfg.ConfigOpts()
    conf(['--config-file', config], default_config_files=[])
    location_map = lmap.LocationMap.from_config(conf)
    return backfill_mod.Backfill(
        database, location_map, record_changes=True,
        lookups=lookups_mod.BackendLookups.from_location_map(location_map))


class _RolledBack(Exception):
    pass


def cut_after_commit(database, monkeypatch, landed=True, then=None):
    """The first write transaction loses its answer.

    :param landed: its commit reached the server (else it rolled back
        once the work was done).
    :param then: called before the connection error is raised.
    """
    writer = database.writer
    cut = []

    @contextlib.contextmanager
    def cut_once():
        if cut:
            with writer() as conn:
                yield conn
            return
        cut.append(True)
        try:
            with writer() as conn:
                yield conn
                if not landed:
                    raise _RolledBack()
        except _RolledBack:
            pass
        if then:
            then()
        raise oslo_db_exc.DBConnectionError('lost on the way back')
    monkeypatch.setattr(database, 'writer', cut_once)
    monkeypatch.setattr(database, 'retry_interval', 0)
    return cut


def test_a_rewrite_whose_answer_was_lost_is_counted_as_the_runs(
        config, database, cinder_api, monkeypatch):
    # The URL and the store landed, the answer did not: the retry finds
    # the rows holding what it wrote, and counts them as this run's
    # changes (not as rows someone else changed).
    _, ids = add_image(database, [
        legacy(f'cinder://{fake.VOLUME}', '{"keep": "me"}'),
        legacy(f'cinder://{fake.OTHER_VOLUME}')])
    job = rewriting_job(config, database)
    cut = cut_after_commit(database, monkeypatch)
    report = job.run()
    try:
        assert cut
        assert (report.updated, report.errors, report.conflicts_retried) \
            == (2, 0, 0)
        changes = sorted(job.changes, key=lambda c: c['location_id'])
        assert [c['location_id'] for c in changes] == ids
        assert [c['store'] for c in changes] == ['fast', 'slow']
        assert not any(c.get('unconfirmed') for c in changes)
    finally:
        job.close()
    after = rows(database)
    assert [after[i]['value'] for i in ids] == [
        f'cinder://fast/{fake.VOLUME}', f'cinder://slow/{fake.OTHER_VOLUME}']
    assert json.loads(after[ids[0]]['meta_data']) == {'keep': 'me',
                                                      'store': 'fast'}


@pytest.mark.parametrize('landed', [True, False], ids=['landed', 'lost'])
def test_a_stop_with_a_rewrite_in_doubt_lists_it_unconfirmed(
        config, database, cinder_api, monkeypatch, landed):
    _, ids = add_image(database, [legacy(f'cinder://{fake.VOLUME}')])
    job = rewriting_job(config, database)
    cut_after_commit(database, monkeypatch, landed, then=job.stop)
    report = job.run()
    try:
        assert report.interrupted
        assert (report.updated, report.unconfirmed) == (0, 1)
        [change] = list(job.changes)
        assert change['location_id'] == ids[0]
        assert change['unconfirmed'] is True
        assert change['new_url'] == f'cinder://fast/{fake.VOLUME}'
    finally:
        job.close()
    assert rows(database)[ids[0]]['value'] == (
        f'cinder://fast/{fake.VOLUME}' if landed
        else f'cinder://{fake.VOLUME}')
