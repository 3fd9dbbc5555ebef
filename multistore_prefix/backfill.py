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

The job streams live locations in primary-key order (keyset pagination, so
memory stays flat and a rerun simply starts over), resolves each one with
the location map, and writes a batch in one transaction of compare-and-swap
updates: ``meta_data`` and ``updated_at`` of that row change, and only if
the row still holds the exact text that was read.  The next batch is read
and resolved in a second thread while one is written, so the database and
this process work at the same time.  A row someone changed
meanwhile is merged again on fresh data (key by key, as the distinction
layer does), never overwritten.  Interrupting it at any moment loses at
most the batch in flight, whole: nothing is ever half-written.
"""

import collections
import dataclasses
import datetime
import json
import logging
import operator
import os
import tempfile
import threading
import time
from typing import Callable, Iterator

from oslo_db import api as oslo_db_api
import sqlalchemy as sa

from multistore_prefix.db import api as db_api
from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import exceptions as db_exceptions
from multistore_prefix.db import models
from multistore_prefix import exceptions
from multistore_prefix import location_map as lmap
from multistore_prefix import resolver as resolver_mod
from multistore_prefix import urls

LOG = logging.getLogger(__name__)

_L = models.image_locations
_I = models.images

#: Locations read and written per transaction, by default.  Bigger
#: batches pay the per-statement and per-commit costs less often (1000 ->
#: 5000 is 15-35% faster on PostgreSQL and MariaDB); a batch is a few
#: hundred kilobytes, and the most an interruption can take back.
BATCH_SIZE = 5000
#: A deadlock (Galera's certification failures look like one) or a lost
#: connection is retried this many times, with growing pauses.
DB_RETRIES = 6

BAD_METADATA = resolver_mod.BAD_METADATA
_HEX_SPACE = 16 ** 8
_CACHE_SIZE = 4096
_UNDECIDED = object()
#: With at most this many deleted images, live locations are read with
#: ``image_id NOT IN (deleted images)`` (the list is built once per read),
#: else with a join to images (a lookup per location).
NOT_IN_LIMIT = 1000
#: Ids per compare-and-swap UPDATE (SQLite's old limit is 999 parameters).
IDS_PER_UPDATE = 512


class _Named(collections.namedtuple('_Named', 'store metadata')):
    """Metadata that names an enabled store."""


class BackfillError(exceptions.MultistorePrefixError):
    """The backfill cannot go on; completed batches are kept."""


@dataclasses.dataclass(frozen=True)
class Shard:
    """One worker's share of the images: ``K/N``, K from 1 to N.

    Image ids are split into N ranges of their text, which partition every
    possible id (UUIDs spread evenly), so N workers cover each location
    exactly once.

    :ivar index: K, from 1.
    :ivar count: N.
    """

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> 'Shard':
        """``'K/N'`` -> Shard; a clear ValueError otherwise."""
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


@dataclasses.dataclass
class Report:
    """What a backfill run did.

    :ivar scanned: live locations read.
    :ivar updated: locations given their store (``would_update`` on a dry
        run).
    :ivar already_set: locations that already named an enabled store.
    :ivar wrong_store: locations that name an enabled store whose prefixes
        do not cover their URL, while another store's do (Glance's
        first-match rule does this to ``.../images2`` when ``.../images``
        is a store).  Left as they are unless ``fix_wrong_stores``; then
        they are among ``updated`` too.
    :ivar unresolved: locations that need a store and got none, by reason.
    :ivar conflicts_retried: rows changed by someone else between read and
        write, merged again on fresh data.
    :ivar errors: rows that could not be written (see the log).
    """

    dry_run: bool = False
    shard: str = '1/1'
    scanned: int = 0
    updated: int = 0
    already_set: int = 0
    wrong_store: int = 0
    unresolved: collections.Counter = dataclasses.field(
        default_factory=collections.Counter)
    conflicts_retried: int = 0
    errors: int = 0
    elapsed: float = 0.0
    interrupted: bool = False

    @property
    def rate(self) -> float:
        """Locations scanned per second."""
        return self.scanned / self.elapsed if self.elapsed else 0.0

    def summary(self) -> list[tuple[str, object]]:
        """(field, value) rows for the summary table."""
        rows = [('scanned', self.scanned),
                ('would_update' if self.dry_run else 'updated', self.updated),
                ('already_set', self.already_set),
                ('wrong_store', self.wrong_store),
                ('unresolved', sum(self.unresolved.values()))]
        rows += [(f'unresolved: {reason}', count)
                 for reason, count in sorted(self.unresolved.items())]
        rows += [('conflicts_retried', self.conflicts_retried),
                 ('errors', self.errors),
                 ('elapsed_seconds', round(self.elapsed, 3)),
                 ('rate_per_second', round(self.rate, 1))]
        if self.interrupted:
            rows.append(('interrupted', True))
        return rows

    def as_dict(self) -> dict:
        return {'dry_run': self.dry_run, 'shard': self.shard,
                'scanned': self.scanned,
                ('would_update' if self.dry_run else 'updated'): self.updated,
                'already_set': self.already_set,
                'wrong_store': self.wrong_store,
                'unresolved': dict(sorted(self.unresolved.items())),
                'conflicts_retried': self.conflicts_retried,
                'errors': self.errors,
                'elapsed_seconds': round(self.elapsed, 3),
                'rate_per_second': round(self.rate, 1),
                'interrupted': self.interrupted}


class _Spool:
    """Rows for the report, kept on disk so memory stays flat."""

    def __init__(self):
        self._file = tempfile.TemporaryFile('w+', encoding='utf-8')
        self.count = 0

    def add(self, row: dict) -> None:
        self._file.write(json.dumps(row) + '\n')
        self.count += 1

    def __iter__(self) -> Iterator[dict]:
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            yield json.loads(line)

    def close(self) -> None:
        self._file.close()


@dataclasses.dataclass
class _Batch:
    """One batch, read and resolved; nothing reported or written yet.

    :ivar scanned: locations read.
    :ivar last_id: the highest location id read (the next batch's start).
    :ivar already_set: locations that name an enabled store.
    :ivar wrong: (location id, image id, URL, store named, owner) of the
        locations that name the wrong enabled store.
    :ivar unresolved: (location id, image id, URL, reason, detail).
    :ivar writes: (location id, image id, URL, old text, new text, store).
    :ivar asked: (location id, image id, URL, old text, metadata) for the
        backends' lookups.
    """

    scanned: int
    last_id: int
    already_set: int = 0
    wrong: list = dataclasses.field(default_factory=list)
    unresolved: list = dataclasses.field(default_factory=list)
    writes: list = dataclasses.field(default_factory=list)
    asked: list = dataclasses.field(default_factory=list)


class _Prefetch:
    """The next batch, read and resolved in a daemon thread.

    A daemon thread, so an interrupted run never waits for a read: reads
    change nothing, and one abandoned mid-way is simply closed.
    """

    def __init__(self, target, *args):
        self._result = self._error = None
        self._thread = threading.Thread(target=self._run,
                                        args=(target, *args), daemon=True,
                                        name='backfill-read')
        self._thread.start()

    def _run(self, target, *args):
        try:
            self._result = target(*args)
        except BaseException as exc:  # handed to the main thread
            self._error = exc

    def result(self):
        """The batch (``None``: no more); the thread's error is raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result

    def wait(self) -> None:
        """Let the thread end; its result and error are dropped."""
        self._thread.join()


class Backfill:
    """One backfill run over a database.

    :ivar database: the :class:`~multistore_prefix.db.engine.Database`.
    :ivar location_map: the stores.
    :ivar batch_size: locations per read and per write transaction.
    :ivar dry_run: compute everything, write nothing.
    :ivar shard: this worker's share of the images.
    """

    def __init__(self, database: db_engine.Database,
                 location_map: lmap.LocationMap, *,
                 batch_size: int = BATCH_SIZE, dry_run: bool = False,
                 shard: Shard = Shard(),
                 record_changes: bool = False,
                 fix_wrong_stores: bool = False,
                 lookups=None,
                 progress: Callable[[int], None] | None = None):
        """Prepare a run.

        :param lookups: a :class:`~multistore_prefix.lookups.
            BackendLookups` for the URLs no prefix owns (legacy
            ``cinder://<volume>``), or ``None``: prefixes only.
        :param record_changes: keep every change for the report (a dry
            run always does: saying what would change is its point).
        :param fix_wrong_stores: also give the owning store to locations
            that name another enabled store which does not cover their URL
            (by default they are only counted and listed).
        :param progress: called with the number of locations of each batch
            once it is done.
        """
        if batch_size < 1:
            raise ValueError('--batch-size must be at least 1')
        self.database = database
        self.location_map = location_map
        self.resolver = resolver_mod.Resolver(location_map)
        self.lookups = lookups or None
        self.batch_size = batch_size
        self.dry_run = dry_run
        self.shard = shard
        self.progress = progress or (lambda done: None)
        self.report = Report(dry_run=dry_run, shard=str(shard))
        self.fix_wrong_stores = fix_wrong_stores
        self.unresolved_rows = _Spool()
        self.wrong_rows = _Spool()
        self.changes = _Spool() if record_changes or dry_run else None
        self._stop = False
        self._aborted = False
        # Legacy rows repeat a handful of metadata texts ('{}'): each is
        # decided once.  Bounded, so memory stays flat.
        self._decided: dict[str, object] = {}
        self._new_text: dict[tuple[str, str], str] = {}
        self._sql: dict[str, tuple] = {}
        self._updates: dict[int, object] = {}
        self._few_deleted = False
        #: Read the next batch while this one is written (see run()).
        self.prefetch = True
        self._reads_beside_writes = None

    # -- the run ----------------------------------------------------------

    def count(self) -> int:
        """How many live locations this run will scan (for progress)."""
        query = sa.select(sa.func.count()).select_from(
            _L.join(_I, _I.c.id == _L.c.image_id)).where(*self._live())
        with self.database.reader() as conn:
            return conn.execute(query).scalar_one()

    def stop(self) -> None:
        """Finish the batch in flight, then stop (a signal handler's job)."""
        self._stop = True

    def abort(self) -> None:
        """Stop now: the transaction in flight rolls back whole.

        A signal handler's job, before it raises KeyboardInterrupt.  A
        driver may turn that interrupt into a lost connection (PyMySQL
        closes its socket), which oslo.db would retry; every step checks
        this flag first, so the retry stops instead.
        """
        self._stop = self._aborted = True

    def _check_aborted(self) -> None:
        if self._aborted:
            raise KeyboardInterrupt

    def run(self) -> Report:
        """Scan, resolve and write until done, stopped or interrupted."""
        started = time.monotonic()
        self._few_deleted = self._count_deleted_images() <= NOT_IN_LIMIT
        batches = self._batches()
        try:
            for batch in batches:
                self._process(batch)
                self.progress(batch.scanned)
                if self._stop:
                    break
        except KeyboardInterrupt:
            self.report.interrupted = True
        finally:
            batches.close()
            self.report.elapsed = time.monotonic() - started
        if self._stop:
            self.report.interrupted = True
        return self.report

    def _batches(self) -> Iterator[_Batch]:
        """The batches in order, each read and resolved.

        With :attr:`prefetch`, batch N+1 is read and resolved in a second
        thread while batch N is written here: the database's work and this
        process's overlap.  Rows past N are not touched by N's write, and
        a row changed between that read and its write is merged again
        (compare-and-swap), so reading early never writes a stale value.
        """
        prefetch = self.prefetch and self.reads_beside_writes()
        pending = None
        try:
            batch = self._next_batch(0)
            while batch is not None:
                if prefetch:
                    pending = _Prefetch(self._next_batch, batch.last_id)
                yield batch
                if self._stop:
                    return
                if pending is None:
                    batch = self._next_batch(batch.last_id)
                else:
                    batch, pending = pending.result(), None
        finally:
            # Stopped between batches: let the read in flight end (it is
            # short), so no transaction outlives the run.  Aborted: don't.
            if pending is not None and not self._aborted:
                pending.wait()

    def reads_beside_writes(self) -> bool:
        """Whether a read may run beside a write transaction.

        On SQLite only in WAL mode (the project's own database): with a
        rollback journal a reader blocks the writer's commit.
        """
        if self._reads_beside_writes is None:
            if self.database.engine.dialect.name != 'sqlite':
                self._reads_beside_writes = True
            else:
                with self.database.reader() as conn:
                    mode = conn.exec_driver_sql(
                        'PRAGMA journal_mode').scalar()
                self._reads_beside_writes = str(mode).lower() == 'wal'
        return self._reads_beside_writes

    def _next_batch(self, after: int) -> _Batch | None:
        rows = self._read_batch(after)
        return self._classify(rows) if rows else None

    def write_report(self, path: str) -> None:
        """The JSON report: the counts, unresolved locations and changes."""
        tmp = f'{path}.tmp{os.getpid()}'
        with open(tmp, 'w', encoding='utf-8') as out:
            body = json.dumps(self.report.as_dict(), indent=2)
            out.write(body[:-2] + ',\n  "unresolved_locations": [')
            _write_rows(out, self.unresolved_rows)
            out.write('],\n  "wrong_store_locations": [')
            _write_rows(out, self.wrong_rows)
            if self.changes is not None:
                key = 'would_change' if self.dry_run else 'changed'
                out.write(f'],\n  "{key}": [')
                _write_rows(out, self.changes)
            out.write(']\n}\n')
        os.replace(tmp, path)  # never a half-written report

    def close(self) -> None:
        self.unresolved_rows.close()
        self.wrong_rows.close()
        if self.changes is not None:
            self.changes.close()

    # -- reading ----------------------------------------------------------

    def _count_deleted_images(self) -> int:
        with self.database.reader() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(
                _I).where(_I.c.deleted == sa.true())).scalar_one()

    def _live(self, join=True):
        where = [_L.c.deleted == sa.false(), _L.c.status == 'active']
        if join:
            where.append(_I.c.deleted == sa.false())
        else:
            where.append(_L.c.image_id.not_in(
                sa.select(_I.c.id).where(_I.c.deleted == sa.true())))
        low, high = self.shard.bounds()
        if low is not None:
            where.append(_L.c.image_id >= low)
        if high is not None:
            where.append(_L.c.image_id < high)
        return where

    @oslo_db_api.wrap_db_retry(max_retries=DB_RETRIES, retry_on_deadlock=True,
                               retry_on_disconnect=True,
                               inc_retry_interval=True, max_retry_interval=8)
    def _read_batch(self, after: int) -> list[tuple]:
        self._check_aborted()
        # Few deleted images: one small list per read instead of an index
        # lookup per location (most of the read's cost on SQLite).
        join = not self._few_deleted
        name = 'read' if join else 'read-not-in'
        source = _L.join(_I, _I.c.id == _L.c.image_id) if join else _L
        where = self._live(join)
        query = (sa.select(_L.c.id, _L.c.image_id, _L.c.value, _L.c.meta_data)
                 .select_from(source)
                 .where(_L.c.id > sa.bindparam('b_after'), *where)
                 .order_by(_L.c.id).limit(sa.bindparam('b_limit')))
        try:
            with self.database.reader() as conn:
                return self._run_sql(conn, name, query,
                                     [{'b_after': after,
                                       'b_limit': self.batch_size}],
                                     fetch=True)
        except Exception as exc:
            _raise_if_final(exc, 'reading locations')
            raise

    def _run_sql(self, conn, name, statement, params, fetch=False):
        """Run a statement on the DBAPI cursor of ``conn``'s transaction.

        The statement is compiled once per run; rows and parameters skip
        SQLAlchemy's per-row work, which is most of the cost otherwise.
        """
        compiled = self._sql.get(name)
        if compiled is None:
            sql = statement.compile(dialect=conn.dialect)
            names = sql.positiontup if sql.positional else None
            literal = {key: value.effective_value
                       for key, value in sql.binds.items()
                       if not key.startswith('b_')}
            compiled = self._sql[name] = (str(sql), names, literal)
        text, names, literal = compiled
        if literal:
            params = [{**literal, **p} for p in params]
        if names is not None:
            getter = operator.itemgetter(*names)
            params = [getter(p) for p in params]
            if len(names) == 1:
                params = [(p,) for p in params]
        cursor = conn.connection.cursor()
        try:
            if fetch:
                cursor.execute(text, params[0])
                return cursor.fetchall()
            if len(params) == 1:
                cursor.execute(text, params[0])
            else:
                cursor.executemany(text, params)
            return cursor.rowcount
        finally:
            cursor.close()

    # -- resolving --------------------------------------------------------

    def _decide(self, text):
        """What a metadata text needs.

        :returns: a sentence saying why it is bad, a :class:`_Named` when
            it names an enabled store, else the metadata (it needs a
            store).
        """
        decided = self._decided.get(text, _UNDECIDED)
        if decided is _UNDECIDED:
            metadata = _parse(text)
            if (metadata.__class__ is dict
                    and not self.resolver.needs_store(metadata)):
                metadata = _Named(metadata['store'], metadata)
            if len(self._decided) > _CACHE_SIZE:
                self._decided.clear()
            decided = self._decided[text] = metadata
        return decided

    def _with_store(self, text, metadata, store):
        key = (text, store)
        new = self._new_text.get(key)
        if new is None:
            if len(self._new_text) > _CACHE_SIZE:
                self._new_text.clear()
            new = self._new_text[key] = json.dumps({**metadata,
                                                    'store': store})
        return new

    def _named_or_bad(self, batch, location_id, image_id, url, text,
                      metadata) -> None:
        """Classify a location whose metadata names a store, or is bad."""
        if metadata.__class__ is not _Named:
            batch.unresolved.append((location_id, image_id, url,
                                     BAD_METADATA, metadata))
            return
        named = metadata.store
        owner = self.resolver.wrong_store(named, url)
        if owner is None:
            batch.already_set += 1
            return
        batch.wrong.append((location_id, image_id, url, named, owner))
        if self.fix_wrong_stores:
            batch.writes.append((location_id, image_id, url, text,
                                 self._with_store(text, metadata.metadata,
                                                  owner), owner))

    def _classify(self, rows: list[tuple]) -> _Batch:
        """Resolve a batch read; reports and writes nothing (a thread's)."""
        batch = _Batch(scanned=len(rows), last_id=rows[-1][0])
        resolve = self.location_map.resolve
        decide = self._decide
        writes, asked = batch.writes, batch.asked
        for location_id, image_id, url, text in rows:
            metadata = decide(text)
            if metadata.__class__ is not dict:  # named a store, or bad
                self._named_or_bad(batch, location_id, image_id, url, text,
                                   metadata)
                continue
            store = resolve(url) if url.__class__ is str else None
            if store is None:
                why = self.location_map.explain(url)
                if (why.reason == lmap.NO_PREFIX and self.lookups
                        and self.lookups.wants(url)):
                    asked.append((location_id, image_id, url, text,
                                  metadata))
                    continue
                batch.unresolved.append((location_id, image_id, url,
                                         why.reason or lmap.NO_PREFIX,
                                         why.detail))
                continue
            writes.append((location_id, image_id, url, text,
                           self._with_store(text, metadata, store), store))
        return batch

    def _process(self, batch: _Batch) -> None:
        """Report a resolved batch and write it."""
        report = self.report
        report.scanned += batch.scanned
        report.already_set += batch.already_set
        report.wrong_store += len(batch.wrong)
        for location_id, image_id, url, named, owner in batch.wrong:
            self.wrong_rows.add({
                'image_id': image_id, 'location_id': location_id,
                'url': urls.mask_url(url), 'store': named, 'owner': owner})
        for unresolved in batch.unresolved:
            self._unresolved(*unresolved)
        writes = batch.writes
        rewrites = self._ask_backends(batch.asked) if batch.asked else []
        if self.dry_run:
            report.updated += len(writes) + len(rewrites)
            for location_id, image_id, url, _, _, store in writes:
                self._changed(location_id, image_id, url, store)
            for location_id, image_id, url, _, _, store, new_url in rewrites:
                self._changed(location_id, image_id, url, store, new_url)
            return
        if writes:
            self._write_batch(writes)
        if rewrites:
            self._write_rewrites(rewrites)

    def _ask_backends(self, asked) -> list[tuple]:
        """The stores' backends' answers for URLs no prefix owns."""
        answers = self.lookups.resolve_many(row[2] for row in asked)
        rewrites = []
        for location_id, image_id, url, text, metadata in asked:
            answer = answers[url]
            if answer.store is None:
                self._unresolved(location_id, image_id, url, answer.reason,
                                 answer.detail)
                continue
            rewrites.append((location_id, image_id, url, text, metadata,
                             answer.store, answer.url or url))
        return rewrites

    def _unresolved(self, location_id, image_id, url, reason, detail):
        self.report.unresolved[reason] += 1
        self.unresolved_rows.add({
            'image_id': image_id, 'location_id': location_id,
            'url': urls.mask_url(url), 'reason': reason,
            'detail': urls.mask_text(detail)})

    def _changed(self, location_id, image_id, url, store, new_url=None):
        if self.changes is None:
            return
        change = {'image_id': image_id, 'location_id': location_id,
                  'url': urls.mask_url(url), 'store': store}
        if new_url and new_url != url:
            change['new_url'] = urls.mask_url(new_url)
        self.changes.add(change)

    # -- writing ----------------------------------------------------------

    @oslo_db_api.wrap_db_retry(max_retries=DB_RETRIES, retry_on_deadlock=True,
                               retry_on_disconnect=True,
                               inc_retry_interval=True, max_retry_interval=8)
    def _write_batch(self, writes: list[tuple]) -> None:
        """One transaction: a compare-and-swap UPDATE per location.

        Safe to run again after a lost connection: rows the first attempt
        did write no longer hold the old text, and are found written.
        """
        self._check_aborted()
        now = _utcnow()
        try:
            with self.database.writer() as conn:
                stamp = _bind(conn, _L.c.updated_at, now)
                count = self._cas_update(conn, writes, stamp)
                # A driver that cannot count an executemany is checked by
                # reading the batch back.
                lost = [] if count == len(writes) else self._lost_races(
                    conn, writes)
                retried = [self._retry(conn, write, now) for write in lost]
        except Exception as exc:
            _raise_if_final(exc, 'writing a batch')
            raise
        # Counted once committed: a retried transaction counts once.
        lost_ids = {w[0] for w in lost}
        self.report.updated += len(writes) - len(lost)
        for location_id, image_id, url, _, _, store in writes:
            if location_id not in lost_ids:
                self._changed(location_id, image_id, url, store)
        self.report.conflicts_retried += len(lost)
        for write, (outcome, detail) in zip(lost, retried):
            location_id, image_id, url, _, _, store = write
            if outcome == 'updated':
                self.report.updated += 1
                self._changed(location_id, image_id, url, store)
            elif outcome == 'already_set':
                self.report.already_set += 1
            elif outcome == BAD_METADATA:
                self._unresolved(location_id, image_id, url, BAD_METADATA,
                                 detail)
            elif outcome == 'error':
                self.report.errors += 1
                LOG.warning('location %s of image %s: %s; left for a rerun',
                            location_id, image_id, detail)

    @oslo_db_api.wrap_db_retry(max_retries=DB_RETRIES, retry_on_deadlock=True,
                               retry_on_disconnect=True,
                               inc_retry_interval=True, max_retry_interval=8)
    def _write_rewrites(self, rewrites: list[tuple]) -> None:
        """URL rewrites from the backends: one savepoint each.

        The URL and the store key change together, compare-and-swap on
        both; a row whose new URL another live location of the image holds
        already is reported, and the batch goes on.
        """
        self._check_aborted()
        now = _utcnow()
        outcomes = []
        try:
            with self.database.writer() as conn:
                for location_id, image_id, url, _, metadata, store, new_url \
                        in rewrites:
                    try:
                        with conn.begin_nested():
                            db_api.location_update(
                                conn, image_id, location_id, now,
                                metadata=(metadata,
                                          {**metadata, 'store': store}),
                                url=(url, new_url))
                        outcomes.append(('updated', ''))
                    except db_exceptions.Duplicate as exc:
                        outcomes.append((lmap.CONFLICT, str(exc)))
                    except db_exceptions.Conflict as exc:
                        outcomes.append(('error', str(exc)))
        except Exception as exc:
            _raise_if_final(exc, 'writing a batch')
            raise
        for rewrite, (outcome, detail) in zip(rewrites, outcomes):
            location_id, image_id, url, _, _, store, new_url = rewrite
            if outcome == 'updated':
                self.report.updated += 1
                self._changed(location_id, image_id, url, store, new_url)
            elif outcome == 'error':
                self.report.errors += 1
                LOG.warning('location %s of image %s: %s; left for a rerun',
                            location_id, image_id, urls.mask_text(detail))
            else:
                self._unresolved(location_id, image_id, url, outcome,
                                 detail)

    def _cas_update(self, conn, writes, stamp) -> int:
        """The batch's compare-and-swap, one UPDATE per (old, new) text.

        Legacy rows share a handful of texts, so a batch is a few
        ``UPDATE ... WHERE id IN (...) AND meta_data = :old`` statements
        instead of one per row: each row still changes only if it holds
        exactly what was read.  :returns: rows changed.
        """
        groups: dict[tuple, list] = {}
        for w in writes:
            groups.setdefault((w[3], w[4]), []).append(w[0])
        count = 0
        for (old, new), ids in groups.items():
            for start in range(0, len(ids), IDS_PER_UPDATE):
                chunk = ids[start:start + IDS_PER_UPDATE]
                # Pad to a power of two (an id twice changes nothing), so
                # a run compiles a handful of statements.
                size = 1 << (len(chunk) - 1).bit_length()
                params = {f'b_i{k}': chunk[k] if k < len(chunk)
                          else chunk[-1] for k in range(size)}
                params.update(b_old=old, b_new=new, b_now=stamp)
                count += self._run_sql(
                    conn, f'update-{size}', self._update_statement(size),
                    [params])
        return count

    def _update_statement(self, size):
        statement = self._updates.get(size)
        if statement is not None:
            return statement
        statement = self._updates[size] = (
            sa.update(_L)
            .where(_L.c.id.in_([sa.bindparam(f'b_i{k}')
                                for k in range(size)]),
                   db_api.holds(_L.c.meta_data, sa.bindparam('b_old')),
                   _L.c.deleted == sa.false())
            .values(meta_data=sa.bindparam('b_new'),
                    updated_at=sa.bindparam('b_now', type_=sa.DateTime())))
        return statement

    def _lost_races(self, conn, writes):
        """The writes whose row does not hold the new text."""
        ids = [w[0] for w in writes]
        found = {location_id: text for location_id, text in conn.execute(
            sa.select(_L.c.id, _L.c.meta_data).where(_L.c.id.in_(ids)))}
        return [w for w in writes if found.get(w[0]) != w[4]]

    def _retry(self, conn, write, now) -> tuple[str, str]:
        """Merge ``store`` again into a row someone changed meanwhile.

        :returns: (outcome, detail); outcome is ``updated``,
            ``already_set``, ``gone``, ``bad-metadata`` or ``error``.
        """
        location_id, image_id, _url, old, _new, store = write
        row = conn.execute(
            sa.select(_L.c.meta_data, _L.c.deleted, _L.c.status)
            .where(_L.c.id == location_id)).one_or_none()
        if row is None or row.deleted or row.status != 'active':
            return 'gone', ''  # removed meanwhile: no store to give
        fresh = _parse(row.meta_data)
        if fresh.__class__ is not dict:
            return BAD_METADATA, fresh
        if not self.resolver.needs_store(fresh):
            # It names an enabled store: keep it, unless this write fixes
            # a wrong store and the row still names that same one.
            was = self._decide(old)
            if (was.__class__ is not _Named
                    or fresh.get('store') != was.store):
                return 'already_set', ''
        try:
            db_api.location_update(
                conn, image_id, location_id, now,
                metadata=(fresh, {**fresh, 'store': store}))
        except db_exceptions.Conflict as exc:
            return 'error', urls.mask_text(exc)
        return 'updated', ''


def _parse(text):
    """Metadata from its JSON text, or a sentence saying why it isn't."""
    if text is None:
        return 'meta_data is NULL'
    try:
        value = json.loads(text)
    except ValueError:
        return 'meta_data is not JSON'
    if value.__class__ is not dict:
        return f'meta_data is a JSON {type(value).__name__}, not an object'
    return value


def _write_rows(out, rows) -> None:
    first = True
    for row in rows:
        out.write(('\n    ' if first else ',\n    ') + json.dumps(row))
        first = False
    if not first:
        out.write('\n  ')


def _bind(conn, column, value):
    """``value`` as the DBAPI wants it for ``column`` (SQLite: text)."""
    type_ = column.type.dialect_impl(conn.dialect)
    process = type_.bind_processor(conn.dialect)
    return process(value) if process else value


def _utcnow() -> datetime.datetime:
    # Glance stores naive UTC timestamps.
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _raise_if_final(exc: BaseException, doing: str) -> None:
    """Give an operator's reason for errors no retry will cure."""
    if isinstance(exc, db_exceptions.Forbidden):
        raise BackfillError(f'the database refused {doing}: {exc}; run with '
                            f'a database user that may update '
                            f'image_locations') from exc
