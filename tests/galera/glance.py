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

"""Glance-like writers for the Galera tests.

A save is one transaction, as in Glance's ``image_update``: it reads the
image's live locations, touches the image row, sets a property, and
rewrites the whole ``meta_data`` text of each location with one key more.
It reads with ``SELECT ... FOR UPDATE``: a save made from an older read
(Glance's API reads in one transaction and saves in another) would write
an old ``meta_data`` back over anyone's change, the backfill's or another
user's, and that is no conflict Galera could see.

Writers connect as their own database user (:data:`GLANCE_USER`), so a
backfill worker's sessions (root's) can be told apart on a node.
"""

import collections
import datetime
import json
import random
import threading
import time

from oslo_db import exception as db_exc
import sqlalchemy as sa

from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import models

_I = models.images
_L = models.image_locations
_P = models.image_properties

#: The property each save sets (to the save's key).
PROPERTY = 'edited_by'
GLANCE_USER = 'glance'

#: Seconds a save holds its rows before it writes: Glance's
#: ``image_update`` runs a dozen statements in that transaction.
SAVE_HOLDS = 0.02
#: Seconds between two looks of a writer with nothing to do.
POLL = 0.02
#: Seconds between two looks at ``information_schema.INNODB_TRX``.  No
#: less than 0.1: InnoDB refreshes it only when it was last read more
#: than 0.1 s before, so a faster poll keeps seeing its first answer.
TRX_POLL = 0.25


def lock(conn, image_id: str) -> list:
    """Read an image's live locations, holding them: (id, meta_data)."""
    return conn.execute(
        sa.select(_L.c.id, _L.c.meta_data)
        .where(_L.c.image_id == image_id, _L.c.deleted == sa.false())
        .order_by(_L.c.id).with_for_update()).all()


def write(conn, image_id: str, rows: list, key: str, number: int) -> None:
    """The rest of a save: the image, its property, each location."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    conn.execute(_I.update().where(_I.c.id == image_id)
                 .values(updated_at=now))
    conn.execute(_P.update().where(_P.c.image_id == image_id,
                                   _P.c.name == PROPERTY)
                 .values(value=key, updated_at=now))
    for location_id, text in rows:
        conn.execute(_L.update().where(_L.c.id == location_id).values(
            meta_data=json.dumps({**json.loads(text), key: number}),
            updated_at=now))


def key_number(key: str) -> int:
    """The number a save's key stands for in ``meta_data``."""
    return int(key.rsplit('-', 1)[1])


class Saves:
    """The saves one writer committed.

    :ivar saved: {image id: the keys of its committed saves, in order}.
    :ivar deadlocks: saves that lost a conflict (and were run again).
    """

    def __init__(self, name: str):
        self.name = name
        self.saved: dict[str, list[str]] = collections.defaultdict(list)
        self.deadlocks = 0
        self._count = 0

    def next_key(self) -> tuple[str, int]:
        """A new save's key, and the number it stands for."""
        self._count += 1
        return f'{self.name}-{self._count}', self._count

    def save(self, database: db_engine.Database, image_id: str,
             stop: threading.Event | None = None) -> bool | None:
        """Save until it commits; whether every location had a store.

        ``None``: ``stop`` was set after a lost conflict (nothing saved).
        """
        key, number = self.next_key()
        while True:
            try:
                with database.writer() as conn:
                    rows = lock(conn, image_id)
                    time.sleep(SAVE_HOLDS)
                    write(conn, image_id, rows, key, number)
            except db_exc.DBDeadlock:
                self.deadlocks += 1
                if stop is not None and stop.is_set():
                    return None
                continue
            self.saved[image_id].append(key)
            return all('store' in json.loads(text) for _, text in rows)


class GlanceWriter(threading.Thread):
    """Saves the images of one worker's shard through another node.

    It starts with the images the worker reaches first and saves among the
    few nearest the worker's position, each at most ``per_image`` times:
    hot enough that batches and saves meet, never so hot that a batch
    could not win within the backfill's retries (a Glance image is not
    saved many times a second for long).

    :ivar saves: what it committed (:class:`Saves`).
    :ivar error: what stopped it, if anything but the end.
    """

    def __init__(self, name: str, url: str, images: list[str],
                 stop: threading.Event, frontier: int, per_image: int):
        super().__init__(name=name, daemon=True)
        self.database = db_engine.Database(url)
        self.saves = Saves(name)
        self.todo = list(images)  # in the order a worker reaches them
        self.stop_event = stop
        self.frontier = frontier
        self.per_image = per_image
        self.error: BaseException | None = None
        self._random = random.Random(name)

    def run(self):
        try:
            while not self.stop_event.is_set():
                if self.todo:
                    self._save_one()
                else:
                    self.stop_event.wait(POLL)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.database.dispose()

    def _save_one(self):
        image_id = self._random.choice(self.todo[:self.frontier])
        done = self.saves.save(self.database, image_id, self.stop_event)
        if done:
            # The worker goes in id order: it is past the ones before too.
            del self.todo[:self.todo.index(image_id) + 1]
        elif len(self.saves.saved[image_id]) >= self.per_image:
            self.todo.remove(image_id)


class Pin:
    """Makes a backfill worker's batch lose a conflict, for certain.

    A save of image ``held`` on the worker's own node locks its rows
    first.  The worker's batch UPDATE locks the first location of
    ``other`` (before them in id order, with the same text) and waits.
    Then a save of ``other`` commits on another node: Galera must abort
    the worker's transaction, which holds a row that save changed.  Only
    then does the held save write and commit.

    :ivar saves: the two saves (:class:`Saves`).
    :ivar aborted: the worker's waiting transaction ended while the rows
        it waited for were still held: Galera aborted it.
    """

    def __init__(self, name: str, worker_node, other_node, database_name,
                 other: str, held: str):
        self.saves = Saves(name)
        self.aborted = False
        self._worker_node = worker_node
        self._database_name = database_name
        self._other = other
        self._held = held
        self._other_database = db_engine.Database(
            other_node.url(database_name, user=GLANCE_USER))
        self._engine = sa.create_engine(
            worker_node.url(database_name, user=GLANCE_USER),
            poolclass=sa.pool.NullPool)
        self._conn = None
        self._transaction = None
        self._rows = None

    def hold(self) -> None:
        """Lock the rows of ``held`` on the worker's node (before it runs)."""
        self._conn = self._engine.connect()
        self._transaction = self._conn.begin()
        self._rows = lock(self._conn, self._held)

    def spring(self, worker, timeout: float) -> None:
        """Wait for the worker to wait, commit ``other``, then ``held``."""
        waiting = self._wait(bool, worker, timeout)
        if waiting:
            self.saves.save(self._other_database, self._other)
            # Its retry, if it waits again at once, is another transaction.
            self.aborted = self._wait(
                lambda ids: not ids & waiting, worker, timeout) is not None
        key, number = self.saves.next_key()
        write(self._conn, self._held, self._rows, key, number)
        self._transaction.commit()
        self.saves.saved[self._held].append(key)
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()  # rolls back what was not committed
            self._conn = None
        self._engine.dispose()
        self._other_database.dispose()

    def _wait(self, done, worker, timeout: float) -> set | None:
        """Poll the worker's waiting transactions until ``done(ids)``.

        :returns: those ids, or None if the bound passed first (or the
            worker ended while ``done`` was still false).
        """
        deadline = time.monotonic() + timeout
        while True:
            ids = self._waiting()
            if done(ids):
                return ids
            if worker.poll() is not None or time.monotonic() > deadline:
                return None
            time.sleep(TRX_POLL)

    def _waiting(self) -> set:
        """The ids of the worker's transactions waiting for a lock."""
        connection = self._worker_node.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT t.trx_id FROM information_schema.INNODB_TRX t "
                    "JOIN information_schema.PROCESSLIST p "
                    "ON p.ID = t.trx_mysql_thread_id "
                    "WHERE t.trx_state = 'LOCK WAIT' AND p.USER = 'root' "
                    "AND p.DB = %s", (self._database_name,))
                return {row[0] for row in cursor.fetchall()}
        finally:
            connection.close()
