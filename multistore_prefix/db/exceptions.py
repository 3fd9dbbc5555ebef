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


"""Errors of the persistence layer.

Each carries the values that explain it as attributes.  None prints a
location URL with its credentials: URLs pass through
:func:`multistore_prefix.masking.mask_url`, the database's own words through
:func:`multistore_prefix.masking.mask_error`.
"""

from typing import Any

from multistore_prefix import exceptions
from multistore_prefix import masking


class DatabaseError(exceptions.MultistorePrefixError):
    """Base class of the errors below."""


class NotFound(DatabaseError):
    """The image is not there, or deleted."""

    def __init__(self, image_id: Any):
        self.image_id = image_id
        super().__init__(f'image {image_id} not found')


class Conflict(DatabaseError):
    """Another writer changed what this write was based on; nothing written.

    Every write changes a row only if it still holds the value read; when
    one does not, the whole save is rolled back and this names the first
    ``attribute`` that differed: an image column (``'name'``), a property
    (``'property foo'``), a tag, or a location's metadata or status
    (``'location 7 metadata key store'``), with the value ``expected``
    (read) and ``found`` (``None``: absent).  Re-read, reapply, save again.
    """

    def __init__(self, image_id: Any, attribute: str, expected: Any = None,
                 found: Any = None, reason: str | None = None):
        self.image_id = image_id
        self.attribute = attribute
        self.expected = expected
        self.found = found
        reason = reason or f'expected {expected!r}, found {found!r}'
        super().__init__(self._message(reason))

    def _message(self, reason: str) -> str:
        return (f'image {self.image_id}: {self.attribute} was changed by '
                f'another writer ({reason}); nothing was saved, re-read and '
                f'retry')


class Duplicate(Conflict):
    """An insert hit a unique constraint: a live row of that key exists.

    ``kind`` is ``'image'``, ``'property'``, ``'location'`` or ``'tag'``;
    ``key`` its image id, name, URL (masked) or tag.
    """

    def __init__(self, image_id: Any, kind: str, key: Any):
        self.kind = kind
        self.key = masking.mask_url(key) if kind == 'location' else key
        super().__init__(image_id, f'{kind} {self.key}', None, self.key)

    def _message(self, reason: str) -> str:
        return (f'image {self.image_id}: a live {self.kind} {self.key!r} '
                f'exists already; nothing was saved')


class Rejected(DatabaseError):
    """The database refused a value of one row; nothing of it was written.

    ``reason`` is the database's words (``Data too long for column
    'meta_data'``).
    """

    def __init__(self, image_id: Any, attribute: str, reason: str):
        self.reason = masking.mask_text(reason)
        super().__init__(f'image {image_id}: the database refused '
                         f'{attribute}: {self.reason}')


class Busy(DatabaseError):
    """Rows another transaction holds, asked for without waiting."""

    def __init__(self, what: str):
        super().__init__(f'{what}: locked by another writer')


class Forbidden(DatabaseError):
    """The caller may not write: a read-only context or database."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f'writing is not allowed: {reason}')


class ForeignSchema(DatabaseError):
    """``db sync`` refuses a database whose schema another tool manages.

    ``owner`` is ``'glance'`` or ``'unknown'``.
    """

    def __init__(self, owner: str, evidence: str):
        self.owner = owner
        who = ('Glance manages this database'
               if owner == 'glance' else
               'this database holds a schema multistore-prefix did not '
               'create')
        super().__init__(
            f'{who} ({evidence}); db sync changed nothing. multistore-prefix '
            f'reads and updates rows of such a database but never creates, '
            f'alters or drops anything in it: use it as is, or point '
            f'[database]/connection at a database of its own')


class SchemaTooNew(DatabaseError):
    """The database was migrated by a newer multistore-prefix."""

    def __init__(self, revision: str):
        super().__init__(
            f'the database schema is at revision {revision!r}, which this '
            f'multistore-prefix does not know; upgrade multistore-prefix')
