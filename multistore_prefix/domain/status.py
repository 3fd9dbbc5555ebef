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
name of the event that causes it.

Image status (start ``queued``, ``deleted`` is terminal):

==============  ===============  ==============  ==========================
from            event            to              what happened
==============  ===============  ==============  ==========================
queued          upload_started   saving          data upload began [F]
queued          stage_started    uploading       data staging began
                                                 (interoperable import)
queued          import_started   importing       an import task began
                                                 (web-download, copy) [F]
queued          location_added   active          data registered by a
                                                 location, no upload [F]
queued          delete           deleted         image deleted
saving          upload_finished  active          upload stored [F]
saving          upload_failed    killed          upload failed; the image
                                                 is unusable (Glance's
                                                 ``_delete`` on upload)
saving          upload_reverted  queued          upload failed and was
                                                 rolled back so the client
                                                 can retry (``_restore``)
saving          delete           deleted         image deleted
uploading       import_started   importing       import of staged data
                                                 began [F]
uploading       stage_reverted   queued          staging failed and was
                                                 rolled back
uploading       delete           deleted         image deleted
importing       import_finished  active          import stored [F]
importing       import_reverted  queued          import failed and was
                                                 rolled back
importing       delete           deleted         image deleted
active          deactivate       deactivated     admin deactivated it
active          delayed_delete   pending_delete  deleted with
                                                 ``delayed_delete`` on;
                                                 the scrubber finishes
active          delete           deleted         image deleted
killed          delete           deleted         image deleted
deactivated     reactivate       active          admin reactivated it
deactivated     delete           deleted         image deleted
pending_delete  delete           deleted         the scrubber deleted it
pending_delete  restore          active          restored before scrubbing
==============  ===============  ==============  ==========================

[F] is the formats guard: ``disk_format`` and ``container_format`` must be
set.  Glance checks it on the moves out of ``queued`` and ``uploading`` that
bring data in; here it also holds on the two moves that finish data
(``upload_finished``, ``import_finished``), because Glance lets the formats
change while ``importing`` and no image may become ``active`` without them.

Location status (start ``active``, ``deleted`` is terminal):

==============  ===============  ==============  ==========================
from            event            to              what happened
==============  ===============  ==============  ==========================
active          delayed_delete   pending_delete  image deleted with
                                                 ``delayed_delete`` on
active          delete           deleted         location removed
pending_delete  delete           deleted         the scrubber deleted the
                                                 data
pending_delete  restore          active          its image was restored
==============  ===============  ==============  ==========================

Glance's database only ever sets a location to ``pending_delete`` or
``deleted`` when deleting it, and the scrubber moves ``pending_delete`` to
``deleted``; ``restore`` is the counterpart of the image's ``restore``, so a
restored image gets its data back.

Thread safety: the two automaton machines are built once at import and
frozen, and nothing ever initializes or feeds them.  :func:`next_status`
reads an immutable table derived from the frozen machine, so it is a pure
function any number of threads may call.  :func:`image_machine` and
:func:`location_machine` hand out shallow copies: they share the frozen,
read-only tables and each has its own current state, so one copy per caller
(or thread) is safe; one copy fed from two threads is not, as automaton's
``process_event`` reads and then writes the current state.
"""

from collections.abc import Callable
from collections.abc import Mapping
import types
from typing import Any
from typing import NamedTuple

from automaton import machines

from multistore_prefix.domain import status_errors

IMAGE = status_errors.IMAGE
LOCATION = status_errors.LOCATION
MACHINE_NAMES = (IMAGE, LOCATION)

IMAGE_STATES = ('queued', 'saving', 'uploading', 'importing', 'active',
                'killed', 'deactivated', 'pending_delete', 'deleted')
IMAGE_START = 'queued'
LOCATION_STATES = ('active', 'pending_delete', 'deleted')
LOCATION_START = 'active'
TERMINAL_STATES = ('deleted',)

FORMAT_ATTRIBUTES = status_errors.FORMAT_ATTRIBUTES

# The errors, named here too: callers import them from this module.
StatusError = status_errors.StatusError
InvalidTransition = status_errors.InvalidTransition
GuardFailed = status_errors.GuardFailed
FormatsRequired = status_errors.FormatsRequired
StatusConflict = status_errors.StatusConflict


class Move(NamedTuple):
    """One allowed status move.

    :ivar from_status: the status the move starts from.
    :ivar event: what happened.
    :ivar to_status: the status the move ends in.
    """

    from_status: str
    event: str
    to_status: str


# Glance's valid_state_targets, grouped by source status in IMAGE_STATES
# order, so the machine lists them in this order.
_IMAGE_MOVES = (
    Move('queued', 'upload_started', 'saving'),
    Move('queued', 'stage_started', 'uploading'),
    Move('queued', 'import_started', 'importing'),
    Move('queued', 'location_added', 'active'),
    Move('queued', 'delete', 'deleted'),
    Move('saving', 'upload_finished', 'active'),
    Move('saving', 'upload_failed', 'killed'),
    Move('saving', 'upload_reverted', 'queued'),
    Move('saving', 'delete', 'deleted'),
    Move('uploading', 'import_started', 'importing'),
    Move('uploading', 'stage_reverted', 'queued'),
    Move('uploading', 'delete', 'deleted'),
    Move('importing', 'import_finished', 'active'),
    Move('importing', 'import_reverted', 'queued'),
    Move('importing', 'delete', 'deleted'),
    Move('active', 'deactivate', 'deactivated'),
    Move('active', 'delayed_delete', 'pending_delete'),
    Move('active', 'delete', 'deleted'),
    Move('killed', 'delete', 'deleted'),
    Move('deactivated', 'reactivate', 'active'),
    Move('deactivated', 'delete', 'deleted'),
    Move('pending_delete', 'delete', 'deleted'),
    Move('pending_delete', 'restore', 'active'),
)

_LOCATION_MOVES = (
    Move('active', 'delayed_delete', 'pending_delete'),
    Move('active', 'delete', 'deleted'),
    Move('pending_delete', 'delete', 'deleted'),
    Move('pending_delete', 'restore', 'active'),
)


#: A guard checks one move for one subject (an image) and raises a
#: :class:`GuardFailed` to refuse it.
Guard = Callable[[Any, Move], None]


def require_formats(image: Any, move: Move) -> None:
    """Guard: the image has ``disk_format`` and ``container_format``.

    :param image: anything with ``image_id``, ``disk_format`` and
        ``container_format`` attributes.
    :param move: the move being checked.
    :raises GuardFailed: no image was given to check.
    :raises FormatsRequired: a format is not set.
    """
    if image is None:
        raise GuardFailed(IMAGE, None, move.from_status, move.event,
                          move.to_status,
                          'the image is needed to check its disk_format and '
                          'container_format')
    missing = [name for name in FORMAT_ATTRIBUTES
               if not getattr(image, name, None)]
    if missing:
        raise FormatsRequired(getattr(image, 'image_id', None),
                              move.from_status, move.event, move.to_status,
                              missing)


_IMAGE_GUARDS: dict[tuple[str, str], Guard] = {
    ('queued', 'upload_started'): require_formats,
    ('queued', 'import_started'): require_formats,
    ('queued', 'location_added'): require_formats,
    ('uploading', 'import_started'): require_formats,
    ('saving', 'upload_finished'): require_formats,
    ('importing', 'import_finished'): require_formats,
}


class _Spec(NamedTuple):
    """One machine and what is derived from it once, at import."""

    machine: machines.FiniteMachine
    states: tuple[str, ...]
    events: frozenset[str]
    table: Mapping[str, Mapping[str, str]]
    guards: Mapping[tuple[str, str], Guard]


def _build(states: tuple[str, ...], moves: tuple[Move, ...], start: str,
           guards: Mapping[tuple[str, str], Guard]) -> _Spec:
    machine = machines.FiniteMachine()
    for state in states:
        machine.add_state(state, terminal=state in TERMINAL_STATES)
    seen = {}
    for move in moves:
        # automaton refuses one event with two targets; this refuses one
        # move reachable by two events, so each move has exactly one name.
        edge = (move.from_status, move.to_status)
        if edge in seen:
            raise ValueError(f'{edge} is reached by both {seen[edge]!r} '
                             f'and {move.event!r}')
        seen[edge] = move.event
        machine.add_transition(move.from_status, move.to_status, move.event)
    machine.default_start_state = start
    machine.freeze()

    table: dict[str, dict[str, str]] = {state: {} for state in states}
    for from_status, event, to_status in machine:
        table[from_status][event] = to_status
    for key in guards:
        if key[1] not in table[key[0]]:
            raise ValueError(f'guard on {key} which is not a move')
    return _Spec(
        machine=machine,
        states=states,
        events=frozenset(move.event for move in moves),
        table=types.MappingProxyType(
            {state: types.MappingProxyType(events)
             for state, events in table.items()}),
        guards=types.MappingProxyType(dict(guards)))


_SPECS = {
    IMAGE: _build(IMAGE_STATES, _IMAGE_MOVES, IMAGE_START, _IMAGE_GUARDS),
    LOCATION: _build(LOCATION_STATES, _LOCATION_MOVES, LOCATION_START, {}),
}

IMAGE_EVENTS = tuple(sorted(_SPECS[IMAGE].events))
LOCATION_EVENTS = tuple(sorted(_SPECS[LOCATION].events))


def _spec(machine_name: str) -> _Spec:
    try:
        return _SPECS[machine_name]
    except KeyError:
        raise ValueError(f'unknown status machine {machine_name!r}; use one '
                         f'of: {", ".join(MACHINE_NAMES)}') from None


def _copy(machine_name: str, start_state: str | None) -> \
        machines.FiniteMachine:
    machine = _spec(machine_name).machine.copy(shallow=True)
    machine.initialize(start_state)
    return machine


def image_machine(start_state: str = IMAGE_START) -> machines.FiniteMachine:
    """A fresh automaton machine for image status, in ``start_state``.

    A shallow copy of the frozen module machine: its own current state, the
    shared read-only tables.  Feed it with ``process_event``; it knows the
    moves but not the guards, which :func:`next_status` applies.

    :param start_state: the status to start in; a terminal status is
        refused by automaton (``InvalidState``).
    """
    return _copy(IMAGE, start_state)


def location_machine(start_state: str = LOCATION_START) -> \
        machines.FiniteMachine:
    """A fresh automaton machine for location status, in ``start_state``.

    :param start_state: the status to start in.
    """
    return _copy(LOCATION, start_state)


def guarded(machine_name: str = IMAGE) -> list[tuple[str, str]]:
    """The ``(from_status, event)`` moves that have a guard.

    :param machine_name: ``'image'`` or ``'location'``.
    """
    return list(_spec(machine_name).guards)


def transitions(machine_name: str = IMAGE) -> list[Move]:
    """Every allowed move of a machine, read from the automaton machine.

    :param machine_name: ``'image'`` or ``'location'``.
    :returns: one :class:`Move` (a ``(from, event, to)`` tuple) per move,
        grouped by source status in the machine's state order.
    :raises ValueError: unknown machine name.
    """
    return [Move(*row) for row in _spec(machine_name).machine]


def allowed_events(current: str, machine_name: str = IMAGE) -> list[str]:
    """The events allowed in ``current``, sorted (empty when terminal).

    :param current: a status of the machine.
    :param machine_name: ``'image'`` or ``'location'``.
    """
    return sorted(_spec(machine_name).table.get(current, {}))


def _next(machine_name: str, current: str, event: str, subject: Any,
          image_id: Any, location_id: Any = None) -> str:
    spec = _SPECS[machine_name]
    moves = spec.table.get(current)
    target = moves.get(event) if moves is not None else None
    if target is None:
        raise InvalidTransition(machine_name, image_id, current, event,
                                sorted(moves or ()), location_id,
                                states=spec.states, events=spec.events)
    guard = spec.guards.get((current, event))
    if guard is not None:
        guard(subject, Move(current, event, target))
    return target


def next_status(current: str, event: str, image: Any = None) -> str:
    """The image status that ``event`` leads to from ``current``.

    Pure: it changes nothing, on the image or anywhere else, so a refused
    event leaves nothing to undo.

    :param current: the image's status as read.
    :param event: what happened (see the module's table).
    :param image: the image (anything with ``image_id``, ``disk_format``
        and ``container_format``); named in errors and checked by guards.
        A guarded move without an image is refused, never waved through.
    :returns: the status to record.
    :raises InvalidTransition: the event is not allowed in ``current``, is
        unknown, or ``current`` is not an image status.
    :raises GuardFailed: a guard refused the move (:class:`FormatsRequired`
        when a format is missing).
    """
    return _next(IMAGE, current, event, image,
                 getattr(image, 'image_id', None))


def next_location_status(current: str, event: str, image_id: Any = None,
                         location_id: Any = None) -> str:
    """The location status that ``event`` leads to from ``current``.

    Pure, like :func:`next_status`.  Errors name the location by its row id,
    never by its URL, which may hold credentials.

    :param current: the location's status as read.
    :param event: ``delete``, ``delayed_delete`` or ``restore``.
    :param image_id: the image the location belongs to, for errors.
    :param location_id: the location's row id, for errors.
    :returns: the status to record.
    :raises InvalidTransition: the event is not allowed in ``current``.
    """
    return _next(LOCATION, current, event, None, image_id, location_id)
