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


"""Writes of an image's properties and tags, one row each.

The same rules as :mod:`multistore_prefix.db.api` (which names these
functions too, as the layer's interface): a change is a compare-and-swap
on the value the caller read, an insert is a plain insert whose
"duplicate" answer becomes :class:`~multistore_prefix.db.exceptions.
Duplicate`.
"""

import datetime
from typing import Any

from oslo_db import exception as db_exc
import sqlalchemy as sa

from multistore_prefix.db import exceptions
from multistore_prefix.db import location_rows
from multistore_prefix.db import models
from multistore_prefix.db import sql

_PROPERTIES = models.image_properties
_TAGS = models.image_tags


def property_add(conn: sa.engine.Connection, image_id: str, name: str,
                 value: Any, now: datetime.datetime) -> None:
    """Insert a property.

    Glance's own unique constraint on (image_id, name) counts soft-deleted
    rows too, so on a Glance database a name used before is refused; then
    the deleted row is revived instead, as Glance itself does.  On the
    project's schema the insert fails only beside a live row, and so does
    the revival.

    :raises Duplicate: the image has a live property of that name.
    """
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(_PROPERTIES),
                         [sql.child(image_id, now, name=name, value=value)])
        return
    except db_exc.DBDuplicateEntry:
        pass
    try:
        with conn.begin_nested():
            revived = conn.execute(
                sa.update(_PROPERTIES)
                .where(_PROPERTIES.c.image_id == image_id,
                       _PROPERTIES.c.name == name,
                       _PROPERTIES.c.deleted == sa.true())
                .values(value=value, deleted=False, deleted_at=None,
                        updated_at=now)).rowcount
    except db_exc.DBDuplicateEntry:
        revived = 0
    if not revived:
        raise exceptions.Duplicate(image_id, 'property', name)


def property_update(conn: sa.engine.Connection, image_id: str, name: str,
                    old: Any, new: Any, now: datetime.datetime) -> None:
    """Change a property's value if it still holds ``old``.

    :raises Conflict: it holds another value, or was removed.
    """
    where = (_PROPERTIES.c.image_id == image_id, _PROPERTIES.c.name == name,
             sql.live(_PROPERTIES))
    result = conn.execute(
        sa.update(_PROPERTIES)
        .where(*where, sql.holds(_PROPERTIES.c.value, old))
        .values(value=new, updated_at=now))
    if not result.rowcount:
        row = sql.locked(conn, _PROPERTIES, *where)
        found = location_rows.MISSING if row is None else row['value']
        if not sql.same(found, new):
            raise _property_conflict(image_id, name, old, found)


def property_remove(conn: sa.engine.Connection, image_id: str, name: str,
                    old: Any, now: datetime.datetime) -> None:
    """Soft-delete a property if it still holds ``old``.

    :raises Conflict: it holds another value now.
    """
    where = (_PROPERTIES.c.image_id == image_id, _PROPERTIES.c.name == name,
             sql.live(_PROPERTIES))
    result = conn.execute(
        sa.update(_PROPERTIES)
        .where(*where, sql.holds(_PROPERTIES.c.value, old))
        .values(deleted=True, deleted_at=now, updated_at=now))
    if not result.rowcount:
        row = sql.locked(conn, _PROPERTIES, *where)
        if row is not None:
            raise _property_conflict(image_id, name, old, row['value'])


def tag_add(conn: sa.engine.Connection, image_id: str, tag: str,
            now: datetime.datetime) -> None:
    """Insert a tag.

    :raises Duplicate: the image has that tag (on the project's schema;
        Glance's own schema does not forbid duplicate tags).
    """
    with sql.duplicate_as(image_id, 'tag', tag):
        conn.execute(sa.insert(_TAGS), [sql.child(image_id, now, value=tag)])


def tag_remove(conn: sa.engine.Connection, image_id: str, tag: str,
               now: datetime.datetime) -> None:
    """Soft-delete a tag (already gone is fine: the same end)."""
    conn.execute(
        sa.update(_TAGS).where(_TAGS.c.image_id == image_id,
                               sql.exact(_TAGS.c.value) == tag,
                               sql.live(_TAGS))
        .values(deleted=True, deleted_at=now, updated_at=now))


# -- locations ----------------------------------------------------------------


# -- helpers ----------------------------------------------------------------

def _property_conflict(image_id, name, old, found):
    found = None if found is location_rows.MISSING else found
    return exceptions.Conflict(
        image_id, f'property {name}', old, found,
        reason=None if found is not None else
        f'expected {old!r}, found it removed')
