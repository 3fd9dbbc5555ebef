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

"""Status moves persisted atomically, on SQLite, PostgreSQL and MariaDB."""

import threading
import uuid

from oslo_utils import timeutils
import pytest

from multistore_prefix.db import api
from multistore_prefix.domain import image as image_mod
from multistore_prefix.domain import status

ALLOWED = status.transitions('image')
FORBIDDEN = [(state, event) for state in status.IMAGE_STATES
             for event in status.IMAGE_EVENTS
             if (state, event) not in {(m[0], m[1]) for m in ALLOWED}]


def stored(gateway, image_status, **columns):
    """An image stored with ``image_status`` (as a migration would)."""
    image_id = str(uuid.uuid4())
    values = {'id': image_id, 'status': image_status,
              'disk_format': 'qcow2', 'container_format': 'bare', **columns}
    with gateway.database.writer() as conn:
        api.image_create(conn, values, {}, [], [], timeutils.utcnow())
    return image_id


def status_in_db(gateway, image_id):
    with gateway.database.reader() as conn:
        return conn.exec_driver_sql(
            'SELECT status FROM images WHERE id = '
            + ('?' if conn.dialect.name == 'sqlite' else '%s'),
            (image_id,)).scalar_one()


@pytest.fixture
def gateway(db_url, make_gateway):
    return make_gateway(db_url, stores=None)


def test_every_allowed_move_is_persisted(gateway, statement_log):
    repo = gateway.get_repo()
    for from_status, event, to_status in ALLOWED:
        image_id = stored(gateway, from_status)
        image = repo.get(image_id)
        assert image.transition(event) == (from_status, event, to_status)
        with statement_log(gateway.database.engine) as log:
            repo.save(image)
        assert status_in_db(gateway, image_id) == to_status, event
        # One UPDATE, and it carries the status it moves from.
        [update] = log.writes
        assert 'status' in update.split('WHERE', 1)[1], update


def test_every_forbidden_move_is_refused_and_nothing_written(gateway):
    repo = gateway.get_repo()
    for from_status, event in FORBIDDEN:
        image_id = stored(gateway, from_status)
        image = repo.get(image_id)
        with pytest.raises(status.InvalidTransition) as caught:
            image.transition(event)
        message = str(caught.value)
        assert image_id in message and from_status in message
        assert event in message
        assert image.status == from_status
        assert not repo.save(image)
        assert status_in_db(gateway, image_id) == from_status


def test_status_is_set_only_by_an_event(gateway):
    image = gateway.get_repo().get(stored(gateway, 'active'))
    with pytest.raises(image_mod.ReadOnlyAttribute, match='transition'):
        image.status = 'deleted'


@pytest.mark.parametrize('event', ['upload_started', 'location_added',
                                   'import_started'])
def test_formats_guard_holds_in_the_machine(gateway, event):
    image_id = stored(gateway, 'queued', disk_format=None)
    image = gateway.get_repo().get(image_id)
    with pytest.raises(status.GuardFailed):
        image.transition(event)
    assert status_in_db(gateway, image_id) == 'queued'


RACES = [('active', ('deactivate', 'delete')),
         ('saving', ('upload_finished', 'upload_failed')),
         ('active', ('delete', 'delete'))]


@pytest.mark.parametrize('from_status, events', RACES)
def test_racing_transitions_have_exactly_one_winner(
        gateway, from_status, events):
    threads_per_event, rounds = 4, 3
    for _ in range(rounds):
        image_id = stored(gateway, from_status)
        # Every racer reads before anyone saves.
        images = [(event, gateway.get_repo().get(image_id))
                  for event in events for _ in range(threads_per_event)]
        barrier = threading.Barrier(len(images))
        wins, losses, other = [], [], []

        def race(event, image):
            image.transition(event)
            barrier.wait()
            try:
                gateway.get_repo().save(image)
                wins.append(image.status)
            except status.StatusConflict as exc:
                losses.append((exc.expected, exc.found))
            except Exception as exc:  # any other outcome fails the test
                other.append(exc)
        threads = [threading.Thread(target=race, args=pair)
                   for pair in images]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert other == []
        assert len(wins) == 1, wins
        final = status_in_db(gateway, image_id)
        assert wins == [final]
        assert final in {to for f, e, to in ALLOWED
                         if f == from_status and e in events}
        assert losses == [(from_status, final)] * (len(images) - 1)


def test_lost_race_says_the_status_it_found(gateway):
    image_id = stored(gateway, 'active')
    repo = gateway.get_repo()
    first, second = repo.get(image_id), repo.get(image_id)
    first.transition('deactivate')
    repo.save(first)
    second.transition('delete')
    with pytest.raises(status.StatusConflict) as caught:
        repo.save(second)
    assert (caught.value.expected, caught.value.target,
            caught.value.found) == ('active', 'deleted', 'deactivated')
    assert 'deactivated' in str(caught.value)
    assert status_in_db(gateway, image_id) == 'deactivated'


def test_location_status_moves_by_event(gateway):
    image_id = str(uuid.uuid4())
    with gateway.database.writer() as conn:
        api.image_create(conn, {'id': image_id, 'status': 'active'}, {}, [],
                         [{'url': 'file:///a', 'metadata': {}}],
                         timeutils.utcnow())
    repo = gateway.get_repo()
    image = repo.get(image_id)
    assert image.transition_location(0, 'delayed_delete') == (
        'active', 'delayed_delete', 'pending_delete')
    repo.save(image)
    image = repo.get(image_id)
    assert image.locations[0]['status'] == 'pending_delete'
    with pytest.raises(status.InvalidTransition):
        image.transition_location(0, 'delayed_delete')
    image.transition_location(0, 'restore')
    repo.save(image)
    assert repo.get(image_id).locations[0]['status'] == 'active'
