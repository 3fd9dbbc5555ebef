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


"""The image, with Glance's attribute names, and the factory of new ones.

A plain object: the layers above (distinction, resolution) wrap it, the
repository below turns it into rows.
"""

import dataclasses
import datetime
from typing import Any, Iterable
import uuid

from oslo_utils import timeutils

from multistore_prefix.domain import status as status_mod
from multistore_prefix import exceptions

#: Image attributes stored as columns of ``images`` (``image_id`` is ``id``).
COLUMN_ATTRIBUTES = ('name', 'status', 'visibility', 'size', 'virtual_size',
                     'checksum', 'os_hash_algo', 'os_hash_value',
                     'disk_format', 'container_format', 'min_disk',
                     'min_ram', 'protected', 'os_hidden', 'owner')
#: Every attribute of an :class:`Image`.
ATTRIBUTES = ('image_id', *COLUMN_ATTRIBUTES, 'extra_properties', 'tags',
              'locations', 'created_at', 'updated_at')
#: What only the system sets (Glance's read-only attributes).
READ_ONLY = ('status', 'size', 'virtual_size', 'checksum', 'os_hash_algo',
             'os_hash_value', 'created_at', 'updated_at')


class ReadOnlyAttribute(exceptions.MultistorePrefixError):
    """A new image cannot be given this ``attribute``; the system sets it."""

    def __init__(self, attribute: str, how: str | None = None):
        self.attribute = attribute
        message = f'attribute {attribute!r} is read-only'
        super().__init__(f'{message}: {how}' if how else message)


class ReservedProperty(exceptions.MultistorePrefixError):
    """An extra property has the name of an image attribute."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f'{name!r} is an image attribute, not a property')


@dataclasses.dataclass(eq=False, repr=False)
class Image:
    """An image record as Glance's domain layer holds it.

    The columns of Glance's ``images`` table under the same names, plus
    ``extra_properties`` (strings, as Glance stores them), ``tags`` (a set)
    and ``locations``: dicts with ``url``, ``metadata`` (its ``store`` key
    names the store) and ``status``; those read from the database carry
    their row ``id`` too.  ``status`` is given once, here; then it changes
    only by :meth:`transition`.
    """

    image_id: str
    status: str
    created_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None
    _: dataclasses.KW_ONLY
    name: str | None = None
    visibility: str = 'shared'
    size: int | None = None
    virtual_size: int | None = None
    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    disk_format: str | None = None
    container_format: str | None = None
    min_disk: int = 0
    min_ram: int = 0
    protected: bool = False
    os_hidden: bool = False
    owner: str | None = None
    extra_properties: dict | None = None
    tags: Iterable[str] | None = None
    locations: list[dict] | None = None

    def __post_init__(self):
        self.extra_properties = dict(self.extra_properties or {})
        self.tags = set(self.tags or ())
        self.locations = list(self.locations or [])

    def __setattr__(self, name, value):
        if name == 'status' and 'status' in self.__dict__:
            raise ReadOnlyAttribute(
                'status', 'it changes by an event: image.transition(event), '
                'e.g. "deactivate" (multistore-prefix status-machine lists '
                'them)')
        super().__setattr__(name, value)

    def transition(self, event: str) -> status_mod.Move:
        """Feed ``event`` to the status machine and take its status.

        Nothing is written: ``repo.save`` persists the move atomically
        (``UPDATE ... WHERE status = <the status read>``).

        :raises InvalidTransition: ``event`` is not allowed in this status.
        :raises GuardFailed: a guard of the move does not hold (formats).
        """
        target = status_mod.next_status(self.status, event, self)
        move = status_mod.Move(self.status, event, target)
        self.__dict__['status'] = target
        return move

    def transition_location(self, index: int,
                            event: str) -> status_mod.Move:
        """Feed ``event`` to the status machine of location ``index``.

        :raises InvalidTransition: not allowed in the location's status.
        """
        location = self.locations[index]
        current = location.get('status') or status_mod.LOCATION_START
        target = status_mod.next_location_status(
            current, event, image_id=self.image_id,
            location_id=location.get('id'))
        location['status'] = target
        return status_mod.Move(current, event, target)

    def __repr__(self):
        return f'<Image {self.image_id} {self.status} {self.name!r}>'


class ImageFactory:
    """Makes new images as Glance's ``ImageFactory.new_image`` does."""

    def new_image(self, image_id: str | None = None, name: str | None = None,
                  visibility: str = 'shared', min_disk: int = 0,
                  min_ram: int = 0, protected: bool = False,
                  owner: str | None = None, disk_format: str | None = None,
                  container_format: str | None = None,
                  extra_properties: dict | None = None,
                  tags: Iterable[str] | None = None, os_hidden: bool = False,
                  **other_args: Any) -> Image:
        """A new ``queued`` image, not stored yet (``repo.add`` stores it).

        :raises ReadOnlyAttribute: ``other_args`` sets what only the system
            sets (``status``, ``size``...).
        :raises ReservedProperty: an extra property is named like an image
            attribute.
        :raises TypeError: ``other_args`` holds an unknown keyword.
        """
        for key in other_args:
            if key in READ_ONLY:
                raise ReadOnlyAttribute(key)
            raise TypeError(f'new_image() got an unexpected keyword '
                            f'argument {key!r}')
        extra_properties = dict(extra_properties or {})
        for key in extra_properties:
            if key in ATTRIBUTES or key == 'id':
                raise ReservedProperty(key)
        now = timeutils.utcnow()
        return Image(image_id or str(uuid.uuid4()), 'queued', now, now,
                     name=name, visibility=visibility, min_disk=min_disk,
                     min_ram=min_ram, protected=protected, owner=owner,
                     disk_format=disk_format,
                     container_format=container_format,
                     extra_properties=extra_properties, tags=tags,
                     os_hidden=os_hidden)
