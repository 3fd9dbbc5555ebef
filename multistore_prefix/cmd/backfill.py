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

"""``multistore-prefix backfill``: every legacy location gets its store."""

import logging
import os
import signal
import threading
import time

from cliff import show
from oslo_db import exception as db_exc
from sqlalchemy import exc as sa_exc

from multistore_prefix import backfill as backfill_mod
from multistore_prefix import cmd
from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import migration
from multistore_prefix import lookups as lookups_mod
from multistore_prefix import urls

LOG = logging.getLogger(__name__)

#: Seconds between progress lines when stderr is not a terminal.
LOG_INTERVAL = 10.0
#: Exit code of a run stopped by a signal; a rerun finishes the job.
EXIT_INTERRUPTED = 130


class Backfill(show.ShowOne):
    """Give every legacy image location the store it belongs to.

    Scans the live locations of live images ([database]/connection: the
    operator's Glance database, or the embedded default) in batches, and
    records each one's store in its metadata when it has none or names a
    store that is no longer enabled.  Locations that name the wrong enabled
    store are counted and listed (--fix-wrong-stores corrects them).  Only
    meta_data (key "store") and updated_at of such a row change, and only
    if the row still holds what was read: a row someone changed meanwhile
    is merged again, never overwritten.  Safe to interrupt at any moment
    and to run again: a rerun finishes the job, and a rerun after
    completion changes nothing.

    Exit codes: 0 done (unresolved locations are in the summary and the
    report), 2 configuration or command-line error, 130 interrupted.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--batch-size', type=int, default=backfill_mod.BATCH_SIZE,
            metavar='N',
            help=f'locations read and written per transaction (default '
                 f'{backfill_mod.BATCH_SIZE}); memory stays flat whatever '
                 f'the table size')
        parser.add_argument(
            '--dry-run', action='store_true',
            help='write nothing; say what would change')
        parser.add_argument(
            '--report', metavar='FILE',
            help='write a JSON report: the counts, every unresolved '
                 'location (image id, masked URL, reason) and every change')
        parser.add_argument(
            '--shard', default='1/1', metavar='K/N',
            help='do the K-th of N shares of the images (split by image '
                 'id), so N workers can share one database; default 1/1')
        parser.add_argument(
            '--quiet', action='store_true',
            help='no progress bar or progress lines')
        parser.add_argument(
            '--fix-wrong-stores', action='store_true',
            help='also correct locations that name an enabled store whose '
                 'directory or prefix does not hold their URL while another '
                 'store\'s does (Glance\'s first-match rule puts .../images2 '
                 'in the .../images store); without it they are counted as '
                 'wrong_store and listed in the report, and left as they are')
        parser.add_argument(
            '--no-backend-lookups', action='store_true',
            help='resolve by prefix only: never ask a store\'s backend '
                 '(Cinder, for legacy cinder://<volume id> locations)')
        return parser

    def take_action(self, parsed_args):
        try:
            shard = backfill_mod.Shard.parse(parsed_args.shard)
            if parsed_args.batch_size < 1:
                raise ValueError('--batch-size must be at least 1')
        except ValueError as exc:
            raise cmd.CommandError(str(exc)) from None
        with cmd.config_errors(self.app.conf):
            location_map = self.app.location_map
            try:
                database = db_engine.Database.from_config(self.app.conf)
            except OSError as exc:  # the embedded default's directory
                raise cmd.CommandError(
                    f'[database]/connection: cannot use its directory: '
                    f'{exc.strerror} ({exc.filename})') from None
        try:
            try:
                self._check_schema(database)
            except (db_exc.DBError, sa_exc.DBAPIError) as exc:
                raise cmd.CommandError(
                    f'cannot reach the database {database.safe_url}: '
                    f'{urls.mask_error(exc)}; check [database]/connection',
                    exit_code=1) from None
            lookups = None
            if not parsed_args.no_backend_lookups:
                lookups = lookups_mod.BackendLookups.from_location_map(
                    location_map)
            job = backfill_mod.Backfill(
                database, location_map, batch_size=parsed_args.batch_size,
                dry_run=parsed_args.dry_run, shard=shard,
                record_changes=bool(parsed_args.report),
                fix_wrong_stores=parsed_args.fix_wrong_stores,
                lookups=lookups)
            try:
                report = self._run(job, parsed_args)
                if parsed_args.report:
                    job.write_report(parsed_args.report)
            finally:
                job.close()
        except (db_exc.DBError, sa_exc.DBAPIError) as exc:
            raise cmd.CommandError(
                f'lost the database {database.safe_url}: '
                f'{urls.mask_error(exc)}; completed batches are kept, run '
                f'the backfill again to finish', exit_code=1) from None
        except backfill_mod.BackfillError as exc:
            raise cmd.CommandError(str(exc), exit_code=1) from None
        finally:
            database.dispose()
        if report.interrupted:
            self.app.stderr.write('backfill interrupted: completed batches '
                                  'are kept; run it again to finish\n')
            self.app.exit_code = EXIT_INTERRUPTED
        rows = report.summary()
        return [name for name, _ in rows], [value for _, value in rows]

    @staticmethod
    def _check_schema(database):
        with database.reader() as conn:
            state = migration.inspect_schema(conn)
        if state.owner == migration.OWNER_EMPTY:
            raise cmd.CommandError(
                f'{database.safe_url} has no image tables: point '
                f'[database]/connection at Glance\'s database, or run '
                f'"multistore-prefix db sync" for the embedded default')

    def _run(self, job, parsed_args):
        return run_with_progress(self.app, job, parsed_args.quiet)


def run_with_progress(app, job, quiet: bool = False):
    """Run a backfill job with progress on ``app``'s stderr.

    SIGTERM or Ctrl-C lets the batch in flight finish (it commits or rolls
    back whole either way), then stops; a second one stops at once.
    """
    # cliff's own --quiet (verbosity 0) takes the flag wherever it is.
    quiet = quiet or app.options.verbose_level == 0
    progress = _Progress(app.stderr, quiet)
    job.progress = progress.update
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.getsignal(signum) for signum in signals}

    def again(signum, frame):
        job.abort()
        raise KeyboardInterrupt

    def first(signum, frame):
        for each in signals:
            signal.signal(each, again)
        job.stop()
    for signum in signals:
        signal.signal(signum, first)
    report = None
    try:
        progress.start(job.count, background=job.reads_beside_writes())
        report = job.run()
        return report
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        # A run that ended shows its total; a stopped or failed one does
        # not wait for the count.
        progress.close(wait=report is not None and not report.interrupted)


class _Progress:
    """A tqdm bar on a terminal, periodic log lines elsewhere.

    The total (a count of the live locations: a full scan, seconds on a
    large table) is taken in a thread of its own while the backfill runs,
    and shown once it is known.
    """

    def __init__(self, stream, quiet: bool):
        self.stream = stream
        self.quiet = quiet
        self.bar = None
        self.done = 0
        self.total = None
        self.started = self.last = time.monotonic()
        self._counter = None
        self._counted = None

    def start(self, count, background: bool = True) -> None:
        """Begin; ``count()`` gives the total (not called when quiet).

        :param background: count in a thread while the backfill runs;
            ``False`` (a SQLite file without WAL, where a long read would
            hold off the writes): count first.
        """
        if self.quiet:
            return
        if background:
            self._counter = threading.Thread(
                target=self._count, args=(count,), daemon=True,
                name='backfill-count')
            self._counter.start()
        else:
            self._count(count)
        if _isatty(self.stream):
            import tqdm  # only on a terminal
            # A terminal that reports no size (0x0) would get no bar.
            sized = _columns(self.stream) > 0
            # The count may land meanwhile: read it once.
            counted = self._counted
            self.bar = tqdm.tqdm(total=counted, unit='loc',
                                 file=self.stream,
                                 ncols=None if sized else 80,
                                 nrows=None if sized else 24,
                                 dynamic_ncols=sized, smoothing=0.1)
            self.total = counted
        else:
            self._take_total()

    def _count(self, count) -> None:
        try:
            self._counted = count()
        except Exception as exc:  # progress without a total, not a failure
            LOG.debug('counting the live locations failed: %s',
                      urls.mask_text(exc))

    def _take_total(self) -> None:
        """Show the total once the counting thread has it."""
        if self.total is not None or self._counted is None:
            return
        self.total = self._counted
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()
        else:
            self._line(f'{self.total} live locations to scan')

    def update(self, count: int) -> None:
        self.done += count
        if self.quiet:
            return
        self._take_total()
        if self.bar is not None:
            self.bar.update(count)
            return
        now = time.monotonic()
        if now - self.last >= LOG_INTERVAL:
            self.last = now
            rate = self.done / (now - self.started)
            if self.total is None:
                self._line(f'{self.done} locations ({rate:.0f}/s)')
                return
            left = (self.total - self.done) / rate if rate else 0
            self._line(f'{self.done}/{self.total} locations ({rate:.0f}/s, '
                       f'about {max(left, 0):.0f} s left)')

    def _line(self, text: str) -> None:
        stamp = time.strftime('%Y-%m-%d %H:%M:%S')
        self.stream.write(f'{stamp} backfill: {text}\n')
        self.stream.flush()

    def close(self, wait: bool = True) -> None:
        """End the bar.

        :param wait: let the count finish first, and show its total.
        """
        if self._counter is not None and wait:
            self._counter.join()
            self._take_total()
        if self.bar is not None:
            self.bar.close()


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
