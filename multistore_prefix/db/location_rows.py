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


"""One location row at a time: add, change (compare-and-swap), remove.

A metadata change is merged key by key into the text in the row,
compare-and-swap on that exact text, so a writer that sets ``store`` never
drops a key another writer added meanwhile; the keys it changes are
spliced into that text (:mod:`multistore_prefix.metadata`), so every
other byte stays as it was.  The backfill's writes of many rows at once
are in :mod:`multistore_prefix.db.batches`.
"""

import datetime
from typing import Any, Mapping

import sqlalchemy as sa

from multistore_prefix.db import batches
from multistore_prefix.db import exceptions
from multistore_prefix.db import models
from multistore_prefix.db import sql
from multistore_prefix import metadata as metadata_text

_LOCATIONS = models.image_locations


MERGE_ATTEMPTS = 5

MISSING = metadata_text.MISSING
#: The JSON text Glance stores for a new location's metadata.
dump_metadata = metadata_text.dump


def load_metadata(text: str | bytes | None) -> Any:
    """A location's metadata from its text.

    Text that is not a standard JSON object (or, on SQLite, not UTF-8)
    becomes a :class:`multistore_prefix.metadata.Bad` reason: the resolver
    reports it and nothing here rewrites it.
    """
    return None if text is None else metadata_text.load(text)


class KeyConflict(Exception):
    """A metadata ``key`` this writer changes was changed differently.

    ``expected`` is its value as read, ``found`` its value now (``None``:
    absent).
    """

    def __init__(self, key, expected, found):
        self.key = key
        self.expected = None if expected is MISSING else expected
        self.found = None if found is MISSING else found
        super().__init__(key)


def merge_metadata(current: Mapping, before: Mapping,
                   after: Mapping) -> dict:
    """Apply one writer's change (``before`` -> ``after``) to ``current``.

    Only the keys this writer changed are touched; every other key keeps
    the value it has in ``current``, whoever set it.

    :raises KeyConflict: a changed key holds neither the value this writer
        read nor the one it wants.
    """
    merged = dict(current)
    for key in metadata_text.changed_keys(before, after):
        old = before.get(key, MISSING)
        new = after.get(key, MISSING)
        found = current.get(key, MISSING)
        if found == new:
            continue
        if found != old:
            raise KeyConflict(key, old, found)
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
            image_id, now, value=url, meta_data=dump_metadata(metadata),
            status=status)])
    return result.inserted_primary_key[0]


def location_update(conn: sa.engine.Connection, image_id: str,
                    location_id: int, now: datetime.datetime, *,
                    metadata: tuple[Any, Any] | None = None,
                    status: tuple[str, str] | None = None,
                    url: tuple[str, str] | None = None,
                    attempts: int = MERGE_ATTEMPTS) -> Any:
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
    text = dump_metadata(meta_before)
    wanted_meta = meta_after
    wanted_text = dump_metadata(meta_after)
    current_status = status[0] if status else None
    current_url = url[0] if url else None
    for _attempt in range(attempts):
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


def location_remove(conn: sa.engine.Connection, image_id: str,
                    location_id: int, now: datetime.datetime,
                    status: str = 'deleted') -> None:
    """Soft-delete a location (already gone is fine: the same end)."""
    sql.soft_delete(conn, _LOCATIONS, now, _LOCATIONS.c.id == location_id,
                    status=status)


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
        except KeyConflict as exc:
            raise exceptions.Conflict(
                image_id, f'{label} metadata key {exc.key!r}', exc.expected,
                exc.found) from None
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
    return dump_metadata(after), after
