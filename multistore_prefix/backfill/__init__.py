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


"""Backfill: give every legacy location its store, in bulk, on a live DB.

Live locations are read in primary-key order (:mod:`.reading`), decided
by :mod:`multistore_prefix.deciding` as in the glance-api filter, and a
batch is written in one transaction of compare-and-swap updates
(:mod:`.writing`); a row that cannot be read, parsed, resolved or written
is reported (:mod:`.report`) and left as it is, and the run goes on.  An
interruption loses at most the batch in flight, whole: nothing is ever
half-written.  :mod:`.revert` undoes a run.
"""

import logging
import time
from typing import Iterator

from multistore_prefix.backfill import reading
from multistore_prefix.backfill.reading import Shard
from multistore_prefix.backfill import report as report_mod
from multistore_prefix.backfill import writing
from multistore_prefix.db import batches
from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import retry
from multistore_prefix.db import scan as db_scan
from multistore_prefix import deciding
from multistore_prefix import location_map as lmap
from multistore_prefix import masking
from multistore_prefix import metadata as metadata_text
from multistore_prefix import resolver as resolver_mod

LOG = logging.getLogger(__name__)

#: Locations read and written per transaction, by default.  Bigger
#: batches pay the per-statement and per-commit costs less often (1000 ->
#: 5000 is 15-35% faster on PostgreSQL and MariaDB); a batch is at most a
#: few tens of megabytes (texts past ``LARGE_TEXT`` are read one by one),
#: and the most an interruption can take back.
BATCH_SIZE = 5000

BackfillError = writing.BackfillError


class Job:
    """A run over a database, a batch at a time, that a signal may stop.

    Its report is written whole, the counts and then each section's rows
    (spooled on disk, so memory stays flat whatever the table size).

    :ivar sections: the report's lists of rows, by key (one given as
        ``None`` is not recorded).
    :ivar progress: called with the number of rows of each batch done.
    """

    def __init__(self, database: db_engine.Database, report,
                 sections: dict[str, report_mod.Spool | None]):
        self.database = database
        self.dry_run = report.dry_run
        self.report = report
        self.sections = {key: rows for key, rows in sections.items()
                         if rows is not None}
        self.progress = lambda done: None
        self._stop = self._aborted = False

    def stop(self, grace: float | None = None) -> None:
        """Finish the batch in flight, then stop (a signal handler's job).

        The database's waits may still take ``grace`` seconds.
        """
        self._stop = True
        if grace is not None:
            self.database.watchdog.hurry(grace)

    def abort(self, grace: float | None = None) -> None:
        """Stop now: the transaction in flight rolls back whole.

        A signal handler's job, before it raises KeyboardInterrupt.  A
        driver may turn that interrupt into a lost connection (PyMySQL
        closes its socket), which would be retried; retries check this
        first, so they stop instead.  ``grace=0`` cuts the connection now.
        """
        self._aborted = True
        self.stop(grace)

    def _stopping(self) -> bool:
        return self._stop

    def _run(self, steps: Iterator[int]):
        """Work through ``steps`` (each yields its batch's size once done).

        Until done, stopped or interrupted; the report says which.
        """
        started = time.monotonic()
        try:
            for done in steps:
                self.progress(done)
                if self._stop:
                    break
        except (KeyboardInterrupt, retry.Stopped):
            self.report.interrupted = True
        except Exception as exc:
            # The database lost for good, or a bug: the caller says so;
            # the report (written whichever way the run ends) says the
            # run did not finish.
            self.report.failed = masking.mask_error(exc)
            raise
        finally:
            steps.close()
            self.report.elapsed = time.monotonic() - started
        self.report.interrupted |= self._stop
        return self.report

    def write_report(self, path: str) -> None:
        report_mod.write(path, self.report, self.sections.items())

    def close(self) -> None:
        for rows in self.sections.values():
            rows.close()


class Backfill(Job):
    """One backfill run over a database, recording what it does.

    Each row recorded is counted, and every URL and detail masked, on its
    way into the report.

    :ivar prefetch: read the next batch while one is written.
    :ivar changes: the changes for the report, or ``None``.
    """

    def __init__(self, database: db_engine.Database,
                 location_map: lmap.LocationMap, *,
                 batch_size: int = BATCH_SIZE, dry_run: bool = False,
                 shard: Shard = Shard(),
                 record_changes: bool = False,
                 fix_wrong_stores: bool = False,
                 replace_invalid_stores: bool = False,
                 strip_s3_credentials: bool = False,
                 cipher=None,
                 lookups=None):
        """Prepare a run.

        The rule options are the :class:`~multistore_prefix.deciding.
        Decider`'s and its resolver's.

        :param lookups: a :class:`~multistore_prefix.lookups.
            BackendLookups` for the URLs no prefix owns (legacy
            ``cinder://<volume>``), or ``None``: prefixes only.
        :param record_changes: keep every change for the report (a dry
            run always does: saying what would change is its point).
        """
        if batch_size < 1:
            raise ValueError('--batch-size must be at least 1')
        self.unresolved_rows = report_mod.Spool()
        self.wrong_rows = report_mod.Spool()
        self.changes = (report_mod.Spool() if record_changes or dry_run
                        else None)
        super().__init__(database, report_mod.Report(
            dry_run=dry_run, shard=str(shard)), {
            'unresolved_locations': self.unresolved_rows,
            'wrong_store_locations': self.wrong_rows,
            ('would_change' if dry_run else 'changed'): self.changes})
        self.prefetch = True
        resolver = resolver_mod.Resolver(
            location_map, replace_invalid_stores=replace_invalid_stores)
        self.decider = deciding.Decider(
            resolver, fix_wrong_stores=fix_wrong_stores, lookups=lookups,
            text_limit=None if dry_run else self._text_limit,
            strip_s3_credentials=strip_s3_credentials, cipher=cipher)
        # One outage met by the read-ahead and a write is one fault.
        budget = retry.Budget()
        self.reader = reading.Reader(database, batch_size, shard.bounds(),
                                     self._stopping, budget)
        self.writer = writing.Writer(database, self.decider, self._stopping,
                                     self._unconfirmed, budget)

    def count(self) -> int:
        """How many live locations this run will scan (for progress)."""
        return self.reader.count()

    def reads_beside_writes(self) -> bool:
        return self.reader.reads_beside_writes()

    def run(self) -> report_mod.Report:
        """Scan, decide and write until done, stopped or interrupted."""
        try:
            return self._run(self._batches())
        finally:
            self.report.slowest_write = self.database.watchdog.slowest.get(
                'a write', 0.0)

    def _text_limit(self) -> int | None:
        with self.database.reader() as conn:
            return db_scan.metadata_limit(conn)

    def _batches(self) -> Iterator[int]:
        decided = reading.batches(
            self._next_batch, self.prefetch and self.reads_beside_writes(),
            self._stopping, lambda: self._aborted)
        try:
            for batch in decided:
                self._process(batch)
                yield batch.scanned
        finally:
            decided.close()

    def _unconfirmed(self, in_doubt: list[writing.Outcome]) -> None:
        """Writes whose commit may have landed, as the run ends."""
        for _, write, _, _ in in_doubt:
            self.changed(write, unconfirmed=True)

    def _next_batch(self, after: int) -> deciding.Batch | None:
        if self._aborted:
            raise KeyboardInterrupt
        rows, last_id = self.reader.read(after)
        if last_id is None:
            return None
        return self.decider.classify(rows, last_id)

    def _process(self, batch: deciding.Batch) -> None:
        self.report.scanned += batch.scanned
        if self.decider.cipher is not None:
            # A key that decrypts nothing is the wrong key: said at once.
            self.decider.cipher.check()
        self._apply(batch)
        for location_id in batch.large:
            # Too long to read with its batch: read, decided, written alone.
            row = self.reader.read_one(location_id)
            if row is not None:
                self._apply(self.decider.alone(*row))

    def _apply(self, batch: deciding.Batch) -> None:
        """Count and list what a batch holds, and write it."""
        self.decider.ask_backends(batch)
        self.report.already_set += batch.already_set
        for row in batch.wrong:
            self.wrong(*row)
        for row in batch.unresolved:
            self.unresolved(*row[:5])
        rewrites = batch.rewrites
        if self.dry_run:
            for change in batch.writes + rewrites:
                self.changed(change, digests=False)
            return
        for writes in batches.transactions(self.database.engine.dialect.name,
                                           batch.writes):
            # Counted as each commits: an aborted batch reports the
            # transactions it did commit.
            if self._aborted:
                raise KeyboardInterrupt
            written = 0
            for outcome in self.writer.write(writes):
                if outcome[0] is not writing.UPDATED or self.changes:
                    self._outcome(*outcome)
                else:  # the common case, counted in bulk
                    written += 1
            self.report.updated += written
        if self._aborted:
            raise KeyboardInterrupt
        for outcome, rewrite, reason, detail in self.writer.rewrite(rewrites):
            if outcome == writing.UPDATED:
                self.changed(rewrite)
            elif outcome == writing.UNRESOLVED:
                self.unresolved(*rewrite[:3], reason, detail)
            else:
                self.left(rewrite.location_id, rewrite.image_id, detail)

    def _outcome(self, outcome, write, reason, detail) -> None:
        if outcome != writing.UPDATED and reason != writing.WRITE_REFUSED:
            # Another writer changed the row between read and write.
            self.report.conflicts_retried += 1
        if outcome in (writing.FIXED, writing.WRONG):
            # A wrong store written since this run read the row.
            self.wrong(*(write if outcome == writing.WRONG else (
                *write[:3], write.fixing, write.store)))
        if outcome in writing.WRITTEN:
            self.changed(write)
        elif outcome == writing.ALREADY_SET:
            self.report.already_set += 1
        elif outcome == writing.UNRESOLVED:
            self.unresolved(*write[:3], reason, detail)
        elif outcome == writing.ERROR:
            self.left(write.location_id, write.image_id, detail)

    def wrong(self, location_id, image_id, url, named, owner) -> None:
        self.report.wrong_store += 1
        self.wrong_rows.add({
            'image_id': image_id, 'location_id': location_id,
            'url': masking.mask_url(url), 'store': named, 'owner': owner})

    def unresolved(self, location_id, image_id, url, reason, detail) -> None:
        self.report.unresolved[reason] += 1
        self.unresolved_rows.add({
            'image_id': image_id, 'location_id': location_id,
            'url': masking.mask_url(url), 'reason': reason,
            'detail': masking.mask_text(detail)})

    def left(self, location_id, image_id, detail) -> None:
        """A row left for a rerun (it kept changing)."""
        self.report.errors += 1
        LOG.warning('location %s of image %s: %s; left for a rerun',
                    location_id, image_id, masking.mask_text(detail))

    def changed(self, row, digests=True, unconfirmed=False) -> None:
        """A Write or a Rewrite made: counted, and kept for ``--revert``.

        A write's ``digests`` (of the text before and the text written)
        let a revert check that the row still holds exactly what this run
        wrote, and that undoing it gives back exactly what was there.
        """
        if unconfirmed:
            self.report.unconfirmed += 1
        else:
            self.report.updated += 1
        if self.changes is None:
            return
        change = {'image_id': row.image_id, 'location_id': row.location_id,
                  'url': masking.mask_url(row.url), 'store': row.store,
                  'previous_store': row.previous}
        new_url = getattr(row, 'new_url', None)
        if new_url and new_url != row.url:
            change['new_url'] = masking.mask_url(new_url)
        if digests and hasattr(row, 'new_text'):
            change['previous_sha256'] = metadata_text.digest(row.text)
            change['sha256'] = metadata_text.digest(row.new_text)
        if unconfirmed:
            change['unconfirmed'] = True
        self.changes.add(change)
