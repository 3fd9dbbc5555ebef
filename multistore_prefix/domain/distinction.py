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

"""The distinction layer: a save writes what changed since the image was read.

``get`` (and ``list``, ``add``) hand out an :class:`ImageProxy` that holds
the image and a deep copy of it.  ``save`` compares the image with that
snapshot (:func:`compute`, pure) and gives the repository below only the
:class:`ImageChanges`, each with the value that was read for the
compare-and-swap: an unchanged image writes nothing, and two writers who
change different attributes of one image both keep their change.
"""

import copy
import dataclasses
from typing import Any

from multistore_prefix import domain
from multistore_prefix.domain import image as image_mod
from multistore_prefix import exceptions


@dataclasses.dataclass(frozen=True)
class LocationState:
    """One location as it was (``location_id`` is None if not stored)."""

    index: int
    location_id: int | None
    url: Any
    metadata: Any
    status: Any


@dataclasses.dataclass(frozen=True)
class LocationUpdate:
    """A stored location whose metadata, status or URL changed.

    Each change is (value read, value wanted), or ``None``; ``index`` is
    the location's position in the image's list now.  ``url_change`` is a
    row's URL rewritten in place (a legacy ``cinder://<volume>`` that
    becomes ``cinder://<store>/<volume>``).
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

    ``columns`` and ``properties_changed`` map a name to (value read, value
    wanted); ``properties_removed`` to the value read.  An added location's
    ``index`` is where it is in the image's list.
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
        return any(getattr(self, field.name)
                   for field in dataclasses.fields(self)[1:])


def compute(before, after) -> ImageChanges:
    """The changes that turn image ``before`` into image ``after``."""
    changes = ImageChanges(after.image_id)
    for name in image_mod.COLUMN_ATTRIBUTES:
        old, new = getattr(before, name), getattr(after, name)
        if _differs(old, new):
            changes.columns[name] = (old, new)
    properties = before.extra_properties
    for name, new in after.extra_properties.items():
        if name not in properties:
            changes.properties_added[name] = new
        elif _differs(properties[name], new):
            changes.properties_changed[name] = (properties[name], new)
    for name, old in properties.items():
        if name not in after.extra_properties:
            changes.properties_removed[name] = old
    changes.tags_added = set(after.tags) - set(before.tags)
    changes.tags_removed = set(before.tags) - set(after.tags)
    _compare_locations(_locations(before), _locations(after), changes)
    return changes


def _locations(image) -> list[LocationState]:
    return [LocationState(index, loc.get('id'), loc.get('url'),
                          copy.deepcopy(loc.get('metadata', {})),
                          loc.get('status') or 'active')
            for index, loc in enumerate(image.locations)]


def _compare_locations(before, after, changes):
    # A location keeps its identity by row id, as in Glance: the same id
    # with another URL is that row, rewritten.  One given without an id (a
    # caller rebuilt the list) is the stored one with the same URL.
    unmatched = {loc.location_id: loc for loc in before
                 if loc.location_id is not None}
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


class NotSnapshotted(exceptions.MultistorePrefixError):
    """``save`` was given an image this repository did not return."""

    def __init__(self, image_id):
        self.image_id = image_id
        super().__init__(
            f'image {image_id}: save() takes the image object that get(), '
            f'list() or add() of this repository returned')


class ImageProxy(domain.Proxy):
    """An image and its ``snapshot`` (a deep copy) as read or last saved.

    ``snapshot`` is ``None`` for a new image not added yet; every other
    attribute, read or written, is the image's.
    """

    _own = frozenset(('base', 'snapshot'))

    def __init__(self, base, snapshot=None):
        object.__setattr__(self, 'base', base)
        object.__setattr__(self, 'snapshot', snapshot)

    def __setattr__(self, name, value):
        if name in self._own:
            object.__setattr__(self, name, value)
        else:
            setattr(self.base, name, value)

    def __repr__(self):
        return f'<ImageProxy {self.base!r}>'

    def changes(self) -> ImageChanges:
        """What a save would write now."""
        if self.snapshot is None:
            raise NotSnapshotted(self.base.image_id)
        return compute(self.snapshot, self.base)

    def mark_saved(self) -> None:
        """Take the image as it is now as the state to compare with."""
        self.snapshot = copy.deepcopy(self.base)


class ImageRepoProxy(domain.Proxy):
    """Snapshots images as they are read; saves only their differences."""

    def get(self, image_id: str) -> ImageProxy:
        return self._wrap(self.base.get(image_id))

    def list(self, *args: Any, **kwargs: Any) -> list[ImageProxy]:
        return [self._wrap(image)
                for image in self.base.list(*args, **kwargs)]

    def add(self, image) -> ImageProxy:
        """Store a new image (a proxy from the factory, or a plain image)."""
        proxy = image if isinstance(image, ImageProxy) else ImageProxy(image)
        self.base.add(proxy.base)
        proxy.mark_saved()
        return proxy

    def save(self, image: ImageProxy,
             from_state: str | None = None) -> ImageChanges:
        """Write what changed since ``image`` was read or last saved.

        :param from_state: Glance's argument: the status the image must
            still have for a status change to be written (by default, the
            status read).
        :returns: the changes written (when empty, nothing was sent to the
            database).
        :raises Conflict: another writer changed an attribute this save
            changes; nothing was written.
        """
        if not isinstance(image, ImageProxy):
            raise NotSnapshotted(getattr(image, 'image_id', None))
        changes = image.changes()
        if from_state is not None and 'status' in changes.columns:
            changes.columns['status'] = (from_state,
                                         changes.columns['status'][1])
        if changes:
            self.base.save(image.base, changes)
        image.mark_saved()
        return changes

    @staticmethod
    def _wrap(image) -> ImageProxy:
        return ImageProxy(image, copy.deepcopy(image))


class ImageFactoryProxy(domain.Proxy):
    """Hands out new images wrapped for the distinction layer."""

    def new_image(self, *args: Any, **kwargs: Any) -> ImageProxy:
        return ImageProxy(self.base.new_image(*args, **kwargs))
