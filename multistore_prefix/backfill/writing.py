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


"""Writing a batch: compare-and-swap, exact about whose write landed.

The fast path is one ``UPDATE`` per chunk: when every row still held what
was read, every row changed, and they are all this run's.  When some did
not (another writer, another run), that transaction is rolled back and
the batch is written the exact way: its rows are locked in id order and
read back, those that still hold what was read are written as decided,
and the others are decided again on their fresh text, so a concurrent key
is kept, a concurrent store is respected, and the run counts as its own
exactly the rows its writes changed.

A connection lost while a write was in flight leaves its outcome in doubt
(the commit may have landed, only its answer lost): the rows are read
back the exact way, and a row that holds exactly what the lost attempt
wrote counts as this run's change.  A write that ends before it could
read them back (stopped, or the database lost past the retries) hands
them to its ``unconfirmed`` callback.  The writes and the reads beside
them share one :class:`~multistore_prefix.db.retry.Budget` of retries.

A row the database refuses (MySQL: metadata longer than its column) is
found by halving the batch and reported; the rest is written.  A
backend's answer (a new URL and a store) is written row by row,
compare-and-swap on both, with the same retries.
"""

from typing import Callable, NamedTuple

from oslo_db import exception as db_exc
from oslo_utils import timeutils

from multistore_prefix.db import api as db_api
from multistore_prefix.db import batches
from multistore_prefix.db import exceptions as db_exceptions
from multistore_prefix.db import retry
from multistore_prefix import deciding
from multistore_prefix import exceptions
from multistore_prefix import location_map as lmap
from multistore_prefix import masking

#: What became of a write.
UPDATED = 'updated'          # written as decided
MERGED = 'merged'            # the row had changed: written on fresh text
ALREADY_SET = 'already_set'  # the row had changed: it names a store now
WRONG = 'wrong_store'        # ... one that certainly does not hold it
FIXED = 'fixed'              # ... such a one, corrected (fixing them)
GONE = 'gone'                # the row is no longer live
UNRESOLVED = 'unresolved'    # a reason and a detail say why not
ERROR = 'error'              # left for a rerun: it kept changing

#: Outcomes whose write changes the row (in doubt when its answer is lost).
WRITTEN = (UPDATED, MERGED, FIXED)
#: The database refused the row (see the module docstring).
WRITE_REFUSED = 'write-refused'
#: Exact passes over a batch before its still-changing rows are left.
EXACT_ATTEMPTS = 3


class Outcome(NamedTuple):
    """What became of one write.

    :ivar write: the :class:`~multistore_prefix.deciding.Write` (for
        :data:`MERGED` and :data:`FIXED`, the one made on the fresh text;
        for :data:`WRONG`, the :class:`~multistore_prefix.deciding.Wrong`
        row), or the :class:`~multistore_prefix.deciding.Rewrite`.
    :ivar reason: with :data:`UNRESOLVED`, why.
    """

    outcome: str
    write: tuple
    reason: str | None = None
    detail: str | None = None


class BackfillError(exceptions.MultistorePrefixError):
    """The backfill cannot go on; completed batches are kept."""


def refused(exc: db_exceptions.Forbidden, doing: str) -> BackfillError:
    """An operator's reason for a refusal no retry will cure."""
    return BackfillError(f'the database refused {doing}: {exc.reason}; run '
                         f'with a database user that may read images and '
                         f'update image_locations')


class _RowsChanged(Exception):
    """Some rows did not hold what was read: write the batch exactly."""


class Writer:
    """Writes decided batches.

    :ivar unconfirmed: called with the outcomes a write would have had
        when it ends with rows whose commit may have landed.
    """

    def __init__(self, database, decider: deciding.Decider, should_stop,
                 unconfirmed: Callable[[list[Outcome]], None],
                 budget: retry.Budget | None = None):
        self.database = database
        self.decider = decider
        self.should_stop = should_stop
        self.unconfirmed = unconfirmed
        self.budget = budget or retry.Budget()
        # The outcomes of the write in flight; after a lost connection,
        # those whose commit may have landed, by location id.
        self._in_flight: list[Outcome] = []
        self._in_doubt: dict[int, Outcome] = {}

    def write(self, writes: list) -> list[Outcome]:
        return self._whole(self._write, writes)

    def rewrite(self, rewrites: list) -> list[Outcome]:
        """URL and store in one compare-and-swap each."""
        return self._whole(lambda rows: self._retried(self._rewrite, rows),
                           rewrites)

    def _whole(self, work, rows) -> list[Outcome]:
        if not rows:
            return []
        try:
            return work(rows)
        except db_exceptions.Forbidden as exc:
            raise refused(exc, 'writing a batch') from exc
        finally:
            self._in_doubt.clear()

    def _write(self, writes):
        try:
            return self._retried(self._fast, writes)
        except _RowsChanged:
            pass
        except db_exc.DBDataError as exc:
            return self._halve(writes, exc)
        try:
            return self._retried(self._exact, writes)
        except db_exc.DBDataError as exc:
            return self._halve(writes, exc)

    def _halve(self, writes, exc) -> list[tuple]:
        """Find the rows the database refuses; write the others."""
        if len(writes) == 1:
            return [Outcome(UNRESOLVED, writes[0], WRITE_REFUSED,
                            masking.mask_error(exc))]
        half = len(writes) // 2
        return self._write(writes[:half]) + self._write(writes[half:])

    def _retried(self, work, writes):
        def attempt():
            try:
                return work(writes)
            except db_exc.DBConnectionError:
                self._in_doubt.update((o.write.location_id, o)
                                      for o in self._in_flight
                                      if o.outcome in WRITTEN)
                raise
            finally:
                self._in_flight = []
        try:
            return retry.call(self.database, attempt, 'writing a batch',
                              self.should_stop, self.budget)
        except BaseException as exc:
            # Stopped while retrying, at once by a second stop signal, or
            # the database lost for good: the write in doubt is reported
            # as such whichever way the run ends.  (The write goes on, with
            # the doubt kept, the exact way or by halving.)
            if self._in_doubt and not isinstance(
                    exc, (_RowsChanged, db_exc.DBDataError)):
                self.unconfirmed(list(self._in_doubt.values()))
                self._in_doubt.clear()
            raise

    def _fast(self, writes) -> list[tuple]:
        if self._in_doubt and self._in_doubt.keys() & {
                w.location_id for w in writes}:
            raise _RowsChanged()  # read back what landed, the exact way
        outcomes = self._in_flight = [Outcome(UPDATED, w) for w in writes]
        with self.database.writer() as conn:
            changed = batches.set_metadata(conn, writes, timeutils.utcnow())
            if changed != len(writes):
                raise _RowsChanged()  # rolls this transaction back
        return outcomes

    def _exact(self, writes) -> list[tuple]:
        for _attempt in range(EXACT_ATTEMPTS):
            try:
                with self.database.writer() as conn:
                    return self._exact_once(conn, writes)
            except db_exceptions.Conflict:
                continue
        return [(ERROR, w, None, 'the row kept changing') for w in writes]

    def _exact_once(self, conn, writes) -> list[tuple]:
        current = batches.lock_current(
            conn, [w.location_id for w in writes])
        outcomes = self._in_flight = []
        final = []
        for write in writes:
            row = current.get(write.location_id)
            landed = self._in_doubt.get(write.location_id)
            if row is None or not row.live:
                outcomes.append(Outcome(GONE, write))
            elif (landed is not None and row.text == landed.write.new_text
                    and row.url == landed.write.url):
                outcomes.append(landed)  # a lost answer: the write landed
            elif row.text == write.text and row.url == write.url:
                outcomes.append(Outcome(UPDATED, write))
                final.append(write)
            else:
                outcome = self._again(write, row)
                outcomes.append(outcome)
                if outcome.outcome in (MERGED, FIXED):
                    final.append(outcome.write)
        batches.set_metadata(conn, final, timeutils.utcnow(), locked=True)
        return outcomes

    def _again(self, write, row) -> tuple:
        """Decide a row changed since it was read, on its fresh text."""
        batch = self.decider.alone(write.location_id, write.image_id,
                                   row.url, row.text)
        # Judged as on a first read: a store written meanwhile (Glance's
        # first-match rule) that is certainly wrong is one, and is fixed
        # when wrong stores are.
        new_wrong = batch.wrong and batch.wrong[0].named != write.fixing
        if batch.writes:
            return Outcome(FIXED if new_wrong else MERGED, batch.writes[0])
        if batch.unresolved:
            unresolved = batch.unresolved[0]
            return Outcome(UNRESOLVED, write, unresolved.reason,
                           unresolved.detail)
        if new_wrong:
            return Outcome(WRONG, batch.wrong[0])
        if batch.already_set or batch.wrong:
            return Outcome(ALREADY_SET, write)
        return Outcome(ERROR, write, None, 'it changed into a form to read '
                                           'again on the next run')

    def _rewrite(self, rewrites) -> list[tuple]:
        now = timeutils.utcnow()
        outcomes = self._in_flight = []
        # After a lost answer, a row whose rewrite landed already holds
        # what is wanted: location_update finds nothing to change, and it
        # counts as this run's.
        with self.database.writer() as conn:
            for rewrite in rewrites:
                try:
                    db_api.rewrite_location(conn, rewrite, now)
                    outcomes.append(Outcome(UPDATED, rewrite))
                except db_exceptions.Duplicate as exc:
                    outcomes.append(Outcome(UNRESOLVED, rewrite,
                                            lmap.CONFLICT, str(exc)))
                except db_exceptions.Rejected as exc:
                    outcomes.append(Outcome(UNRESOLVED, rewrite,
                                            WRITE_REFUSED, exc.reason))
                except db_exceptions.Conflict as exc:
                    outcomes.append(Outcome(ERROR, rewrite, None, str(exc)))
        return outcomes
