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


"""The errors of status moves (see :mod:`multistore_prefix.domain.status`).

Each carries the values that explain it: the machine, the image (and
location), the status it was applied to and the event.
"""

from typing import Any

from multistore_prefix import exceptions

IMAGE = 'image'
LOCATION = 'location'
FORMAT_ATTRIBUTES = ('disk_format', 'container_format')


class StatusError(exceptions.MultistorePrefixError):
    """A status event that cannot be applied; nothing was changed.

    :ivar machine: ``'image'`` or ``'location'``.
    :ivar image_id: the image concerned (``None`` when the caller gave none).
    :ivar location_id: the location row concerned, for location moves.
    :ivar current: the status the event was applied to.
    :ivar event: the event.
    """

    def __init__(self, message: str, machine: str, image_id: Any,
                 current: str, event: str, location_id: Any = None):
        self.machine = machine
        self.image_id = image_id
        self.location_id = location_id
        self.current = current
        self.event = event
        super().__init__(f'{_subject(machine, image_id, location_id)}: '
                         f'{message}')


class InvalidTransition(StatusError):
    """The event is not allowed in the current status (or is unknown).

    :ivar allowed: the events allowed in the current status, sorted (empty
        for a terminal or unknown status).
    """

    def __init__(self, machine: str, image_id: Any, current: str,
                 event: str, allowed: list[str], location_id: Any = None,
                 states: tuple[str, ...] = (),
                 events: frozenset[str] = frozenset()):
        self.allowed = list(allowed)
        if current not in states:
            message = (f'status {current!r} is not one of the {machine} '
                       f'statuses ({", ".join(states)}); cannot apply event '
                       f'{event!r}')
        else:
            if allowed:
                choices = ', '.join(allowed)
            else:
                choices = f'none, {current!r} is terminal'
            if event in events:
                what = f'event {event!r} is not allowed'
            else:
                what = f'{event!r} is not one of the {machine} events'
            message = (f'{what} in status {current!r}; allowed events: '
                       f'{choices}')
        super().__init__(message, machine, image_id, current, event,
                         location_id)


class GuardFailed(StatusError):
    """The move exists but a guard refused it for this image.

    :ivar target: the status the move would have reached.
    :ivar reason: why the guard refused.
    """

    def __init__(self, machine: str, image_id: Any, current: str,
                 event: str, target: str, reason: str,
                 location_id: Any = None):
        self.target = target
        self.reason = reason
        super().__init__(
            f'event {event!r} cannot move status {current!r} to '
            f'{target!r}: {reason}',
            machine, image_id, current, event, location_id)


class FormatsRequired(GuardFailed):
    """``disk_format`` and ``container_format`` must be set for this move.

    :ivar missing: the format attributes that are not set.
    """

    def __init__(self, image_id: Any, current: str, event: str,
                 target: str, missing: list[str]):
        self.missing = list(missing)
        noun = 'is' if len(missing) == 1 else 'are'
        super().__init__(
            IMAGE, image_id, current, event, target,
            f'{" and ".join(missing)} {noun} not set; set '
            f'{" and ".join(FORMAT_ATTRIBUTES)} first')


class StatusConflict(StatusError):
    """Another writer changed the status first; nothing was written.

    Raised by persistence when ``UPDATE ... WHERE status = :from_status``
    matched no row.

    :ivar expected: the status the move started from (as read).
    :ivar target: the status the move would have written.
    :ivar found: the status in the database now (``None`` if the row is
        gone).
    """

    def __init__(self, image_id: Any, expected: str, target: str,
                 found: str | None, event: str | None = None,
                 machine: str = IMAGE, location_id: Any = None):
        self.expected = expected
        self.target = target
        self.found = found
        cause = f'event {event!r}' if event else 'status change'
        now = (f'status is now {found!r}' if found is not None
               else 'the row is gone')
        super().__init__(
            f'{cause} ({expected} -> {target}) lost a race: {now}, not '
            f'{expected!r}; nothing written',
            machine, image_id, expected, event or '', location_id)


def _subject(machine: str, image_id: Any, location_id: Any) -> str:
    image = f'image {image_id}' if image_id is not None else 'image (no id)'
    if machine == LOCATION:
        where = (f'location {location_id}' if location_id is not None
                 else 'location')
        return f'{where} of {image}'
    return image
