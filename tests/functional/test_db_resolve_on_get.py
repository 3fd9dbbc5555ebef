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


"""Resolve on GET through the gateway (multistore_prefix/domain/
resolution.py), on the three databases."""

import types

import pytest
import sqlalchemy as sa

from multistore_prefix.db import models
from multistore_prefix import deciding
from multistore_prefix.domain import resolution

_L = models.image_locations


def _add(gateway, locations):
    image = gateway.get_image_factory().new_image(
        name='legacy', extra_properties={'a': 'b'})
    image.locations.extend({'url': url, 'metadata': metadata,
                            'status': 'active'}
                           for url, metadata in locations)
    gateway.get_repo().add(image)
    return image.image_id


def _stored_metadata(url, image_id):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [text for (text,) in conn.execute(
                sa.select(models.image_locations.c.meta_data)
                .where(models.image_locations.c.image_id == image_id)
                .order_by(models.image_locations.c.id))]
    finally:
        engine.dispose()


def test_longest_prefix_stale_store_and_unresolvable(db_url, make_gateway):
    image_id = _add(make_gateway(db_url, stores=None), [
        ('file:///var/lib/glance/images2/a', {}),
        ('file:///var/lib/glance/images/b', {'store': 'renamed'}),
        ('file:///var/lib/glance/images/../../../etc/passwd', {}),
        ('rbd://fsid/pool/img/snap', {'other': 1}),
    ])
    image = make_gateway(db_url).get_repo().get(image_id)
    assert [loc['metadata'] for loc in image.locations] == [
        {'store': 'slow'}, {'store': 'fast'}, {}, {'other': 1}]
    assert _stored_metadata(db_url, image_id) == [
        '{"store": "slow"}', '{"store": "fast"}', '{}', '{"other": 1}']


def test_read_only_database_still_returns_resolved_image(
        database_server, db_url, make_gateway, statement_log):
    image_id = _add(make_gateway(db_url, stores=None),
                    [('file:///var/lib/glance/images2/a', {'k': 'v'})])
    gateway = make_gateway(database_server.read_only_url(db_url))
    image = gateway.get_repo().get(image_id)
    assert image.locations[0]['metadata'] == {'k': 'v', 'store': 'slow'}
    assert image.extra_properties == {'a': 'b'}
    assert _stored_metadata(db_url, image_id) == ['{"k": "v"}']


LOCATIONS = [('file:///var/lib/glance/images2/x', {'keep': 'me'}),
             ('file:///var/lib/glance/images/y', {'store': 'fast'}),
             ('file:///elsewhere/z', {})]


@pytest.fixture
def gateway(db_url, make_gateway):
    return make_gateway(db_url)


def test_get_resolves_and_writes_only_that(db_url, gateway, statement_log):
    image_id = _add(gateway, LOCATIONS)
    with statement_log(gateway.database.engine) as log:
        image = gateway.get_repo().get(image_id)
    assert [loc['metadata'] for loc in image.locations] == [
        {'keep': 'me', 'store': 'slow'}, {'store': 'fast'}, {}]
    assert _stored_metadata(db_url, image_id) == [
        '{"keep": "me", "store": "slow"}', '{"store": "fast"}', '{}']
    # One statement, on image_locations' meta_data (and updated_at).
    [write] = log.writes
    assert 'image_locations' in write and 'meta_data' in write
    assert 'images ' not in write and 'value' not in write
    # The image handed out is snapshotted as written: nothing more.
    assert not image.changes()


def test_resolved_image_writes_nothing(gateway, statement_log):
    image_id = _add(gateway, LOCATIONS)
    gateway.get_repo().get(image_id)
    with statement_log(gateway.database.engine) as log:
        gateway.get_repo().get(image_id)
    assert log.writes == []


def test_read_only_caller_still_gets_the_resolved_image(db_url, gateway):
    image_id = _add(gateway, LOCATIONS)
    repo = gateway.get_repo(types.SimpleNamespace(read_only=True))
    image = repo.get(image_id)
    assert image.locations[0]['metadata'] == {'keep': 'me', 'store': 'slow'}
    assert _stored_metadata(db_url, image_id)[0] == '{"keep": "me"}'
    # Not written, so still a change for a caller who may save later.
    assert image.changes().locations_updated


@pytest.mark.engines('postgresql', 'mysql')
def test_rows_another_writer_holds_are_resolved_in_memory(db_url, gateway):
    image_id = _add(gateway, LOCATIONS)
    engine = sa.create_engine(gateway.database.engine.url,
                              poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as other:
            other.execute(sa.select(_L.c.id).where(_L.c.image_id == image_id)
                          .with_for_update())
            image = gateway.get_repo().get(image_id)
            assert image.locations[0]['metadata']['store'] == 'slow'
    finally:
        engine.dispose()
    assert _stored_metadata(db_url, image_id)[0] == '{"keep": "me"}'
    # The next get, the rows free, writes it.
    gateway.get_repo().get(image_id)
    assert _stored_metadata(db_url, image_id)[0] == (
        '{"keep": "me", "store": "slow"}')


def test_a_row_changed_before_the_lock_is_decided_again(db_url, gateway):
    image_id = _add(gateway, LOCATIONS)
    real = gateway.get_decider()

    class Meanwhile(deciding.Decider):
        """Another writer adds a key between the read and the lock."""

        def __init__(self):
            super().__init__(real.resolver)
            self.reads = 0

        def classify(self, rows, last_id):
            self.reads += 1
            if self.reads == 1:
                with gateway.database.writer() as conn:
                    conn.execute(sa.update(_L).where(
                        _L.c.id == rows[0][0]).values(
                            meta_data='{"keep": "me", "theirs": 1}'))
            return super().classify(rows, last_id)

    repo = resolution.ImageRepoProxy(gateway.get_repo().base, Meanwhile())
    image = repo.get(image_id)
    assert _stored_metadata(db_url, image_id)[0] == (
        '{"keep": "me", "theirs": 1, "store": "slow"}')
    assert image.locations[0]['metadata'] == {'keep': 'me', 'theirs': 1,
                                              'store': 'slow'}


def test_other_calls_pass_through(gateway):
    calls = []

    class Below:
        def __getattr__(self, name):
            return lambda *args, **kwargs: calls.append(name)

    repo = resolution.ImageRepoProxy(Below(), gateway.get_decider())
    repo.list()
    repo.add(None)
    repo.save(None, from_state='queued')
    repo.remove(None)
    assert calls == ['list', 'add', 'save', 'remove']


def test_only_live_locations_get_a_store(db_url, gateway):
    image_id = _add(gateway, [
        ('file:///var/lib/glance/images2/x', {}),
        ('file:///var/lib/glance/images2/y', {})])
    with gateway.database.writer() as conn:
        conn.execute(sa.update(_L).where(
            _L.c.image_id == image_id,
            _L.c.value == 'file:///var/lib/glance/images2/y').values(
                status='pending_delete'))
    image = gateway.get_repo().get(image_id)
    assert [loc['metadata'] for loc in image.locations] == [
        {'store': 'slow'}, {}]
    assert _stored_metadata(db_url, image_id) == ['{"store": "slow"}', '{}']
