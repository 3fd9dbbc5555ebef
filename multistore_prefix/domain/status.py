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

"""Image and location status as automaton state machines.

The one place that owns status moves.  The domain never assigns a status: it
names what happened (an event) and :func:`next_status` answers with the
status to record, or raises.  The moves are Glance's own table of valid
status targets (``glance.domain.Image.valid_state_targets``), each given the
name of the event that causes it; ``deleted`` is terminal in both machines.

Thread safety: the two automaton machines are built once at import, frozen,
and never initialized nor fed, so any number of threads may call
:func:`next_status`.  :func:`machine` hands out shallow copies that share
the frozen tables and each have their own current state: one copy per
thread, as automaton's ``process_event`` reads then writes the state.
"""

from typing import Any
from typing import NamedTuple

from automaton import machines

from multistore_prefix import exceptions

IMAGE = 'image'
LOCATION = 'location'
MACHINE_NAMES = (IMAGE, LOCATION)

IMAGE_STATES = ('queued', 'saving', 'uploading', 'importing', 'active',
                'killed', 'deactivated', 'pending_delete', 'deleted')
IMAGE_START = 'queued'
LOCATION_STATES = ('active', 'pending_delete', 'deleted')
LOCATION_START = 'active'
TERMINAL_STATES = ('deleted',)

FORMAT_ATTRIBUTES = ('disk_format', 'container_format')


class Move(NamedTuple):
    """One allowed status move."""

    from_status: str
    event: str
    to_status: str


# Glance's valid_state_targets, grouped by source status in IMAGE_STATES
# order, so the machine lists them in this order.
_IMAGE_MOVES = (
    Move('queued', 'upload_started', 'saving'),
    # Staging for the interoperable import.
    Move('queued', 'stage_started', 'uploading'),
    # An import task (web-download, copy).
    Move('queued', 'import_started', 'importing'),
    # Data registered by a location, no upload.
    Move('queued', 'location_added', 'active'),
    Move('queued', 'delete', 'deleted'),
    Move('saving', 'upload_finished', 'active'),
    # The image is unusable (Glance's ``_delete`` on upload).
    Move('saving', 'upload_failed', 'killed'),
    # Rolled back so the client can retry (Glance's ``_restore``).
    Move('saving', 'upload_reverted', 'queued'),
    Move('saving', 'delete', 'deleted'),
    Move('uploading', 'import_started', 'importing'),
    Move('uploading', 'stage_reverted', 'queued'),
    Move('uploading', 'delete', 'deleted'),
    Move('importing', 'import_finished', 'active'),
    Move('importing', 'import_reverted', 'queued'),
    Move('importing', 'delete', 'deleted'),
    Move('active', 'deactivate', 'deactivated'),
    # Deleted with ``delayed_delete`` on: the scrubber finishes.
    Move('active', 'delayed_delete', 'pending_delete'),
    Move('active', 'delete', 'deleted'),
    Move('killed', 'delete', 'deleted'),
    Move('deactivated', 'reactivate', 'active'),
    Move('deactivated', 'delete', 'deleted'),
    Move('pending_delete', 'delete', 'deleted'),
    Move('pending_delete', 'restore', 'active'),
)

# Glance's database only sets a location to pending_delete or deleted when
# deleting it, and its scrubber moves pending_delete on to deleted; restore
# is the image's restore, so a restored image gets its data back.
_LOCATION_MOVES = (
    Move('active', 'delayed_delete', 'pending_delete'),
    Move('active', 'delete', 'deleted'),
    Move('pending_delete', 'delete', 'deleted'),
    Move('pending_delete', 'restore', 'active'),
)

#: The image moves that need both formats set.  Glance checks the formats
#: on the moves out of queued and uploading that bring data in; here they
#: also hold on the two that finish data, because Glance lets the formats
#: change while importing and no image may become active without them.
#: The location machine has no guards.
GUARDED = frozenset((
    ('queued', 'upload_started'),
    ('queued', 'import_started'),
    ('queued', 'location_added'),
    ('uploading', 'import_started'),
    ('saving', 'upload_finished'),
    ('importing', 'import_finished'),
))


def _build(states, moves, start) -> machines.FiniteMachine:
    machine = machines.FiniteMachine()
    for state in states:
        machine.add_state(state, terminal=state in TERMINAL_STATES)
    for move in moves:
        machine.add_transition(move.from_status, move.to_status, move.event)
    machine.default_start_state = start
    machine.freeze()
    return machine


_MACHINES = {
    IMAGE: _build(IMAGE_STATES, _IMAGE_MOVES, IMAGE_START),
    LOCATION: _build(LOCATION_STATES, _LOCATION_MOVES, LOCATION_START),
}
# (machine, status, event) -> status, read from the machines once.
_TARGETS = {(name, *move[:2]): move[2]
            for name, frozen in _MACHINES.items() for move in frozen}

IMAGE_EVENTS = tuple(sorted({move.event for move in _IMAGE_MOVES}))
LOCATION_EVENTS = tuple(sorted({move.event for move in _LOCATION_MOVES}))


class StatusError(exceptions.MultistorePrefixError):
    """A status event that cannot be applied; nothing was changed."""

    def __init__(self, message: str, machine: str, image_id: Any,
                 current: str, event: str, location_id: Any = None):
        self.machine = machine
        self.image_id = image_id
        self.location_id = location_id
        self.current = current
        self.event = event
        # A location is named by its row id, never by its URL, which may
        # hold credentials.
        subject = (f'image {image_id}' if image_id is not None
                   else 'image (no id)')
        if machine == LOCATION:
            where = (f'location {location_id}' if location_id is not None
                     else 'location')
            subject = f'{where} of {subject}'
        super().__init__(f'{subject}: {message}')


class InvalidTransition(StatusError):
    """The event is not allowed in the current status (or is unknown)."""

    def __init__(self, machine: str, image_id: Any, current: str,
                 event: str, location_id: Any = None):
        self.allowed = allowed_events(current, machine)
        if current not in _MACHINES[machine]:
            states = ', '.join(IMAGE_STATES if machine == IMAGE
                               else LOCATION_STATES)
            message = (f'status {current!r} is not one of the {machine} '
                       f'statuses ({states}); cannot apply event {event!r}')
        else:
            choices = (', '.join(self.allowed) if self.allowed
                       else f'none, {current!r} is terminal')
            known = IMAGE_EVENTS if machine == IMAGE else LOCATION_EVENTS
            what = (f'event {event!r} is not allowed' if event in known
                    else f'{event!r} is not one of the {machine} events')
            message = (f'{what} in status {current!r}; allowed events: '
                       f'{choices}')
        super().__init__(message, machine, image_id, current, event,
                         location_id)


class GuardFailed(StatusError):
    """The move exists but a guard refused it for this image."""

    def __init__(self, image_id: Any, move: Move, reason: str):
        self.target = move.to_status
        self.reason = reason
        super().__init__(
            f'event {move.event!r} cannot move status {move.from_status!r} '
            f'to {move.to_status!r}: {reason}',
            IMAGE, image_id, move.from_status, move.event)


class FormatsRequired(GuardFailed):
    """``disk_format`` and ``container_format`` must be set for this move."""

    def __init__(self, image_id: Any, move: Move, missing: list[str]):
        self.missing = list(missing)
        noun = 'is' if len(missing) == 1 else 'are'
        super().__init__(
            image_id, move, f'{" and ".join(missing)} {noun} not set; set '
                            f'{" and ".join(FORMAT_ATTRIBUTES)} first')


class StatusConflict(StatusError):
    """Another writer changed the status first; nothing was written.

    Raised when ``UPDATE ... WHERE status = :from_status`` matched no row;
    ``found`` is the status in the database now (``None``: the row is gone).
    """

    def __init__(self, image_id: Any, expected: str, target: str,
                 found: str | None, event: str | None = None):
        self.expected = expected
        self.target = target
        self.found = found
        cause = f'event {event!r}' if event else 'status change'
        now = (f'status is now {found!r}' if found is not None
               else 'the row is gone')
        super().__init__(
            f'{cause} ({expected} -> {target}) lost a race: {now}, not '
            f'{expected!r}; nothing written',
            IMAGE, image_id, expected, event or '')


def _machine(machine_name: str) -> machines.FiniteMachine:
    try:
        return _MACHINES[machine_name]
    except KeyError:
        raise ValueError(f'unknown status machine {machine_name!r}; use one '
                         f'of: {", ".join(MACHINE_NAMES)}') from None


def machine(machine_name: str = IMAGE,
            start_state: str | None = None) -> machines.FiniteMachine:
    """A fresh automaton machine, in ``start_state`` (default: the start).

    It knows the moves but not the guards, which :func:`next_status`
    applies; automaton refuses a terminal ``start_state``.
    """
    fresh = _machine(machine_name).copy(shallow=True)
    fresh.initialize(start_state)
    return fresh


def transitions(machine_name: str = IMAGE) -> list[Move]:
    """Every allowed move, grouped by source status in state order.

    :raises ValueError: unknown machine name.
    """
    return [Move(*row) for row in _machine(machine_name)]


def allowed_events(current: str, machine_name: str = IMAGE) -> list[str]:
    """The events allowed in ``current``, sorted (empty when terminal)."""
    return sorted(event for from_status, event, _ in
                  transitions(machine_name) if from_status == current)


def next_status(current: str, event: str, image: Any = None) -> str:
    """The image status that ``event`` leads to from ``current``.

    Pure: it changes nothing, so a refused event leaves nothing to undo.

    :param image: anything with ``image_id``, ``disk_format`` and
        ``container_format``; named in errors and checked by guards.  A
        guarded move without an image is refused, never waved through.
    :raises InvalidTransition: the event is not allowed in ``current``, is
        unknown, or ``current`` is not an image status.
    :raises GuardFailed: a guard refused the move (:class:`FormatsRequired`
        when a format is missing).
    """
    image_id = getattr(image, 'image_id', None)
    target = _TARGETS.get((IMAGE, current, event))
    if target is None:
        raise InvalidTransition(IMAGE, image_id, current, event)
    move = Move(current, event, target)
    if (current, event) in GUARDED:
        if image is None:
            raise GuardFailed(None, move, 'the image is needed to check its '
                                          'disk_format and container_format')
        missing = [name for name in FORMAT_ATTRIBUTES
                   if not getattr(image, name, None)]
        if missing:
            raise FormatsRequired(image_id, move, missing)
    return target


def next_location_status(current: str, event: str, image_id: Any = None,
                         location_id: Any = None) -> str:
    """The location status that ``event`` leads to from ``current``.

    Pure, like :func:`next_status`.

    :raises InvalidTransition: the event is not allowed in ``current``.
    """
    target = _TARGETS.get((LOCATION, current, event))
    if target is None:
        raise InvalidTransition(LOCATION, image_id, current, event,
                                location_id)
    return target
