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

"""``backfill``: every legacy location gets its store.

And ``demo``, which runs the backfill on a deployment it makes on the spot.
"""

import itertools
import logging
import os
import tempfile

from cliff import show

from multistore_prefix import backfill as backfill_mod
from multistore_prefix.backfill import report as backfill_report
from multistore_prefix.backfill import revert as revert_mod
from multistore_prefix import cmd
from multistore_prefix.cmd import db as cmd_db
from multistore_prefix.cmd import logs
from multistore_prefix.cmd import progress
from multistore_prefix import crypt
from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import options as db_options
from multistore_prefix.db import retry
from multistore_prefix import demo
from multistore_prefix import location_map as lmap
from multistore_prefix import lookups as lookups_mod

LOG = logging.getLogger(__name__)

#: What the terminal and the log say of a run stopped by a signal.
INTERRUPTED = ('backfill interrupted: completed batches are kept; run it '
               'again to finish')
#: What the summary says when locations name the wrong enabled store.
FIX_WRONG_STORES = ('run again with --fix-wrong-stores to correct them '
                    '(--report FILE lists them)')


class Backfill(cmd.HelpWithExitCodes, show.ShowOne):
    """Give every legacy image location the store it belongs to.

    Scans the live locations of live images of the Glance database named
    by [database]/connection (the first line on stderr and the summary say
    which) in batches, and records each one's store in its metadata when
    it has none or names a store that is no longer enabled.  Only
    meta_data (key "store") and updated_at of such a row change, and only
    if the row still holds what was read: a row someone changed meanwhile
    is merged again, never overwritten.  Safe to interrupt at any moment
    and to run again: a rerun finishes the job, and a rerun after
    completion changes nothing.
    """

    exit_codes = {
        cmd.EXIT_OK: 'done (unresolved locations are counted in the summary '
                     'and listed in the report)',
        cmd.EXIT_FAILURE: 'a database error (it cannot be reached, was lost '
                          'or refused a write: completed batches are kept, '
                          'run again to finish) or an unexpected error',
        cmd.EXIT_CONFIG: f'{cmd.CONFIG_TEXT} (also: [database]/connection '
                         f'unset, its driver not installed, its SQLite file '
                         f'missing, or no image tables there)',
        cmd.EXIT_INTERRUPTED: 'interrupted by Ctrl-C or SIGTERM: the batch '
                              'in flight was committed; run again to finish',
    }

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
            help='no progress bar or progress lines (the first line, '
                 'which names the database, and errors still print)')
        parser.add_argument(
            '--fix-wrong-stores', action='store_true',
            help='also correct locations that name an enabled store whose '
                 'directory or prefix does not hold their URL while another '
                 'store\'s does (Glance\'s first-match rule puts .../images2 '
                 'in the .../images store); without it they are counted as '
                 'wrong_store and listed in the report, and left as they are')
        parser.add_argument(
            '--strip-s3-credentials', action='store_true',
            help='write S3 URLs that carry credentials '
                 '(s3://KEY:SECRET@host/bucket/object) without them, as '
                 'Glance 2026.2 (33) does on every GET; listed in the '
                 'report (masked), and not revertible: the credentials '
                 'are kept nowhere.  Only for a Glance that does it '
                 'itself: older ones sign with the keys in the URL')
        parser.add_argument(
            '--no-backend-lookups', action='store_true',
            help='resolve by prefix only: never ask a store\'s backend '
                 '(Cinder, for legacy cinder://<volume id> locations)')
        parser.add_argument(
            '--revert', metavar='REPORT',
            help='undo the run that wrote REPORT (its --report file): every '
                 'change it lists is put back, compare-and-swap, only where '
                 'the row still holds exactly what that run wrote; rows '
                 'changed since are left and listed.  Works with --dry-run, '
                 '--report and --batch-size; the other options do not apply')
        parser.add_argument(
            '--replace-invalid-stores', action='store_true',
            help='also give a store to locations whose "store" is not a '
                 'store name (a number, a list, null, ""); without it they '
                 'are reported as invalid-store-value and left as they are')
        return parser

    def take_action(self, parsed_args):
        try:
            shard = backfill_mod.Shard.parse(parsed_args.shard)
            if parsed_args.batch_size < 1:
                raise ValueError('--batch-size must be at least 1')
        except ValueError as exc:
            raise cmd.CommandError(str(exc)) from None
        if parsed_args.report:
            # Before any write: the report can be written where asked.
            try:
                backfill_report.check_writable(parsed_args.report)
            except OSError as exc:
                raise cmd.CommandError(
                    f'--report {parsed_args.report}: cannot write there: '
                    f'{exc.strerror or exc}; nothing was changed') from None
        to_undo = (_changes_to_undo(parsed_args.revert)
                   if parsed_args.revert else None)
        with cmd.config_errors(self.app.conf):
            location_map = self.app.location_map
            cipher = crypt.from_config(self.app.conf)
        database = cmd_db.open_database(self.app.conf)
        # Before any connection: the operator sees which database a run
        # that waits for it is waiting for.
        mode = ' (dry run)' if parsed_args.dry_run else ''
        self.app.stderr.write(
            f'backfill: database {database.safe_url}{mode}\n')
        self.app.stderr.flush()
        LOG.info('backfill: database %s%s', database.safe_url, mode,
                 extra=logs.LOG_ONLY)
        try:
            with cmd.database_errors(
                    f'lost the database {database.safe_url}',
                    '; completed batches are kept, run the backfill again '
                    'to finish'):
                with cmd.database_errors(
                        f'cannot reach the database {database.safe_url}',
                        '; check [database]/connection'):
                    retry.call(database, lambda: cmd_db.check_schema(database),
                               'checking the schema')
                report = self._run(database, location_map, cipher, shard,
                                   to_undo, parsed_args)
        except backfill_mod.BackfillError as exc:
            raise cmd.CommandError(str(exc), exit_code=1) from None
        finally:
            database.dispose()
        if report.interrupted:
            self.app.stderr.write(f'{INTERRUPTED}\n')
            LOG.warning(INTERRUPTED, extra=logs.LOG_ONLY)
            self.app.exit_code = cmd.EXIT_INTERRUPTED
        rows = [('database', database.safe_url)]
        for name, value in report.summary():
            rows.append((name, value))
            if (name == 'wrong_store' and value
                    and not parsed_args.fix_wrong_stores):
                # The next step when some are left as they are.
                rows.append(('wrong_store_fix', FIX_WRONG_STORES))
        LOG.info('backfill: %s', ', '.join(f'{name}={value}'
                                           for name, value in rows),
                 extra=logs.LOG_ONLY)
        return tuple(zip(*rows))

    def _run(self, database, location_map, cipher, shard, to_undo,
             parsed_args):
        """The backfill, or the revert of ``to_undo``; its report."""
        if to_undo is not None:
            job = revert_mod.Revert(database, dry_run=parsed_args.dry_run,
                                    record_reverted=bool(parsed_args.report))
        else:
            lookups = None
            if not parsed_args.no_backend_lookups:
                lookups = lookups_mod.BackendLookups.from_location_map(
                    location_map)
            job = backfill_mod.Backfill(
                database, location_map, batch_size=parsed_args.batch_size,
                dry_run=parsed_args.dry_run, shard=shard,
                record_changes=bool(parsed_args.report),
                fix_wrong_stores=parsed_args.fix_wrong_stores,
                replace_invalid_stores=parsed_args.replace_invalid_stores,
                strip_s3_credentials=parsed_args.strip_s3_credentials,
                cipher=cipher, lookups=lookups)
        try:
            return progress.run_with_progress(self.app, job,
                                              parsed_args.quiet, to_undo)
        finally:
            try:
                # However the run ends: its changes are in the report.
                if parsed_args.report:
                    self._write_report(job, parsed_args.report)
            finally:
                if to_undo is None:
                    self._log_unresolved(job)
                job.close()

    def _write_report(self, job, path):
        """The report; if it cannot be written, one elsewhere, said so.

        Changes were made by then: their record must not be lost.
        """
        try:
            job.write_report(path)
            return
        except OSError as exc:
            first = f'{exc.strerror or exc} ({path})'
        fd, fallback = tempfile.mkstemp(prefix='multistore-prefix-report-',
                                        suffix='.json')
        os.close(fd)
        try:
            job.write_report(fallback)
        except OSError as exc:
            error = (f'could not write the report: {first}; nor '
                     f'{fallback}: {exc.strerror or exc}')
        else:
            error = (f'could not write the report: {first}; it is in '
                     f'{fallback} instead')
        self.app.stderr.write(f'ERROR: {error}\n')
        LOG.error(error, extra=logs.LOG_ONLY)
        self.app.exit_code = 1

    def _log_unresolved(self, job):
        """Each unresolved location, in the configured log only.

        The terminal counts them in the summary (the report lists them);
        a log is where a run by cron or systemd is read afterwards.
        """
        if not (self.app.log_handlers or self.app.options.log_file):
            return
        for row in job.unresolved_rows:
            LOG.warning('location %s of image %s (%s) has no store: %s: %s',
                        row['location_id'], row['image_id'], row['url'],
                        row['reason'], row['detail'], extra=logs.LOG_ONLY)


class Demo(cmd.HelpWithExitCodes, show.ShowOne):
    """Backfill a Glance-like deployment made on the spot; needs no config.

    Makes demo/ (see --state-dir) with a glance-api.conf of local file
    stores chosen to trip Glance's first-match rule (two directories
    sharing a string prefix, a store nested in another, a store with
    several directories) and a SQLite database of legacy images, runs the
    backfill with its progress bar, and prints the summary beside what
    Glance's rule would have done.  Run it again to start afresh.
    """

    exit_codes = {
        cmd.EXIT_CONFIG: 'a command-line error, or the state directory '
                         'cannot be made',
        cmd.EXIT_INTERRUPTED: 'interrupted by Ctrl-C or SIGTERM (the '
                              'backfill commits the batch in flight first)',
    }

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--images', type=int, default=10000, metavar='N',
            help='legacy images to create (default 10000)')
        parser.add_argument(
            '--state-dir', metavar='DIR',
            help='where to put demo/ (default $MSP_STATE_DIR or ./state)')
        parser.add_argument(
            '--batch-size', type=int, default=backfill_mod.BATCH_SIZE,
            metavar='N', help='locations per backfill transaction')
        parser.add_argument(
            '--setup-only', action='store_true',
            help='make the deployment and its legacy images, and leave '
                 'them for "multistore-prefix --config-file '
                 'STATE_DIR/demo/glance-api.conf backfill" (dry run, '
                 'report, run, rerun, revert)')
        return parser

    def take_action(self, parsed_args):
        if parsed_args.images < 1 or parsed_args.batch_size < 1:
            raise cmd.CommandError('--images and --batch-size must be at '
                                   'least 1')
        state_dir = os.path.abspath(os.path.join(
            parsed_args.state_dir or db_options.state_dir(), 'demo'))
        try:
            conf, seeded = demo.create(state_dir, parsed_args.images)
        except OSError as exc:
            raise cmd.CommandError(f'cannot make {state_dir}: '
                                   f'{exc.strerror}') from None
        config = conf.config_file[0]
        rows = [('config', config), ('images', seeded.images),
                ('locations', seeded.locations)]
        glance = [('glance_first_match_wrong',
                   f'{seeded.glance_wrong} of {seeded.legacy} legacy '
                   f'locations')]
        if parsed_args.setup_only:
            self.app.stderr.write(
                f'made {seeded.legacy} legacy locations; next:\n'
                f'  multistore-prefix --config-file {config} backfill '
                f'--dry-run\n')
            rows += [('legacy', seeded.legacy)] + glance
            return tuple(zip(*rows))
        database = db_engine.Database.from_config(conf)
        job = backfill_mod.Backfill(
            database, lmap.LocationMap.from_config(conf),
            batch_size=parsed_args.batch_size)
        try:
            report = progress.run_with_progress(self.app, job)
        finally:
            job.close()
            database.dispose()
        if report.interrupted:
            self.app.exit_code = cmd.EXIT_INTERRUPTED
        rows += report.summary() + glance
        return tuple(zip(*rows))


def _changes_to_undo(path: str):
    """The changes of the ``--revert`` report, its first read now.

    A report that cannot be read, or is not a backfill's with changes (a
    dry run's, a revert's), stops the command before anything else.
    """
    def read():
        try:
            yield from revert_mod.changes(path)
        except OSError as exc:
            raise cmd.CommandError(f'--revert {path}: cannot read it: '
                                   f'{exc.strerror or exc}') from None
        except revert_mod.ReportError as exc:
            raise cmd.CommandError(f'--revert {path}: {exc}') from None
    entries = read()
    first = next(entries, None)
    return itertools.chain([] if first is None else [first], entries)
