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


"""``backfill --revert REPORT``: the run that wrote REPORT, undone.

Through the real console script, on SQLite, PostgreSQL and MariaDB.
"""

import json

import pytest
import sqlalchemy as sa

from tests.functional.test_backfill_cli import _L
from tests.functional.test_backfill_cli import EXIT_CONFIG
from tests.functional.test_backfill_cli import legacy_locations
from tests.functional.test_backfill_cli import run_backfill
from tests.functional.test_backfill_cli import seed
from tests.functional.test_backfill_cli import summary
from tests.functional.test_backfill_cli import table_rows
from tests.functional.test_backfill_cli import write_conf

#: Texts whose store goes back exactly, whatever their layout.
ODD_TEXTS = ['{"a":1e400}', '{ "x" : [1,2] }', '{"store": "renamed"}',
             '{"n": ' + '9' * 5000 + '}']


@pytest.fixture
def engine(db_url):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def texts(engine):
    return {i: row['meta_data'] for i, row in table_rows(engine, _L).items()}


def backfill_with_report(engine, tmp_path, db_url, count=40):
    seeded = seed(engine, legacy_locations(count - len(ODD_TEXTS)) + [
        (f'file:///var/lib/glance/images2/odd-{n}', text)
        for n, text in enumerate(ODD_TEXTS)], per_image=2)
    conf = write_conf(tmp_path, db_url)
    report = tmp_path / 'run.json'
    result = run_backfill(conf, '--report', str(report), '--batch-size',
                          '7', '-f', 'json')
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout)['updated'] == count
    return seeded, conf, report


def test_revert_puts_back_exactly_what_the_run_changed(engine, db_url,
                                                       tmp_path):
    seeded, conf, report = backfill_with_report(engine, tmp_path, db_url)
    changes = json.loads(report.read_text())['changed']
    assert {c['location_id'] for c in changes} == set(seeded)
    assert all('previous_store' in c and 'sha256' in c for c in changes)
    result = run_backfill(conf, '--revert', str(report), '-f', 'json')
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout)['reverted'] == len(seeded)
    assert texts(engine) == {i: row['meta_data']
                             for i, row in seeded.items()}
    # Undone already: a second revert finds every row as it was before
    # the run, counted apart, and leaves nothing.
    again = run_backfill(conf, '--revert', str(report), '-f', 'json')
    assert again.returncode == 0, again.stderr
    assert summary(again.stdout)['reverted'] == 0
    assert summary(again.stdout)['already_reverted'] == len(seeded)
    assert summary(again.stdout)['left'] == 0
    assert texts(engine) == {i: row['meta_data']
                             for i, row in seeded.items()}


def test_a_row_changed_since_is_left_and_listed(engine, db_url, tmp_path):
    seeded, conf, report = backfill_with_report(engine, tmp_path, db_url)
    ids = sorted(seeded)
    with engine.begin() as conn:
        # Someone added a key to one row, and moved another to a store.
        conn.execute(sa.update(_L).where(_L.c.id == ids[3]).values(
            meta_data=sa.func.replace(_L.c.meta_data, '}', ', "k": 1}')))
        conn.execute(sa.update(_L).where(_L.c.id == ids[5]).values(
            meta_data='{"store": "fast"}'))
    changed = texts(engine)
    dry = run_backfill(conf, '--revert', str(report), '--dry-run', '-f',
                       'json')
    assert dry.returncode == 0, dry.stderr
    assert summary(dry.stdout)['would_revert'] == len(ids) - 2
    assert texts(engine) == changed  # a dry run writes nothing
    out = tmp_path / 'revert.json'
    result = run_backfill(conf, '--revert', str(report), '--report',
                          str(out), '-f', 'json')
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout)['reverted'] == len(ids) - 2
    after = texts(engine)
    for location_id, row in seeded.items():
        if location_id in (ids[3], ids[5]):
            assert after[location_id] == changed[location_id]
        else:
            assert after[location_id] == row['meta_data']
    body = json.loads(out.read_text())
    assert sorted(r['location_id'] for r in body['left_locations']) == [
        ids[3], ids[5]]
    assert {r['reason'] for r in body['left_locations']} == {
        'changed-since'}
    assert len(body['reverted_changes']) == len(ids) - 2


def test_revert_refuses_what_it_cannot_undo(engine, db_url, tmp_path):
    seed(engine, legacy_locations(6))
    conf = write_conf(tmp_path, db_url)
    dry_report = tmp_path / 'dry.json'
    run_backfill(conf, '--dry-run', '--report', str(dry_report))
    before = texts(engine)
    for path, words in [(dry_report, 'dry run'),
                        (tmp_path / 'missing.json', 'cannot read it')]:
        result = run_backfill(conf, '--revert', str(path))
        assert result.returncode == EXIT_CONFIG
        [line] = result.stderr.strip().splitlines()
        assert words in line and str(path) in line
    assert texts(engine) == before
