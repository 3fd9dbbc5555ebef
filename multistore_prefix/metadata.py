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

"""Location metadata as JSON text: read strictly, change a key in place.

Glance keeps a location's metadata as JSON text (``image_locations.
meta_data``).  A writer that sets ``store`` must leave every other byte of
that text as it was: decoding and encoding again would turn ``1e400`` into
``Infinity``, collapse duplicate keys and rewrite numbers, and a
5000-digit integer would not even decode.  So the text is scanned once at
its top level (each member's key and the span of its value), checked to be
standard JSON (RFC 8259: no ``NaN`` or ``Infinity``; inside glance-api,
where Glance's own reader takes them, as Python's ``json`` reads it), and
a change is spliced in.  Every layer reads metadata text through here.
"""

import dataclasses
import decimal
import hashlib
import json
import re
from typing import Any, Iterable, Mapping

#: An absent key (``None`` is JSON ``null``).
MISSING = object()
#: A key to remove, in :func:`patch`.
DELETE = object()

_WS = re.compile(r'[ \t\n\r]*')


class Large:
    """A text too long to read with its batch (read its row alone)."""

    __slots__ = ()

    def __repr__(self):
        return '<too long to read with its batch>'


LARGE = Large()


class Bad(str):
    """Metadata text that cannot be used: the sentence says why.

    A ``str``, so that it reads as the reason wherever it is shown; two
    are equal only when they stand for the same ``text`` (as stored:
    ``bytes`` when not UTF-8), so a compare-and-swap on it stays exact.
    """

    def __new__(cls, reason: str, text=None):
        bad = super().__new__(cls, reason)
        bad.text = text
        return bad

    def __eq__(self, other):
        if isinstance(other, Bad):
            return str.__eq__(self, other) and self.text == other.text
        return NotImplemented if not isinstance(other, str) else False

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = str.__hash__


def _reject_constant(name):
    raise ValueError(f'{name} is not standard JSON')


def _int(text):
    # Python refuses to turn more than 4300 digits into an int.
    try:
        return int(text)
    except ValueError:
        return decimal.Decimal(text)


#: Standard JSON only, numbers of any size.
_STANDARD = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_int)
#: As Glance reads metadata (Python's ``json``: ``NaN``, ``Infinity`` and
#: ``-Infinity`` are numbers).
_GLANCE = json.JSONDecoder(parse_int=_int)


@dataclasses.dataclass(frozen=True)
class Member:
    """One top-level member: its key, where it and its value stand."""

    key: str
    start: int
    value_start: int
    value_end: int


@dataclasses.dataclass(frozen=True)
class Members:
    """A JSON object's text, its top-level members in order, its braces.

    ``decoder`` read it: standard JSON, or JSON as Glance reads it.
    """

    text: str
    members: tuple[Member, ...]
    open: int
    close: int
    decoder: json.JSONDecoder

    def find(self, key: str) -> list[Member]:
        return [m for m in self.members if m.key == key]

    def value(self, key: str) -> Any:
        """``key``'s decoded value (a duplicate's last), or MISSING."""
        found = self.find(key)
        if not found:
            return MISSING
        member = found[-1]
        return self.decoder.decode(
            self.text[member.value_start:member.value_end])

    def to_dict(self) -> dict:
        return self.decoder.decode(self.text)


def parse(text: str | bytes | None, standard: bool = True) -> Members | Bad:
    """The members of a metadata text, or why it has none (a :class:`Bad`).

    :param standard: ``False``: read it as Glance does (Python's ``json``
        takes ``NaN`` and the infinities), for a writer that acts where
        Glance's own rule would write next.
    """
    if text is None:
        return Bad('meta_data is NULL')
    if isinstance(text, Bad):
        return text
    if isinstance(text, bytes):
        try:
            text = text.decode('utf-8')
        except UnicodeDecodeError:
            return Bad('meta_data is not valid UTF-8', text)
    try:
        return _scan(text, _STANDARD if standard else _GLANCE)
    except RecursionError:
        return Bad('meta_data is nested too deep to read', text)
    except ValueError as exc:
        if 'standard JSON' in str(exc):
            return Bad(f'meta_data is not standard JSON ({exc})', text)
        return _not_an_object(text)


def _not_an_object(text: str) -> Bad:
    try:
        value = _STANDARD.decode(text)
    except RecursionError:
        return Bad('meta_data is nested too deep to read', text)
    except ValueError:
        return Bad('meta_data is not JSON', text)
    kind = {list: 'list', str: 'string', bool: 'boolean', int: 'number',
            float: 'number', decimal.Decimal: 'number',
            type(None): 'null'}.get(type(value), type(value).__name__)
    return Bad(f'meta_data is a JSON {kind}, not an object', text)


def _scan(text: str, decoder: json.JSONDecoder) -> Members:
    pos = _WS.match(text, 0).end()
    if not text.startswith('{', pos):
        raise ValueError('not an object')
    opening = pos
    pos = _WS.match(text, pos + 1).end()
    members = []
    if text.startswith('}', pos):
        close = pos
    else:
        while True:
            if not text.startswith('"', pos):
                raise ValueError('expected a key')
            start = pos
            key, pos = json.decoder.scanstring(text, pos + 1)
            pos = _WS.match(text, pos).end()
            if not text.startswith(':', pos):
                raise ValueError('expected ":"')
            value_start = _WS.match(text, pos + 1).end()
            _value, value_end = decoder.raw_decode(text, value_start)
            members.append(Member(key, start, value_start, value_end))
            pos = _WS.match(text, value_end).end()
            if text.startswith(',', pos):
                pos = _WS.match(text, pos + 1).end()
                continue
            if text.startswith('}', pos):
                close = pos
                break
            raise ValueError('expected "," or "}"')
    if _WS.match(text, close + 1).end() != len(text):
        raise ValueError('extra data after the object')
    return Members(text, tuple(members), opening, close, decoder)


def patch(members: Members, changes: Mapping[str, Any]) -> str:
    """The text with ``changes`` spliced in; every other byte as it was.

    :param changes: key -> new value (encoded as standard JSON), or
        :data:`DELETE`.
    :raises ValueError: a changed key stands twice in the text (which one
        would a reader take?), or a value is not standard JSON (NaN).
    """
    text = members.text
    edits = []  # (start, end, replacement), applied from the end
    appended = []
    for key, value in changes.items():
        found = members.find(key)
        if len(found) > 1:
            raise ValueError(f'key {key!r} stands twice in the metadata')
        if value is DELETE:
            if found:
                edits.append(_cut(members, found[0]))
            continue
        encoded = json.dumps(value, allow_nan=False)
        if found:
            edits.append((found[0].value_start, found[0].value_end, encoded))
        else:
            appended.append(f'{json.dumps(key)}: {encoded}')
    if appended:
        kept = [m for m in members.members
                if not any(e[0] <= m.start < e[1] for e in edits)]
        if kept:
            at = kept[-1].value_end
            edits.append((at, at, ', ' + ', '.join(appended)))
        else:
            at = members.close
            # '{}' -> '{"store": "x"}', as json.dumps writes it.
            edits.append((members.open + 1, at, ', '.join(appended)))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _cut(members: Members, member: Member) -> tuple[int, int, str]:
    """The edit that removes ``member`` and one comma beside it."""
    index = members.members.index(member)
    if index + 1 < len(members.members):
        return member.start, members.members[index + 1].start, ''
    if index > 0:
        return members.members[index - 1].value_end, member.value_end, ''
    return members.open + 1, members.close, ''


def load(text: str | bytes | None) -> Any:
    """Metadata for a reader: a dict, or a :class:`Bad` reason.

    Numbers of any size load (very long integers as Decimal); text that
    is not a standard JSON object is never guessed at.
    """
    members = parse(text)
    if isinstance(members, Bad):
        return members
    try:
        return members.to_dict()
    except (ValueError, RecursionError):  # pragma: no cover - parse checked
        return Bad('meta_data is not JSON', text)


def dump(value: Any) -> str | None:
    """The JSON text of new metadata; never NaN or Infinity."""
    return None if value is None else json.dumps(value, allow_nan=False)


def changed_keys(before: Mapping, after: Mapping) -> Iterable[str]:
    for key in list(before) + [k for k in after if k not in before]:
        if before.get(key, MISSING) != after.get(key, MISSING):
            yield key


def digest(text: str | bytes | None) -> str | None:
    """SHA-256 of a text: whether a row still holds it, without showing it."""
    if text is None:
        return None
    if isinstance(text, str):
        text = text.encode('utf-8', 'surrogatepass')
    return hashlib.sha256(text).hexdigest()
