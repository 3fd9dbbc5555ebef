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

"""The status machines: multistore_prefix/domain/status.py."""

import itertools
import random
import threading
import types

from automaton import exceptions as automaton_exc
from hypothesis import given
from hypothesis import strategies as st
import pytest

from multistore_prefix.domain import status
from multistore_prefix import exceptions

# Glance's valid_state_targets, written out here rather than read from the
# module, so the test checks the machine against Glance, not against itself.
GLANCE_TARGETS = {
    'queued': {'saving', 'uploading', 'importing', 'active', 'deleted'},
    'saving': {'active', 'killed', 'deleted', 'queued'},
    'uploading': {'importing', 'queued', 'deleted'},
    'importing': {'active', 'deleted', 'queued'},
    'active': {'pending_delete', 'deleted', 'deactivated'},
    'killed': {'deleted'},
    'pending_delete': {'deleted', 'active'},
    'deactivated': {'active', 'deleted'},
    'deleted': set(),
}

# (from, event) -> to: the documented event table.
IMAGE_TABLE = {
    ('queued', 'upload_started'): 'saving',
    ('queued', 'stage_started'): 'uploading',
    ('queued', 'import_started'): 'importing',
    ('queued', 'location_added'): 'active',
    ('queued', 'delete'): 'deleted',
    ('saving', 'upload_finished'): 'active',
    ('saving', 'upload_failed'): 'killed',
    ('saving', 'upload_reverted'): 'queued',
    ('saving', 'delete'): 'deleted',
    ('uploading', 'import_started'): 'importing',
    ('uploading', 'stage_reverted'): 'queued',
    ('uploading', 'delete'): 'deleted',
    ('importing', 'import_finished'): 'active',
    ('importing', 'import_reverted'): 'queued',
    ('importing', 'delete'): 'deleted',
    ('active', 'deactivate'): 'deactivated',
    ('active', 'delayed_delete'): 'pending_delete',
    ('active', 'delete'): 'deleted',
    ('killed', 'delete'): 'deleted',
    ('deactivated', 'reactivate'): 'active',
    ('deactivated', 'delete'): 'deleted',
    ('pending_delete', 'delete'): 'deleted',
    ('pending_delete', 'restore'): 'active',
}

LOCATION_TABLE = {
    ('active', 'delayed_delete'): 'pending_delete',
    ('active', 'delete'): 'deleted',
    ('pending_delete', 'delete'): 'deleted',
    ('pending_delete', 'restore'): 'active',
}

GUARDED = {
    ('queued', 'upload_started'), ('queued', 'import_started'),
    ('queued', 'location_added'), ('uploading', 'import_started'),
    ('saving', 'upload_finished'), ('importing', 'import_finished'),
}

# The issue's named events, plus the ones the extra moves need.
ISSUE_EVENTS = {'upload_started', 'upload_finished', 'upload_failed',
                'import_started', 'import_finished', 'deactivate',
                'reactivate', 'delete', 'delayed_delete', 'restore'}
EXTRA_EVENTS = {'stage_started', 'stage_reverted', 'upload_reverted',
                'import_reverted', 'location_added'}

# Statuses and events the machine must refuse outright.
BOGUS_STATES = ['', 'QUEUED', 'active ', 'unknown']
BOGUS_EVENTS = ['', 'Delete', 'activate', 'deleted', 'upload']


def make_image(image_id='4b6c-img', disk_format='raw',
               container_format='bare'):
    return types.SimpleNamespace(image_id=image_id, disk_format=disk_format,
                                 container_format=container_format,
                                 status='queued', size=None)


# --- the table -------------------------------------------------------------

def test_states_and_events():
    assert set(status.IMAGE_STATES) == set(GLANCE_TARGETS)
    assert len(status.IMAGE_STATES) == 9
    assert set(status.IMAGE_EVENTS) == ISSUE_EVENTS | EXTRA_EVENTS
    assert status.LOCATION_STATES == ('active', 'pending_delete', 'deleted')
    assert set(status.LOCATION_EVENTS) == {'delete', 'delayed_delete',
                                           'restore'}


def test_moves_are_exactly_glances_targets():
    found = {}
    for from_status, _event, to_status in status.transitions('image'):
        found.setdefault(from_status, set()).add(to_status)
    assert {s: found.get(s, set()) for s in GLANCE_TARGETS} == GLANCE_TARGETS
    assert len(status.transitions()) == sum(map(len,
                                                GLANCE_TARGETS.values()))


def test_each_move_has_exactly_one_event():
    edges = [(f, t) for f, _e, t in status.transitions()]
    assert len(edges) == len(set(edges)) == 23


def test_transitions_is_the_documented_table():
    rows = status.transitions('image')
    assert {(f, e): t for f, e, t in rows} == IMAGE_TABLE
    assert len(rows) == len(IMAGE_TABLE)
    assert all(isinstance(row, status.Move) for row in rows)
    # Grouped by source status in state order, as the CLI prints it.
    order = [status.IMAGE_STATES.index(row.from_status) for row in rows]
    assert order == sorted(order)
    assert {(f, e): t for f, e, t in status.transitions('location')} == \
        LOCATION_TABLE


def test_transitions_come_from_the_automaton_machine():
    machine = status.machine()
    assert set(status.transitions()) == set(machine)
    assert machine.default_start_state == 'queued'
    assert machine.frozen


def test_unknown_machine_name():
    with pytest.raises(ValueError, match="unknown status machine 'task'"):
        status.transitions('task')


def test_allowed_events():
    assert status.allowed_events('queued') == [
        'delete', 'import_started', 'location_added', 'stage_started',
        'upload_started']
    assert status.allowed_events('deleted') == []
    assert status.allowed_events('nonsense') == []
    assert status.allowed_events('pending_delete', 'location') == [
        'delete', 'restore']


# --- the full cross product ------------------------------------------------

@pytest.mark.parametrize('current, event', list(itertools.product(
    status.IMAGE_STATES + tuple(BOGUS_STATES),
    status.IMAGE_EVENTS + tuple(BOGUS_EVENTS))))
def test_image_cross_product(current, event):
    image = make_image()
    before = dict(vars(image))
    if (current, event) in IMAGE_TABLE:
        assert status.next_status(current, event, image) == \
            IMAGE_TABLE[(current, event)]
    else:
        with pytest.raises(status.InvalidTransition) as info:
            status.next_status(current, event, image)
        err = info.value
        assert (err.image_id, err.current, err.event, err.machine) == (
            '4b6c-img', current, event, 'image')
        assert err.allowed == sorted(
            e for (s, e) in IMAGE_TABLE if s == current)
        assert isinstance(err, exceptions.MultistorePrefixError)
    # Pure: the image is never touched, accepted or refused.
    assert vars(image) == before


def test_cross_product_size():
    # 9 states x 15 events: 23 allowed, 112 refused.
    pairs = list(itertools.product(status.IMAGE_STATES, status.IMAGE_EVENTS))
    allowed = [p for p in pairs if p in IMAGE_TABLE]
    assert (len(pairs), len(allowed)) == (135, 23)


@pytest.mark.parametrize('current, event', list(itertools.product(
    status.LOCATION_STATES + ('queued',),
    status.LOCATION_EVENTS + ('deactivate',))))
def test_location_cross_product(current, event):
    if (current, event) in LOCATION_TABLE:
        assert status.next_location_status(current, event, 'img', 7) == \
            LOCATION_TABLE[(current, event)]
    else:
        with pytest.raises(status.InvalidTransition) as info:
            status.next_location_status(current, event, 'img', 7)
        err = info.value
        assert (err.machine, err.image_id, err.location_id, err.current,
                err.event) == ('location', 'img', 7, current, event)
        assert str(err).startswith('location 7 of image img: ')


@pytest.mark.parametrize('current, event', list(itertools.product(
    status.IMAGE_STATES, status.IMAGE_EVENTS)))
def test_next_status_agrees_with_automaton(current, event):
    # The automaton machine and the pure table are one machine.
    if current in status.TERMINAL_STATES:
        with pytest.raises(automaton_exc.InvalidState):
            status.machine(start_state=current)
        return
    machine = status.machine(start_state=current)
    try:
        status.next_status(current, event, make_image())
    except status.InvalidTransition:
        with pytest.raises(automaton_exc.NotFound):
            machine.process_event(event)
        assert machine.current_state == current
    else:
        machine.process_event(event)
        assert machine.current_state == status.next_status(
            current, event, make_image())


# --- guards ----------------------------------------------------------------

def test_guarded_moves():
    assert status.GUARDED == GUARDED


@pytest.mark.parametrize('current, event', sorted(GUARDED))
@pytest.mark.parametrize('formats, missing', [
    ((None, 'bare'), ['disk_format']),
    (('raw', None), ['container_format']),
    ((None, None), ['disk_format', 'container_format']),
    (('', 'bare'), ['disk_format']),
])
def test_guard_needs_both_formats(current, event, formats, missing):
    image = make_image(disk_format=formats[0], container_format=formats[1])
    before = dict(vars(image))
    with pytest.raises(status.FormatsRequired) as info:
        status.next_status(current, event, image)
    err = info.value
    assert isinstance(err, status.GuardFailed)
    assert err.missing == missing
    assert (err.image_id, err.current, err.event, err.target) == (
        '4b6c-img', current, event, IMAGE_TABLE[(current, event)])
    text = str(err)
    for word in ['4b6c-img', repr(current), repr(event)] + missing:
        assert word in text
    assert vars(image) == before


@pytest.mark.parametrize('current, event', sorted(GUARDED))
def test_guarded_move_without_image_is_refused(current, event):
    with pytest.raises(status.GuardFailed) as info:
        status.next_status(current, event)
    assert not isinstance(info.value, status.FormatsRequired)
    assert 'the image is needed' in str(info.value)


@pytest.mark.parametrize('current, event', sorted(set(IMAGE_TABLE) - GUARDED))
def test_unguarded_moves_need_no_formats(current, event):
    image = make_image(disk_format=None, container_format=None)
    assert status.next_status(current, event, image) == \
        IMAGE_TABLE[(current, event)]
    assert status.next_status(current, event) == IMAGE_TABLE[(current, event)]


def test_invalid_event_is_reported_before_guards():
    # An illegal event on an image without formats names the event, not the
    # formats: the guard is only asked about moves that exist.
    with pytest.raises(status.InvalidTransition):
        status.next_status('active', 'upload_finished',
                           make_image(disk_format=None))


def test_guard_accepts_any_object_with_the_attributes():
    class Image:
        image_id = 'x'
        disk_format = 'qcow2'
        container_format = 'bare'
    assert status.next_status('queued', 'upload_started', Image()) == 'saving'

    class Bare:
        image_id = 'y'
    with pytest.raises(status.FormatsRequired) as info:
        status.next_status('queued', 'upload_started', Bare())
    assert info.value.missing == ['disk_format', 'container_format']


# --- messages --------------------------------------------------------------

def test_refused_event_message_names_image_state_event_and_choices():
    with pytest.raises(status.InvalidTransition) as info:
        status.next_status('queued', 'deactivate', make_image('img-42'))
    assert str(info.value) == (
        "image img-42: event 'deactivate' is not allowed in status "
        "'queued'; allowed events: delete, import_started, location_added, "
        "stage_started, upload_started")


def test_terminal_status_message():
    with pytest.raises(status.InvalidTransition) as info:
        status.next_status('deleted', 'restore', make_image('img-42'))
    assert info.value.allowed == []
    assert str(info.value) == (
        "image img-42: event 'restore' is not allowed in status 'deleted'; "
        "allowed events: none, 'deleted' is terminal")


def test_unknown_event_message():
    with pytest.raises(status.InvalidTransition) as info:
        status.next_status('active', 'destroy', make_image('img-42'))
    assert str(info.value) == (
        "image img-42: 'destroy' is not one of the image events in status "
        "'active'; allowed events: deactivate, delayed_delete, delete")


def test_unknown_status_message():
    with pytest.raises(status.InvalidTransition) as info:
        status.next_status('frozen', 'delete', make_image('img-42'))
    assert info.value.allowed == []
    assert str(info.value).startswith(
        "image img-42: status 'frozen' is not one of the image statuses "
        "(queued, saving,")
    assert "cannot apply event 'delete'" in str(info.value)


def test_image_without_id():
    with pytest.raises(status.InvalidTransition,
                       match=r"^image \(no id\): event 'reactivate'"):
        status.next_status('active', 'reactivate')


def test_location_message_never_holds_the_url():
    with pytest.raises(status.InvalidTransition) as info:
        status.next_location_status('deleted', 'restore', 'img-42', 3)
    assert str(info.value) == (
        "location 3 of image img-42: event 'restore' is not allowed in "
        "status 'deleted'; allowed events: none, 'deleted' is terminal")


def test_status_conflict():
    err = status.StatusConflict('img-42', 'deactivated', 'active',
                                'deleted', event='reactivate')
    assert (err.image_id, err.expected, err.target, err.found, err.event) == (
        'img-42', 'deactivated', 'active', 'deleted', 'reactivate')
    assert str(err) == (
        "image img-42: event 'reactivate' (deactivated -> active) lost a "
        "race: status is now 'deleted', not 'deactivated'; nothing written")
    gone = status.StatusConflict('img-42', 'queued', 'saving', None)
    assert str(gone) == (
        "image img-42: status change (queued -> saving) lost a race: the "
        "row is gone, not 'queued'; nothing written")
    assert isinstance(err, status.StatusError)


# --- machines and threads --------------------------------------------------

def test_machine_copies_are_independent():
    first = status.machine()
    second = status.machine()
    first.process_event('upload_started')
    first.process_event('upload_finished')
    assert (first.current_state, second.current_state) == ('active',
                                                           'queued')
    assert status.machine('location').current_state == 'active'
    # The module machines are never initialized nor changeable.
    for frozen in status._MACHINES.values():
        assert frozen.current_state is None
        assert frozen.frozen
    with pytest.raises(automaton_exc.FrozenMachine):
        first.add_state('lost')


def test_machine_starts_where_asked():
    machine = status.machine(start_state='deactivated')
    assert machine.current_state == 'deactivated'
    with pytest.raises(automaton_exc.NotFound):
        status.machine(start_state='frozen')


def _walk(rng, steps):
    """A random path of events through the table: [(event, to), ...]."""
    path, current = [], 'queued'
    for _ in range(steps):
        choices = status.allowed_events(current)
        if not choices:
            break
        event = rng.choice(choices)
        current = IMAGE_TABLE[(current, event)]
        path.append((event, current))
    return path


def test_many_threads_feed_their_own_copies():
    threads_count, steps = 32, 400
    barrier = threading.Barrier(threads_count)
    results, errors = {}, []

    def run(seed):
        try:
            rng = random.Random(seed)
            # Restart from queued whenever the walk reaches deleted.
            paths = [_walk(rng, 40) for _ in range(steps // 40)]
            image = make_image(image_id=f'img-{seed}')
            barrier.wait()
            seen = []
            for path in paths:
                machine = status.machine()
                for event, expected in path:
                    before = machine.current_state
                    machine.process_event(event)
                    # The pure function, shared by every thread, agrees.
                    assert status.next_status(before, event, image) == \
                        expected
                    assert machine.current_state == expected
                    seen.append(machine.current_state)
                # A refused event changes nothing.
                with pytest.raises(automaton_exc.AutomatonException):
                    machine.process_event('not-an-event')
                assert machine.current_state == (path[-1][1] if path
                                                 else 'queued')
            results[seed] = seen
        except BaseException as exc:  # report it from the main thread
            errors.append((seed, exc))
            barrier.abort()

    threads = [threading.Thread(target=run, args=(seed,))
               for seed in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == threads_count
    # Each thread saw its own path, and only statuses of the table.
    assert len({tuple(seen) for seen in results.values()}) == threads_count
    assert set(itertools.chain(*results.values())) <= set(
        status.IMAGE_STATES)


@given(st.lists(st.sampled_from(status.IMAGE_EVENTS), max_size=30))
def test_any_event_sequence_stays_in_the_table(events):
    machine = status.machine()
    current = 'queued'
    for event in events:
        try:
            target = status.next_status(current, event, make_image())
        except status.InvalidTransition:
            assert (current, event) not in IMAGE_TABLE
            continue
        assert IMAGE_TABLE[(current, event)] == target
        machine.process_event(event)
        current = target
        assert machine.current_state == current
        assert current in status.IMAGE_STATES
