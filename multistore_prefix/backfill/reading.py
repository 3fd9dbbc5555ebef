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


"""Reading a shard's live locations in batches, the next beside the current.

Keyset pagination on the location id: memory stays flat, and a rerun
simply starts over.
"""

import concurrent.futures
import dataclasses
import threading
from typing import Callable, Iterator

from multistore_prefix.backfill import writing
from multistore_prefix.db import exceptions as db_exceptions
from multistore_prefix.db import retry
from multistore_prefix.db import scan as db_scan

#: With at most this many dead images (deleted, or killed, deleted or
#: pending_delete), their ids are read once and their locations left out
#: here; with more, each read joins ``images`` (a lookup per location).
DEAD_IN_MEMORY = 100_000
_HEX_SPACE = 16 ** 8


@dataclasses.dataclass(frozen=True)
class Shard:
    """One worker's share of the images: ``K/N``, K from 1 to N.

    Image ids are split into N ranges of their text, which partition every
    possible id (UUIDs spread evenly), so N workers cover each location
    exactly once.
    """

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> 'Shard':
        try:
            index, count = (int(part) for part in text.split('/'))
        except ValueError:
            raise ValueError(f'--shard {text!r}: write K/N, e.g. 1/4 for '
                             f'the first of four workers') from None
        if count < 1 or not 1 <= index <= count:
            raise ValueError(f'--shard {text!r}: K must be between 1 and N')
        return cls(index, count)

    def bounds(self) -> tuple[str | None, str | None]:
        """[low, high) of the image ids of this shard (None: unbounded)."""
        def boundary(k):
            return format(k * _HEX_SPACE // self.count, '08x')
        low = boundary(self.index - 1) if self.index > 1 else None
        high = boundary(self.index) if self.index < self.count else None
        return low, high

    def __str__(self):
        return f'{self.index}/{self.count}'


def _read_ahead(target, *args) -> concurrent.futures.Future:
    """``target(*args)`` in a daemon thread: its result, or its error.

    A daemon thread, so an interrupted run never waits for a read: reads
    change nothing, and one abandoned mid-way is simply closed.
    """
    future = concurrent.futures.Future()

    def run():
        try:
            future.set_result(target(*args))
        except BaseException as exc:  # handed to the main thread
            future.set_exception(exc)
    threading.Thread(target=run, daemon=True, name='backfill-read').start()
    return future


class Reader:
    """Reads a shard's live locations, a batch at a time."""

    def __init__(self, database, batch_size: int, shard_bounds,
                 should_stop: Callable[[], bool],
                 budget: retry.Budget | None = None):
        self.database = database
        self.batch_size = batch_size
        self.shard_bounds = shard_bounds
        self.should_stop = should_stop
        self.budget = budget or retry.Budget()
        self._statement = None

    def count(self) -> int:
        with self.database.reader() as conn:
            return db_scan.count_live(conn, *self.shard_bounds)

    def read(self, after: int) -> tuple[list[tuple], int | None]:
        """The rows after location id ``after``; the last id read or None."""
        try:
            return retry.call(self.database, lambda: self._read(after),
                              'reading locations', self.should_stop,
                              self.budget)
        except db_exceptions.Forbidden as exc:
            raise writing.refused(exc, 'reading locations') from exc

    def _read(self, after):
        with self.database.reader() as conn:
            if self._statement is None:
                self._statement = db_scan.BatchReader(
                    conn.dialect, *self.shard_bounds,
                    dead=db_scan.dead_image_ids(conn, DEAD_IN_MEMORY))
            return self._statement.read(conn, after, self.batch_size)

    def read_one(self, location_id: int) -> db_scan.Row | None:
        """One location, whatever its size (``None``: gone)."""
        def read():
            with self.database.reader() as conn:
                return db_scan.read_one(conn, location_id)
        return retry.call(self.database, read, 'reading a location',
                          self.should_stop, self.budget)

    def reads_beside_writes(self) -> bool:
        """Whether a read may run beside a write transaction.

        On SQLite only in WAL mode (the project's own database): with a
        rollback journal a reader blocks the writer's commit.
        """
        if self.database.engine.dialect.name != 'sqlite':
            return True
        with self.database.reader() as conn:
            mode = conn.exec_driver_sql('PRAGMA journal_mode').scalar()
        return str(mode).lower() == 'wal'


def batches(next_batch: Callable[[int], object], prefetch: bool,
            stopped: Callable[[], bool], aborted: Callable[[], bool]
            ) -> Iterator:
    """The batches in order, each read and decided by ``next_batch``.

    With ``prefetch``, batch N+1 is read and decided in a second thread
    while batch N is written by the caller.  Rows past N are not touched
    by N's write, and a row changed between that read and its write is
    merged again (compare-and-swap), so reading early never writes a
    stale value.
    """
    pending = None
    try:
        batch = next_batch(0)
        while batch is not None:
            if prefetch:
                pending = _read_ahead(next_batch, batch.last_id)
            yield batch
            if stopped():
                return
            if pending is None:
                batch = next_batch(batch.last_id)
            else:
                batch, pending = pending.result(), None
    finally:
        # Stopped between batches: let the read in flight end (it is
        # short), so no transaction outlives the run.  Aborted: don't.
        if pending is not None and not aborted():
            concurrent.futures.wait([pending])
