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
the image and a snapshot of it (:class:`~multistore_prefix.domain.diff.
ImageState`).  ``save`` compares the image with its snapshot and gives the
repository below only the differences, each with the value that was read:
an unchanged image writes nothing, and two writers who change different
attributes of one image both keep their change.

The classes wrap the layer below and hold it (aggregation, not
inheritance), as Glance's proxies do.
"""

from typing import Any

from multistore_prefix.domain import diff
from multistore_prefix.domain import exceptions
from multistore_prefix.domain import proxy


class ImageProxy:
    """An image and the state it had when it was read (or last saved).

    Reads and writes of any attribute go to the image; only ``base`` and
    ``snapshot`` belong to the proxy.

    :ivar base: the wrapped image.
    :ivar snapshot: its :class:`~multistore_prefix.domain.diff.ImageState`
        as read, or ``None`` for a new image not added yet.
    """

    _own = frozenset(('base', 'snapshot'))

    def __init__(self, base, snapshot: diff.ImageState | None = None):
        object.__setattr__(self, 'base', base)
        object.__setattr__(self, 'snapshot', snapshot)

    def __getattr__(self, name):
        if name in self._own:  # not set yet (copy, pickle)
            raise AttributeError(name)
        return getattr(self.base, name)

    def __setattr__(self, name, value):
        if name in self._own:
            object.__setattr__(self, name, value)
        else:
            setattr(self.base, name, value)

    def __repr__(self):
        return f'<ImageProxy {self.base!r}>'

    def changes(self) -> diff.ImageChanges:
        """What a save would write now.

        :raises NotSnapshotted: the image was never read nor added.
        """
        if self.snapshot is None:
            raise exceptions.NotSnapshotted(self.base.image_id)
        return diff.compute(self.snapshot, diff.ImageState.capture(self.base))

    def mark_saved(self) -> None:
        """Take the image as it is now as the state to compare with."""
        self.snapshot = diff.ImageState.capture(self.base)


class ImageRepoProxy(proxy.Repo):
    """Snapshots images as they are read; saves only their differences.

    :ivar base: the repository below (``save(image, changes)``); what
        writes location rows as they are (no image: no snapshot) is its.
    """

    def get(self, image_id: str) -> ImageProxy:
        return self._wrap(self.base.get(image_id))

    def list(self, *args: Any, **kwargs: Any) -> list[ImageProxy]:
        return [self._wrap(image)
                for image in self.base.list(*args, **kwargs)]

    def add(self, image) -> ImageProxy:
        """Store a new image (a proxy from the factory, or a plain image).

        :returns: the proxy, snapshotted as stored.
        """
        proxy = image if isinstance(image, ImageProxy) else ImageProxy(image)
        self.base.add(proxy.base)
        proxy.mark_saved()
        return proxy

    def save(self, image: ImageProxy,
             from_state: str | None = None) -> diff.ImageChanges:
        """Write what changed since ``image`` was read or last saved.

        :param from_state: Glance's argument: the status the image must
            still have for a status change to be written (by default, the
            status read).
        :returns: the changes written (empty when nothing changed: then
            nothing at all was sent to the database).
        :raises NotSnapshotted: ``image`` did not come from this repository.
        :raises Conflict: another writer changed an attribute this save
            changes; nothing was written.
        """
        if not isinstance(image, ImageProxy):
            raise exceptions.NotSnapshotted(getattr(image, 'image_id', None))
        changes = image.changes()
        if from_state is not None and 'status' in changes.columns:
            changes.columns['status'] = (from_state,
                                         changes.columns['status'][1])
        if changes:
            self.base.save(image.base, changes)
        image.mark_saved()
        return changes

    def remove(self, image) -> None:
        base = image.base if isinstance(image, ImageProxy) else image
        self.base.remove(base)

    @staticmethod
    def _wrap(image) -> ImageProxy:
        return ImageProxy(image, diff.ImageState.capture(image))


class ImageFactoryProxy:
    """Hands out new images wrapped for the distinction layer.

    :ivar base: the factory below.
    """

    def __init__(self, base):
        self.base = base

    def new_image(self, *args: Any, **kwargs: Any) -> ImageProxy:
        """A new image (Glance's keywords); ``repo.add`` stores it."""
        return ImageProxy(self.base.new_image(*args, **kwargs))
