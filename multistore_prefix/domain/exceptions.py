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


"""Errors of the domain layer.

The persistence errors are the database layer's own classes, named here too
so that callers of the repositories import from one place.
"""

from multistore_prefix.db.exceptions import Busy  # noqa: F401
from multistore_prefix.db.exceptions import Conflict  # noqa: F401
from multistore_prefix.db.exceptions import Duplicate  # noqa: F401
from multistore_prefix.db.exceptions import Forbidden  # noqa: F401
from multistore_prefix.db.exceptions import NotFound  # noqa: F401
from multistore_prefix.db.exceptions import Rejected  # noqa: F401
from multistore_prefix import exceptions


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


class NotSnapshotted(exceptions.MultistorePrefixError):
    """``save`` was given an image this repository did not return.

    The distinction layer saves what changed since the image was read.
    """

    def __init__(self, image_id):
        self.image_id = image_id
        super().__init__(
            f'image {image_id}: save() takes the image object that get(), '
            f'list() or add() of this repository returned')
