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


"""Reads and writes of image rows; every write is a compare-and-swap.

Functions take a Core connection inside a transaction (see
:class:`multistore_prefix.db.engine.Database`) and speak plain values:
image dicts in, image dicts out.  A write changes one attribute of one row
only if the row still holds the value the caller read::

    UPDATE image_properties SET value = :new, updated_at = :now
     WHERE image_id = :id AND name = :name AND deleted = false
       AND value = :old

When it matches no row, the row is read again (locked) to tell the caller
what happened: already the wanted value (fine), changed by someone else
(:class:`~multistore_prefix.db.exceptions.Conflict`), or gone.  Inserts are
plain inserts: uniqueness is the database's job, and its "duplicate" answer
becomes :class:`~multistore_prefix.db.exceptions.Duplicate`.  Nothing here
reads to decide whether to insert.

Glance's own unique constraint on a property's (image_id, name) counts
soft-deleted rows too: there a deleted property is revived, as Glance
itself does.

A location's metadata change is merged key by key into the text in the
row, compare-and-swap on that exact text, so a writer that sets ``store``
never drops a key another writer added meanwhile; the keys it changes are
spliced into that text (:mod:`multistore_prefix.metadata`), so every
other byte stays as it was.  The backfill's writes of many rows at once
are in :mod:`multistore_prefix.db.batches`.
"""

import datetime
from typing import Any, Iterable, Mapping

from oslo_db import exception as db_exc
import sqlalchemy as sa

from multistore_prefix.db import batches
from multistore_prefix.db import exceptions
from multistore_prefix.db import models
from multistore_prefix.db import sql
from multistore_prefix import metadata as metadata_text

MERGE_ATTEMPTS = 5
MISSING = metadata_text.MISSING

_IMAGES = models.images
_PROPERTIES = models.image_properties
_TAGS = models.image_tags
_LOCATIONS = models.image_locations


# -- reads --------------------------------------------------------------------

_IMAGE_FIELDS = ('id', *models.IMAGE_COLUMNS, 'created_at', 'updated_at')


def image_get(conn: sa.engine.Connection, image_id: str) -> dict:
    """One live image with its properties, tags and locations.

    :raises NotFound: no such image, or it is deleted.
    """
    images = image_get_all(conn, filters={'id': image_id})
    if not images:
        raise exceptions.NotFound(image_id)
    return images[0]


def image_get_all(conn: sa.engine.Connection,
                  filters: Mapping[str, Any] | None = None,
                  marker: str | None = None,
                  limit: int | None = None) -> list[dict]:
    """Live images, by id, each with properties, tags and locations.

    Four queries whatever the number of images.

    :param filters: column name -> value, equality (``id`` and the names of
        :data:`~multistore_prefix.db.models.IMAGE_COLUMNS`).
    :param marker: start after this image id.
    :param limit: at most this many images.
    """
    query = sa.select(*(_IMAGES.c[f] for f in _IMAGE_FIELDS)).where(
        sql.live(_IMAGES))
    for name, value in (filters or {}).items():
        if name not in _IMAGE_FIELDS:
            raise ValueError(f'cannot filter images on {name!r}')
        column = _IMAGES.c[name]
        query = query.where(column.is_(None) if value is None
                            else column == value)
    if marker is not None:
        query = query.where(_IMAGES.c.id > marker)
    query = query.order_by(_IMAGES.c.id)
    if limit is not None:
        query = query.limit(limit)
    images = {}
    for row in conn.execute(query).mappings():
        image = dict(row)
        image.update(properties={}, tags=[], locations=[])
        images[image['id']] = image
    if not images:
        return []
    sqlite = conn.dialect.name == 'sqlite'

    def live_children(table, *columns):
        return conn.execute(
            sa.select(table.c.image_id, *columns)
            .where(table.c.image_id.in_(list(images)), sql.live(table))
            .order_by(table.c.id))
    for image_id, name, value in live_children(
            _PROPERTIES, _PROPERTIES.c.name, _PROPERTIES.c.value):
        images[image_id]['properties'][name] = value
    for image_id, value in live_children(_TAGS, _TAGS.c.value):
        images[image_id]['tags'].append(value)
    for row in live_children(
            _LOCATIONS, _LOCATIONS.c.id,
            sql.text_as_stored(_LOCATIONS.c.value, sqlite),
            sql.text_as_stored(_LOCATIONS.c.meta_data, sqlite),
            _LOCATIONS.c.status):
        images[row.image_id]['locations'].append(
            location_dict(row))
    return list(images.values())


# -- image rows -----------------------------------------------------------

def image_create(conn: sa.engine.Connection, values: Mapping[str, Any],
                 properties: Mapping[str, Any], tags: Iterable[str],
                 locations: Iterable[Mapping], now: datetime.datetime
                 ) -> list[int]:
    """Insert an image with its properties, tags and locations.

    :param values: ``id`` and image columns.
    :param locations: dicts with ``url``, ``metadata``, ``status``.
    :returns: the new location ids, in order.
    :raises Duplicate: the image id exists, or two entries collide.
    """
    image_id = values['id']
    row = {'created_at': now, 'updated_at': now, 'deleted': False}
    row.update((k, v) for k, v in values.items()
               if k in _IMAGE_FIELDS and v is not None)
    with sql.duplicate_as(image_id, 'image', image_id):
        conn.execute(sa.insert(_IMAGES), [row])
    if properties:
        with sql.duplicate_as(image_id, 'property', ', '.join(properties)):
            conn.execute(sa.insert(_PROPERTIES), [
                sql.child(image_id, now, name=name, value=value)
                for name, value in properties.items()])
    tags = list(tags)
    if tags:
        with sql.duplicate_as(image_id, 'tag', ', '.join(tags)):
            conn.execute(sa.insert(_TAGS), [
                sql.child(image_id, now, value=tag) for tag in tags])
    return [location_add(conn, image_id, loc['url'], loc.get('metadata', {}),
                         loc.get('status') or 'active', now)
            for loc in locations]


def image_update(conn: sa.engine.Connection, image_id: str,
                 changes: Mapping[str, tuple[Any, Any]],
                 now: datetime.datetime) -> None:
    """Set image columns, each only if it still holds the value read.

    :param changes: column -> (value read, value wanted).
    :raises Conflict: a column holds neither value; nothing is changed.
    :raises NotFound: the image is gone.
    """
    for name in changes:
        if name not in models.IMAGE_COLUMNS:
            raise ValueError(f'{name!r} is not an image column')
    pending = dict(changes)
    for _attempt in range(2):
        result = conn.execute(
            sa.update(_IMAGES)
            .where(_IMAGES.c.id == image_id, sql.live(_IMAGES),
                   *(sql.holds(_IMAGES.c[n], old)
                     for n, (old, _new) in pending.items()))
            .values({**{n: new for n, (_old, new) in pending.items()},
                     'updated_at': now}))
        if result.rowcount:
            return
        row = sql.locked(conn, _IMAGES, _IMAGES.c.id == image_id)
        if row is None or row['deleted']:
            raise exceptions.NotFound(image_id)
        for name, (old, new) in list(pending.items()):
            # Status moves are events: another writer's identical move
            # is its move, not this one's.
            if sql.same(row[name], new) and name != 'status':
                del pending[name]
            elif not sql.same(row[name], old):
                raise exceptions.Conflict(image_id, name, old, row[name])
        if not pending:
            return
    raise exceptions.Conflict(image_id, ', '.join(pending),
                              reason='the row kept changing')


def image_destroy(conn: sa.engine.Connection, image_id: str,
                  now: datetime.datetime) -> None:
    """Soft-delete an image and its properties, tags and locations.

    :raises NotFound: the image is gone already.
    """
    if not sql.soft_delete(conn, _IMAGES, now, _IMAGES.c.id == image_id,
                           status='deleted'):
        raise exceptions.NotFound(image_id)
    for table in (_PROPERTIES, _TAGS):
        sql.soft_delete(conn, table, now, table.c.image_id == image_id)
    sql.soft_delete(conn, _LOCATIONS, now,
                    _LOCATIONS.c.image_id == image_id, status='deleted')


# -- properties and tags ---------------------------------------------------

def property_add(conn: sa.engine.Connection, image_id: str, name: str,
                 value: Any, now: datetime.datetime) -> None:
    """Insert a property, or revive its deleted row (see above).

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
        if row is None or not sql.same(row['value'], new):
            raise _property_conflict(image_id, name, old, row)


def property_remove(conn: sa.engine.Connection, image_id: str, name: str,
                    old: Any, now: datetime.datetime) -> None:
    """Soft-delete a property if it still holds ``old``.

    :raises Conflict: it holds another value now.
    """
    where = (_PROPERTIES.c.image_id == image_id, _PROPERTIES.c.name == name)
    if not sql.soft_delete(conn, _PROPERTIES, now, *where,
                           sql.holds(_PROPERTIES.c.value, old)):
        row = sql.locked(conn, _PROPERTIES, *where, sql.live(_PROPERTIES))
        if row is not None:
            raise _property_conflict(image_id, name, old, row)


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
    sql.soft_delete(conn, _TAGS, now, _TAGS.c.image_id == image_id,
                    sql.exact(_TAGS.c.value) == tag)


def _property_conflict(image_id, name, old, row):
    found = None if row is None else row['value']
    return exceptions.Conflict(
        image_id, f'property {name}', old, found,
        reason=None if found is not None else
        f'expected {old!r}, found it removed')


# -- locations ------------------------------------------------------------

def load_metadata(text: str | bytes | None) -> Any:
    """A location's metadata from its text.

    Text that is not a standard JSON object (or, on SQLite, not UTF-8)
    becomes a :class:`multistore_prefix.metadata.Bad` reason: the resolver
    reports it and nothing here rewrites it.
    """
    return None if text is None else metadata_text.load(text)


def merge_metadata(current: Mapping, before: Mapping,
                   after: Mapping) -> dict:
    """Apply one writer's change (``before`` -> ``after``) to ``current``.

    Only the keys this writer changed are touched; every other key keeps
    the value it has in ``current``, whoever set it.

    :raises Conflict: a changed key holds neither the value this writer
        read nor the one it wants (``found``; ``None``: absent); the image
        and the location are the caller's to name.
    """
    merged = dict(current)
    for key in metadata_text.changed_keys(before, after):
        old = before.get(key, MISSING)
        new = after.get(key, MISSING)
        found = current.get(key, MISSING)
        if found == new:
            continue
        if found != old:
            raise exceptions.Conflict(None, f'metadata key {key!r}', *(
                None if value is MISSING else value for value in (old, found)))
        if new is MISSING:
            del merged[key]
        else:
            merged[key] = new
    return merged


def location_dict(row) -> dict:
    """A location row as the domain holds it."""
    return {'id': row.id, 'url': sql.utf8_or_bytes(row.value),
            'metadata': load_metadata(sql.utf8_or_bytes(row.meta_data)),
            'status': row.status}


def location_add(conn: sa.engine.Connection, image_id: str, url: str,
                 metadata: Any, status: str, now: datetime.datetime) -> int:
    """Insert a location; returns its id.

    :raises Duplicate: the image has a live location with that URL (on the
        project's schema).
    """
    with sql.duplicate_as(image_id, 'location', url):
        result = conn.execute(sa.insert(_LOCATIONS), [sql.child(
            image_id, now, value=url, meta_data=metadata_text.dump(metadata),
            status=status)])
    return result.inserted_primary_key[0]


def location_update(conn: sa.engine.Connection, image_id: str,
                    location_id: int, now: datetime.datetime, *,
                    metadata: tuple[Any, Any] | None = None,
                    status: tuple[str, str] | None = None,
                    url: tuple[str, str] | None = None) -> Any:
    """Change a location's metadata, status and/or URL; returns its metadata.

    The metadata change is merged key by key into what the row holds now
    (:func:`merge_metadata`); the write is compare-and-swap on the exact
    JSON text it was merged into.  The first try assumes the row still
    holds the text of the metadata read, so an undisturbed change is a
    single ``UPDATE``.

    :param metadata: (metadata read, metadata wanted), or ``None``.
    :param status: (status read, status wanted), or ``None``.
    :param url: (URL read, URL wanted), or ``None``: the row's ``value`` is
        rewritten, compare-and-swap like the rest.
    :raises Conflict: another writer changed a key, the status or the URL
        this writer changes, or removed the location.
    :raises Duplicate: the image has another live location with the new
        URL (on the project's schema).
    """
    label = f'location {location_id}'
    meta_before, meta_after = metadata if metadata else (None, None)
    text = metadata_text.dump(meta_before)
    wanted_meta = meta_after
    wanted_text = metadata_text.dump(meta_after)
    current_status = status[0] if status else None
    current_url = url[0] if url else None
    for _attempt in range(MERGE_ATTEMPTS):
        values = {'updated_at': now}
        where = [_LOCATIONS.c.id == location_id, sql.live(_LOCATIONS)]
        if metadata:
            values['meta_data'] = wanted_text
            where.append(sql.holds(_LOCATIONS.c.meta_data, text))
        if status and current_status != status[1]:
            values['status'] = status[1]
            where.append(_LOCATIONS.c.status == current_status)
        if url and current_url != url[1]:
            values['value'] = url[1]
            where.append(sql.holds(_LOCATIONS.c.value, current_url))
        if len(values) == 1:
            return wanted_meta
        with sql.duplicate_as(image_id, 'location',
                              url[1] if url else location_id), \
                sql.rejected_as(image_id, label):
            updated = conn.execute(sa.update(_LOCATIONS).where(*where)
                                   .values(values)).rowcount
        if updated:
            return wanted_meta
        row = batches.lock_current(conn, [location_id]).get(
            location_id)
        if row is None or row.deleted:
            raise exceptions.Conflict(image_id, label, 'present', 'removed',
                                      reason='removed by another writer')
        if url:
            if row.url not in url:
                raise exceptions.Conflict(image_id, f'{label} URL',
                                          reason='rewritten by another '
                                                 'writer')
            current_url = row.url
        if status:
            if row.status not in status:
                raise exceptions.Conflict(image_id, f'{label} status',
                                          status[0], row.status)
            current_status = row.status
        if metadata:
            text = row.text
            wanted_text, wanted_meta = _merge_text(image_id, label, text,
                                                   meta_before, meta_after)
            if sql.same(wanted_text, text):
                metadata = None
    raise exceptions.Conflict(image_id, f'{label} metadata',
                              reason='the row kept changing')


def rewrite_location(conn: sa.engine.Connection, rewrite,
                     now: datetime.datetime) -> None:
    """A location's URL and store, compare-and-swap on both, all or nothing.

    :param rewrite: its ``location_id``, ``image_id``, ``url`` and
        ``metadata`` as read, and the ``store`` and ``new_url`` wanted (a
        :class:`~multistore_prefix.deciding.Rewrite`).
    :raises Conflict: another writer changed the URL, or the store.
    :raises Duplicate: the image has another live location with that URL.
    :raises Rejected: the database refuses the new metadata.
    """
    metadata = rewrite.metadata
    with conn.begin_nested():
        location_update(conn, rewrite.image_id, rewrite.location_id, now,
                        metadata=(metadata, {**metadata,
                                             'store': rewrite.store}),
                        url=(rewrite.url, rewrite.new_url))


def location_remove(conn: sa.engine.Connection, location_id: int,
                    now: datetime.datetime) -> None:
    """Soft-delete a location (already gone is fine: the same end)."""
    sql.soft_delete(conn, _LOCATIONS, now, _LOCATIONS.c.id == location_id,
                    status='deleted')


def _merge_text(image_id, label, text, before, after):
    """(new text, new metadata): this writer's change, merged into ``text``.

    Only the keys the writer changed are spliced into the row's text;
    every other byte of it stays as it was.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        members = metadata_text.parse('{}' if text is None else text)
        if isinstance(members, metadata_text.Bad):
            raise exceptions.Conflict(
                image_id, f'{label} metadata', before, None,
                reason=f'it is not a JSON object any more ({members})')
        changed = list(metadata_text.changed_keys(before, after))
        current = {}
        for key in changed:
            value = members.value(key)
            if value is not metadata_text.MISSING:
                current[key] = value
        try:
            merged = merge_metadata(current, before, after)
            new_text = metadata_text.patch(members, {
                key: merged.get(key, metadata_text.DELETE)
                for key in changed})
        except exceptions.Conflict as exc:
            raise exceptions.Conflict(image_id, f'{label} {exc.attribute}',
                                      exc.expected, exc.found) from None
        except ValueError as exc:
            raise exceptions.Conflict(image_id, f'{label} metadata',
                                      reason=str(exc)) from None
        return new_text, metadata_text.load(new_text)
    # Not two objects: the whole value is the one attribute.
    current = load_metadata(text)
    if current == after:
        return text, after
    # What was read: the value as loaded, or (a caller that kept it) the
    # text itself.
    if current != before and text != before:
        raise exceptions.Conflict(image_id, f'{label} metadata', before,
                                  current)
    return metadata_text.dump(after), after
