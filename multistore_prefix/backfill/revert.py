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


"""Undoing a backfill run: put back exactly what its report says it did.

Each change in a report names the location, the store written and the one
before, and the fingerprints (SHA-256) of the metadata text before and
after.  A change is undone only when the row still holds exactly the text
that run wrote, and when taking the store out again gives back exactly the
text that was there; the write is the same compare-and-swap as the
backfill's.  A row someone changed since is left as it is and listed.
"""

import dataclasses
import itertools
import json
from typing import Iterator

from oslo_utils import timeutils

from multistore_prefix import backfill
from multistore_prefix.backfill import report as report_mod
from multistore_prefix.backfill import writing
from multistore_prefix.db import batches
from multistore_prefix.db import exceptions as db_exceptions
from multistore_prefix.db import retry
from multistore_prefix import masking
from multistore_prefix import metadata as metadata_text
from multistore_prefix import urls

#: Why a change was not undone.
GONE = 'gone'                    # the location is deleted or not active
CHANGED = 'changed-since'        # the row no longer holds what was written
NOT_EXACT = 'not-exact'          # undoing would not give the old text back
NO_FINGERPRINT = 'no-fingerprint'  # an old report, or a URL rewrite
CREDENTIALS = 'credentials-removed'  # an S3 URL's, kept nowhere
NOT_LANDED = 'not-landed'        # an unconfirmed write that did not land
#: The row holds what the revert would write (a revert ran before): not
#: left, and counted apart.
ALREADY_REVERTED = 'already-reverted'

CHUNK = 1000
_DRY_RUN = 'dry run: it changed nothing to undo'


class ReportError(ValueError):
    """The file is not a backfill report that can be undone."""


@dataclasses.dataclass
class RevertReport(report_mod.Summarised):
    """What a revert did.

    :ivar reverted: changes undone (``would_revert`` on a dry run).
    :ivar already_reverted: changes whose row holds exactly what was there
        before the run already (undone by an earlier revert).
    :ivar left: changes left as they are, by reason.
    """

    entries: int = 0
    reverted: int = 0
    already_reverted: int = 0
    left: dict = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict:
        return {'revert': True, 'dry_run': self.dry_run,
                'entries': self.entries,
                ('would_revert' if self.dry_run else 'reverted'):
                    self.reverted,
                'already_reverted': self.already_reverted,
                'left': dict(sorted(self.left.items())),
                'elapsed_seconds': round(self.elapsed, 3),
                'interrupted': self.interrupted,
                **({'failed': self.failed} if self.failed else {})}


def changes(path: str) -> Iterator[dict]:
    """The ``changed`` entries of a backfill report, one at a time.

    The report is read line by line (it can hold millions of changes),
    as the backfill writes it; a file laid out otherwise is read whole.

    :raises ReportError: not a report, a dry run's, or a revert's.
    :raises OSError: it cannot be read.
    """
    with open(path, encoding='utf-8') as source:
        if source.readline().strip() != '{':
            yield from _whole(path)
            return
        for line in source:
            stripped = line.strip()
            if stripped in ('"dry_run": true,', '"revert": true,'):
                raise ReportError(f'{path} is the report of a ' + (
                    'revert' if 'revert' in stripped else _DRY_RUN))
            if stripped == '"changed": [':
                break
            if stripped.startswith('"changed": []'):
                return
        else:
            raise ReportError(f'{path} has no "changed" list: write the '
                              f'backfill\'s report with --report (and not '
                              f'--dry-run)')
        for line in source:
            stripped = line.strip().rstrip(',')
            if stripped == ']':
                return
            try:
                yield json.loads(stripped)
            except ValueError:
                raise ReportError(f'{path}: a "changed" entry is not JSON: '
                                  f'{stripped[:60]!r}') from None


def _whole(path):
    try:
        with open(path, encoding='utf-8') as source:
            body = json.load(source)
    except ValueError as exc:
        raise ReportError(f'{path} is not JSON ({exc})') from None
    if not isinstance(body, dict) or body.get('revert'):
        raise ReportError(f'{path} is not the report of a backfill')
    if body.get('dry_run'):
        raise ReportError(f'{path} is the report of a {_DRY_RUN}')
    if 'changed' not in body:
        raise ReportError(f'{path} has no "changed" list')
    yield from body['changed']


class Revert(backfill.Job):
    """Undoes the changes of one backfill run (``dry_run``: checks them)."""

    def __init__(self, database, dry_run: bool = False,
                 record_reverted: bool = False):
        self.left_rows = report_mod.Spool()
        self.reverted_rows = (report_mod.Spool()
                              if record_reverted or dry_run else None)
        super().__init__(database, RevertReport(dry_run=dry_run), {
            'left_locations': self.left_rows,
            ('would_revert' if dry_run else 'reverted_changes'):
                self.reverted_rows})

    def run(self, entries) -> RevertReport:
        return self._run(self._chunks(iter(entries)))

    def _chunks(self, entries) -> Iterator[int]:
        while chunk := list(itertools.islice(entries, CHUNK)):
            self._chunk(chunk)
            yield len(chunk)

    def _chunk(self, entries) -> None:
        self.report.entries += len(entries)
        try:
            outcomes = retry.call(self.database,
                                  lambda: self._undo(entries),
                                  'undoing a batch', self._stopping)
        except db_exceptions.Forbidden as exc:
            raise writing.refused(exc, 'undoing a batch') from exc
        for entry, reason, detail in outcomes:
            if reason is None:
                self.report.reverted += 1
                if self.reverted_rows is not None:
                    self.reverted_rows.add(entry)
                continue
            if reason == ALREADY_REVERTED:
                self.report.already_reverted += 1
                continue
            self.report.left[reason] = self.report.left.get(reason, 0) + 1
            self.left_rows.add({
                'image_id': entry.get('image_id'),
                'location_id': entry.get('location_id'),
                'url': masking.mask_url(entry.get('url')), 'reason': reason,
                'detail': detail})

    def _undo(self, entries) -> list[tuple]:
        transaction = (self.database.reader if self.dry_run
                       else self.database.writer)
        with transaction() as conn:
            ids = [e['location_id'] for e in entries
                   if isinstance(e.get('location_id'), int)]
            current = batches.lock_current(conn, ids,
                                           lock=not self.dry_run)
            outcomes, writes = [], []
            for entry in entries:
                reason, detail, write = _decide(entry, current)
                outcomes.append((entry, reason, detail))
                if write is not None:
                    writes.append(write)
            if self.dry_run:
                return outcomes
            batches.set_metadata(conn, writes, timeutils.utcnow(),
                                 locked=True)
        return outcomes


def _decide(entry, current) -> tuple:
    """(reason or None, detail, write or None) for one change."""
    if str(entry.get('url', '')).startswith(urls.S3_SCHEMES) and entry.get(
            'new_url'):
        return (CREDENTIALS, 'an S3 URL written without its credentials, '
                'which are kept nowhere: not revertible', None)
    if 'sha256' not in entry or 'previous_sha256' not in entry:
        return (NO_FINGERPRINT, 'the change has no fingerprint of the text '
                'written (a URL rewrite, or a report of an older version): '
                'undo it by hand', None)
    row = current.get(entry.get('location_id'))
    if row is None or not row.live:
        return GONE, 'the location is deleted or no longer active', None
    digest = metadata_text.digest(row.text)
    if digest == entry['previous_sha256']:
        if entry.get('unconfirmed'):
            return (NOT_LANDED, 'the backfill\'s write was not confirmed '
                    'and did not land: nothing to undo', None)
        return ALREADY_REVERTED, None, None
    if digest != entry['sha256']:
        return (CHANGED, 'the row no longer holds what the backfill wrote: '
                'left as it is', None)
    members = metadata_text.parse(row.text)
    previous = entry.get('previous_store')
    try:
        restored = metadata_text.patch(members, {
            'store': metadata_text.DELETE if previous is None else previous})
    except (ValueError, AttributeError):
        restored = None
    if restored is None or metadata_text.digest(restored) != entry[
            'previous_sha256']:
        return (NOT_EXACT, 'taking the store out would not give back the '
                'exact text that was there: left as it is', None)
    return None, None, batches.MetadataWrite(
        entry['location_id'], entry.get('image_id'), row.text, restored)
