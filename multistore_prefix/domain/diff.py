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


"""What changed in an image between two moments: the distinction itself.

:class:`ImageState` is a deep, immutable copy of an image's persistent
attributes; :func:`compute` compares two of them and returns
:class:`ImageChanges`: the image columns, properties, tags and locations
that differ, each with the value read (for the compare-and-swap) and the
value wanted.  Pure: it never touches a database.
"""

import copy
import dataclasses
from typing import Any

from multistore_prefix.domain import image as image_mod


@dataclasses.dataclass(frozen=True)
class LocationState:
    """One location as it was.

    :ivar index: its position in the image's location list.
    :ivar location_id: its row id (``None`` if not stored yet).
    :ivar url: its URL.
    :ivar metadata: a deep copy of its metadata.
    :ivar status: its status.
    """

    index: int
    location_id: int | None
    url: Any
    metadata: Any
    status: Any


@dataclasses.dataclass(frozen=True)
class ImageState:
    """An image's persistent attributes at one moment (deep copies).

    :ivar image_id: the image.
    :ivar columns: column attribute -> value.
    :ivar properties: extra property name -> value.
    :ivar tags: the tags.
    :ivar locations: the locations, in order.
    """

    image_id: str
    columns: dict
    properties: dict
    tags: frozenset
    locations: tuple[LocationState, ...]

    @classmethod
    def capture(cls, image) -> 'ImageState':
        """Copy what a save would persist, so later edits do not reach it."""
        return cls(
            image_id=image.image_id,
            columns={name: copy.deepcopy(getattr(image, name))
                     for name in image_mod.COLUMN_ATTRIBUTES},
            properties=copy.deepcopy(dict(image.extra_properties)),
            tags=frozenset(image.tags),
            locations=tuple(
                LocationState(index, loc.get('id'), loc.get('url'),
                              copy.deepcopy(loc.get('metadata', {})),
                              loc.get('status') or 'active')
                for index, loc in enumerate(image.locations)))


@dataclasses.dataclass(frozen=True)
class LocationUpdate:
    """A stored location whose metadata or status changed.

    :ivar index: its position in the image's location list now.
    :ivar location_id: its row id.
    :ivar url: its URL.
    :ivar metadata: (metadata read, metadata wanted), or ``None``.
    :ivar status: (status read, status wanted), or ``None``.
    :ivar url_change: (URL read, URL wanted) when the row's URL is
        rewritten in place (a legacy ``cinder://<volume>`` that becomes
        ``cinder://<store>/<volume>``), else ``None``.
    """

    index: int
    location_id: int
    url: Any
    metadata: tuple[Any, Any] | None
    status: tuple[Any, Any] | None
    url_change: tuple[Any, Any] | None = None


@dataclasses.dataclass
class ImageChanges:
    """Everything a save must write, and nothing else.

    :ivar image_id: the image.
    :ivar columns: column attribute -> (value read, value wanted).
    :ivar properties_added: name -> value.
    :ivar properties_changed: name -> (value read, value wanted).
    :ivar properties_removed: name -> value read.
    :ivar tags_added: tags to add.
    :ivar tags_removed: tags to remove.
    :ivar locations_added: new locations (their ``index`` is where they are
        in the image's list).
    :ivar locations_removed: stored locations the image no longer has.
    :ivar locations_updated: stored locations whose metadata or status
        changed.
    """

    image_id: str
    columns: dict = dataclasses.field(default_factory=dict)
    properties_added: dict = dataclasses.field(default_factory=dict)
    properties_changed: dict = dataclasses.field(default_factory=dict)
    properties_removed: dict = dataclasses.field(default_factory=dict)
    tags_added: set = dataclasses.field(default_factory=set)
    tags_removed: set = dataclasses.field(default_factory=set)
    locations_added: list = dataclasses.field(default_factory=list)
    locations_removed: list = dataclasses.field(default_factory=list)
    locations_updated: list = dataclasses.field(default_factory=list)

    def __bool__(self):
        return any((self.columns, self.properties_added,
                    self.properties_changed, self.properties_removed,
                    self.tags_added, self.tags_removed, self.locations_added,
                    self.locations_removed, self.locations_updated))


def compute(before: ImageState, after: ImageState) -> ImageChanges:
    """The changes that turn ``before`` into ``after``."""
    changes = ImageChanges(after.image_id)
    for name, old in before.columns.items():
        new = after.columns[name]
        if _differs(old, new):
            changes.columns[name] = (old, new)
    for name, new in after.properties.items():
        if name not in before.properties:
            changes.properties_added[name] = new
        elif _differs(before.properties[name], new):
            changes.properties_changed[name] = (before.properties[name], new)
    for name, old in before.properties.items():
        if name not in after.properties:
            changes.properties_removed[name] = old
    changes.tags_added = set(after.tags - before.tags)
    changes.tags_removed = set(before.tags - after.tags)
    _compare_locations(before.locations, after.locations, changes)
    return changes


def _compare_locations(before, after, changes):
    # A location keeps its identity by row id, as in Glance: the same id
    # with another URL is that row, rewritten.  One given without an id (a
    # caller rebuilt the list) is the stored one with the same URL.
    stored = {loc.location_id: loc for loc in before
              if loc.location_id is not None}
    unmatched = dict(stored)
    pairs, new = [], []
    for loc in after:
        old = unmatched.pop(loc.location_id, None) \
            if loc.location_id is not None else None
        if old is None:
            old = next((s for s in unmatched.values() if s.url == loc.url),
                       None)
            if old is not None:
                del unmatched[old.location_id]
        if old is None:
            new.append(loc)
        else:
            pairs.append((old, loc))
    changes.locations_removed = sorted(unmatched.values(),
                                       key=lambda s: s.location_id)
    changes.locations_added = new
    for old, loc in sorted(pairs, key=lambda p: p[0].location_id):
        metadata = ((old.metadata, loc.metadata)
                    if _differs(old.metadata, loc.metadata) else None)
        status = ((old.status, loc.status)
                  if _differs(old.status, loc.status) else None)
        url = (old.url, loc.url) if _differs(old.url, loc.url) else None
        if metadata or status or url:
            changes.locations_updated.append(LocationUpdate(
                loc.index, old.location_id, loc.url, metadata, status, url))


def _differs(old, new) -> bool:
    return type(old) is not type(new) or old != new
