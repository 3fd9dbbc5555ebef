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

"""Backend lookups in the backfill and on GET, on all three databases."""

import json

from oslo_config import cfg
import pytest

from multistore_prefix import backfill as backfill_mod
from multistore_prefix.db import engine as db_engine
from multistore_prefix.drivers import base
from multistore_prefix import gateway as gateway_mod
from multistore_prefix import location_map as lmap
from multistore_prefix import lookups
from tests.functional.test_backfill import add_image
from tests.functional.test_backfill import legacy
from tests.functional.test_backfill import rows
from tests.unit.test_lookups import VolumeTypes

CONF = """
[DEFAULT]
enabled_backends = fast:cinder, slow:cinder
[database]
connection = {url}
"""


@pytest.fixture
def conf(tmp_path, db_url):
    path = tmp_path / 'glance-api.conf'
    path.write_text(CONF.format(url=db_url))
    conf = cfg.ConfigOpts()
    conf(['--config-file', str(path)], default_config_files=[])
    return conf


@pytest.fixture
def database(db_url):
    database = db_engine.Database(db_url)
    yield database
    database.dispose()


def backends(volumes):
    return lookups.BackendLookups(
        [(store, VolumeTypes(store, volumes)) for store in ('fast', 'slow')])


def test_backfill_mixes_prefixes_and_backend_answers(conf, database):
    _, ids = add_image(database, [
        legacy('cinder://fast/v-new'),               # new style: by prefix
        legacy('cinder://v-legacy', '{"keep": 1}'),  # legacy: ask Cinder
        legacy('cinder://v-gone'),                   # Cinder: 404
        legacy('cinder://v-bronze'),                 # a type no store has
    ])
    job = backfill_mod.Backfill(
        database, lmap.LocationMap.from_config(conf),
        lookups=backends({'v-legacy': 'slow', 'v-bronze': 'bronze'}),
        record_changes=True)
    report = job.run()
    changes = list(job.changes)
    job.close()
    after = rows(database)
    assert after[ids[0]]['value'] == 'cinder://fast/v-new'
    assert json.loads(after[ids[0]]['meta_data']) == {'store': 'fast'}
    assert after[ids[1]]['value'] == 'cinder://slow/v-legacy'
    assert json.loads(after[ids[1]]['meta_data']) == {'keep': 1,
                                                      'store': 'slow'}
    assert [after[i]['value'] for i in ids[2:]] == ['cinder://v-gone',
                                                    'cinder://v-bronze']
    assert report.updated == 2
    assert report.unresolved == {base.NOT_FOUND: 1, base.ELSEWHERE: 1}
    assert {c.get('new_url') for c in changes} == {None,
                                                   'cinder://slow/v-legacy'}


def test_no_backend_lookups_means_no_questions(conf, database):
    _, [location_id] = add_image(database, [legacy('cinder://v1')])
    group = backends({'v1': 'fast'})
    job = backfill_mod.Backfill(database, lmap.LocationMap.from_config(conf))
    report = job.run()
    job.close()
    assert report.unresolved == {lmap.NO_PREFIX: 1}
    assert rows(database)[location_id]['value'] == 'cinder://v1'
    assert not group.lookups[0][1].asked


def test_a_rewrite_onto_a_url_the_image_has_is_reported(conf, database):
    _, ids = add_image(database, [legacy('cinder://v1'),
                                  ('cinder://fast/v1', '{"store": "fast"}',
                                   'active')])
    before = rows(database)
    job = backfill_mod.Backfill(database, lmap.LocationMap.from_config(conf),
                                lookups=backends({'v1': 'fast'}))
    report = job.run()
    job.close()
    assert rows(database) == before
    assert report.unresolved == {lmap.CONFLICT: 1}
    assert report.updated == 0


def test_get_rewrites_a_legacy_cinder_url_in_one_update(conf, database,
                                                        statement_log):
    image_id, [location_id] = add_image(database,
                                        [legacy('cinder://v1', '{"a": 1}')])
    gateway = gateway_mod.Gateway(conf)
    gateway.lookups = backends({'v1': 'slow'})
    try:
        repo = gateway.get_repo()
        with statement_log(gateway.database.engine) as log:
            image = repo.get(image_id)
        assert image.locations[0]['url'] == 'cinder://slow/v1'
        assert image.locations[0]['metadata'] == {'a': 1, 'store': 'slow'}
        assert [s.split()[0] for s in log.writes] == ['UPDATE']
        row = rows(database)[location_id]
        assert row['value'] == 'cinder://slow/v1'
        assert json.loads(row['meta_data']) == {'a': 1, 'store': 'slow'}
    finally:
        gateway.close()
