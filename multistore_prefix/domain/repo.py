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


"""The bottom of the stack: images in the database.

:class:`ImageRepo` turns rows into images and the distinction layer's
:class:`~multistore_prefix.domain.distinction.ImageChanges` into
compare-and-swap writes, one transaction per call.  It never decides what
changed: ``save`` writes exactly the changes it is handed.
"""

import copy
from typing import Any, Callable, Mapping

from oslo_db import api as oslo_db_api
from oslo_utils import timeutils

from multistore_prefix.db import api
from multistore_prefix.db import batches
from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import exceptions
from multistore_prefix.db import scan
from multistore_prefix.domain import image as image_mod
from multistore_prefix.domain import status

# A deadlock (or a Galera certification failure, which oslo.db reports as
# one) rolls the whole transaction back; it is replayed as it was, since
# every write in it compares with the values read, not with the database.
_retry_on_deadlock = oslo_db_api.wrap_db_retry(
    max_retries=5, retry_on_deadlock=True, retry_interval=0.05,
    inc_retry_interval=True, max_retry_interval=1)


class ImageRepo:
    """Images stored in Glance's tables.

    Every write raises ``Forbidden`` when the database is read-only or the
    ``context`` has a true ``read_only`` attribute (oslo.context's).
    """

    def __init__(self, database: db_engine.Database, context: Any = None):
        self.database = database
        self.context = context

    def get(self, image_id: str) -> image_mod.Image:
        """:raises NotFound: no such image, or it is deleted."""
        with self.database.reader() as conn:
            return _to_image(api.image_get(conn, image_id))

    def correct_locations(self, image_id: str, decide: Callable,
                          proceed: Callable[[], bool] | None = None):
        """Write the stores ``decide`` gives the image's live locations.

        One read of the rows (an image that needs nothing costs that
        alone).  When there is something to write, one transaction locks
        those rows in id order (the order of Glance's own image save),
        decides them again on what they hold now, and writes each one
        compare-and-swap: only ``meta_data`` and ``updated_at``.

        :param decide: ``(id, image_id, url, meta_data)`` rows -> a
            :class:`~multistore_prefix.deciding.Batch`.
        :param proceed: asked once the rows are read; when it says no
            (its caller stopped waiting), nothing is written.
        :returns: the batch decided on the first read, its ``writes`` the
            ones written (``None`` when ``proceed`` said no).
        :raises Busy: another transaction holds one of the rows: nothing
            was written (nor waited for).
        """
        with self.database.reader() as conn:
            rows = scan.image_rows(conn, image_id)
        batch = decide(rows)
        if not batch.writes:
            return batch
        if proceed is not None and not proceed():
            return None
        self._check_writable()
        # Never waits for a lock (nor retries): rows another writer holds
        # are that writer's to write (a backfill batch, Glance's save).
        with self.database.writer() as conn:
            current = batches.lock_current(
                conn, [w.location_id for w in batch.writes], nowait=True)
            writes = decide([(location_id, image_id, row.url, row.text)
                             for location_id, row in sorted(current.items())
                             if row.live]).writes
            batches.set_metadata(conn, writes, timeutils.utcnow(),
                                 locked=True)
        batch.writes = writes
        return batch

    @_retry_on_deadlock
    def rewrite_locations(self, image_id: str, rewrites) -> list:
        """Each row's URL and store, compare-and-swap on both.

        :param rewrites: :class:`~multistore_prefix.deciding.Rewrite` rows.
        :returns: the rewrites that another writer got to first (each is
            left as that writer left it).
        """
        self._check_writable()
        now = timeutils.utcnow()
        lost = []
        with self.database.writer() as conn:
            for rewrite in rewrites:
                try:
                    api.rewrite_location(conn, rewrite, now)
                except exceptions.Conflict:
                    lost.append(rewrite)
        return lost

    def metadata_limit(self) -> int | None:
        """The most bytes a location's ``meta_data`` holds (None: any)."""
        with self.database.reader() as conn:
            return scan.metadata_limit(conn)

    def list(self, filters: Mapping[str, Any] | None = None,
             marker: str | None = None,
             limit: int | None = None) -> list[image_mod.Image]:
        """Live images by id, ``filters`` by equality, after ``marker``."""
        filters = {('id' if k == 'image_id' else k): v
                   for k, v in (filters or {}).items()}
        with self.database.reader() as conn:
            return [_to_image(row) for row in api.image_get_all(
                conn, filters=filters, marker=marker, limit=limit)]

    @_retry_on_deadlock
    def add(self, image: image_mod.Image) -> None:
        """Insert a new image; its new locations get their row ``id``.

        :raises Duplicate: the image id exists already.
        """
        self._check_writable()
        values = {'id': image.image_id, 'created_at': image.created_at,
                  'updated_at': image.updated_at}
        values.update((name, getattr(image, name))
                      for name in image_mod.COLUMN_ATTRIBUTES)
        with self.database.writer() as conn:
            ids = api.image_create(
                conn, values, dict(image.extra_properties),
                sorted(image.tags), copy.deepcopy(image.locations),
                timeutils.utcnow())
        for location, location_id in zip(image.locations, ids):
            location['id'] = location_id

    def save(self, image: image_mod.Image, changes) -> None:
        """Write ``changes`` of ``image``, all or nothing.

        Locations whose metadata was merged with another writer's keys get
        the merged metadata; new locations get their row ``id``.

        :raises Conflict: another writer changed what a change was based
            on; nothing was written.
        :raises Duplicate: an added property, tag or location exists.
        """
        if not changes:
            return
        self._check_writable()
        now = timeutils.utcnow()
        try:
            merged, ids = self._apply(changes, now)
        except exceptions.Conflict as exc:
            if exc.attribute != 'status' or 'status' not in changes.columns:
                raise
            expected, target = changes.columns['status']
            raise status.StatusConflict(image.image_id, expected, target,
                                        exc.found) from exc
        for update in changes.locations_updated:
            if update.metadata is not None:
                image.locations[update.index]['metadata'] = merged[
                    update.location_id]
        for added, location_id in zip(changes.locations_added, ids):
            image.locations[added.index]['id'] = location_id
        if changes.columns:
            image.updated_at = now

    @_retry_on_deadlock
    def remove(self, image: image_mod.Image) -> None:
        """Soft-delete the image with its properties, tags and locations.

        :raises NotFound: it is gone already.
        """
        self._check_writable()
        with self.database.writer() as conn:
            api.image_destroy(conn, image.image_id, timeutils.utcnow())

    def _check_writable(self):
        if getattr(self.context, 'read_only', False):
            raise exceptions.Forbidden('read-only request context')

    @_retry_on_deadlock
    def _apply(self, changes, now):
        image_id = changes.image_id
        merged, ids = {}, []
        with self.database.writer() as conn:
            if changes.columns:
                api.image_update(conn, image_id, changes.columns, now)
            for name, old in sorted(changes.properties_removed.items()):
                api.property_remove(conn, image_id, name, old, now)
            for name, (old, new) in sorted(
                    changes.properties_changed.items()):
                api.property_update(conn, image_id, name, old, new, now)
            for name, value in sorted(changes.properties_added.items()):
                api.property_add(conn, image_id, name, value, now)
            for tag in sorted(changes.tags_removed):
                api.tag_remove(conn, image_id, tag, now)
            for tag in sorted(changes.tags_added):
                api.tag_add(conn, image_id, tag, now)
            for location in changes.locations_removed:
                api.location_remove(conn, location.location_id, now)
            for update in changes.locations_updated:
                merged[update.location_id] = api.location_update(
                    conn, image_id, update.location_id, now,
                    metadata=update.metadata, status=update.status,
                    url=update.url_change)
            for added in changes.locations_added:
                ids.append(api.location_add(
                    conn, image_id, added.url, added.metadata,
                    added.status or 'active', now))
        return merged, ids


def _to_image(row: dict) -> image_mod.Image:
    return image_mod.Image(
        row['id'], row['status'], row['created_at'], row['updated_at'],
        extra_properties=row['properties'], tags=row['tags'],
        locations=row['locations'],
        **{name: row[name] for name in image_mod.COLUMN_ATTRIBUTES
           if name != 'status'})
