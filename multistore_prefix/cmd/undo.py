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


"""``multistore-prefix backfill --revert REPORT``: undo one backfill run."""

from multistore_prefix.backfill import revert as revert_mod
from multistore_prefix import cmd
from multistore_prefix.db import engine as db_engine


def add_arguments(parser) -> None:
    parser.add_argument(
        '--revert', metavar='REPORT',
        help='undo the run that wrote REPORT (its --report file): every '
             'change it lists is put back, compare-and-swap, only where '
             'the row still holds exactly what that run wrote; rows '
             'changed since are left and listed.  Works with --dry-run, '
             '--report and --batch-size; the other options do not apply')


def open_report(path: str):
    """The changes of the report to undo, checked before anything else.

    :raises CommandError: it cannot be read, or is not a backfill's
        report with changes (a dry run's, a revert's).
    """
    try:
        entries = revert_mod.changes(path)
        first = next(entries, None)
    except (OSError, revert_mod.ReportError) as exc:
        raise cmd.CommandError(f'--revert {path}: {_reason(exc)}') from None
    return _chain(first, entries, path)


def take_action(command, parsed_args, database: db_engine.Database,
                entries, run_with_progress):
    """Run a revert of ``entries`` (:func:`open_report`); its report."""
    job = revert_mod.Revert(database, dry_run=parsed_args.dry_run,
                            record_reverted=bool(parsed_args.report))
    try:
        report = run_with_progress(command.app, job, parsed_args.quiet,
                                   entries=entries)
    finally:
        # However the revert ends: what it undid is in the report.
        if parsed_args.report:
            command._write_report(job, parsed_args.report)
        job.close()
    return report


def _chain(first, rest, path):
    if first is None:
        return
    yield first
    try:
        yield from rest
    except revert_mod.ReportError as exc:
        raise cmd.CommandError(f'--revert {path}: {exc}') from None


def _reason(exc) -> str:
    if isinstance(exc, OSError):
        return f'cannot read it: {exc.strerror or exc}'
    return str(exc)
