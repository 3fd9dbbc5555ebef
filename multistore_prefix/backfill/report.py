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


"""What a backfill run did: the counts, and the rows behind them.

The rows (unresolved locations, wrong stores, changes) are spooled to disk
as they come, so memory stays flat whatever the table size; the JSON
report is written at the end, whole or not at all.
"""

import collections
import contextlib
import dataclasses
import json
import os
import tempfile
from typing import Iterable, Iterator


@dataclasses.dataclass
class Summarised:
    """A report whose summary table is its :meth:`as_dict`, in order.

    A count by reason is its total and then one row per reason; the run's
    settings are left out, and ``interrupted`` is shown only when it was.

    :ivar failed: the error that ended the run before it finished (the
        database lost past the retries, a bug), one masked line; ``None``
        for a run that finished or was stopped.
    """

    dry_run: bool = False
    elapsed: float = 0.0
    interrupted: bool = False
    failed: str | None = None

    _SETTINGS = ('revert', 'dry_run', 'shard', 'failed')

    def summary(self) -> list[tuple[str, object]]:
        rows = []
        for key, value in self.as_dict().items():
            if key in self._SETTINGS or (key == 'interrupted' and not value):
                continue
            if isinstance(value, dict):
                rows.append((key, sum(value.values())))
                rows += [(f'{key}: {reason}', count)
                         for reason, count in value.items()]
            else:
                rows.append((key, value))
        return rows


@dataclasses.dataclass
class Report(Summarised):
    """The counts of a backfill run.

    :ivar updated: locations this run gave their store (``would_update`` on
        a dry run); never a row another writer changed.
    :ivar wrong_store: locations that name an enabled store whose prefixes
        do not cover their URL, while another store's do (Glance's
        first-match rule does this to ``.../images2`` when ``.../images``
        is a store).  Left as they are unless ``fix_wrong_stores``; then
        they are among ``updated`` too.
    :ivar unresolved: locations that need a store and got none, and rows
        that could not be read or written, by reason.
    :ivar conflicts_retried: rows changed by someone else between read and
        write, merged again on fresh data.
    :ivar unconfirmed: writes whose commit may or may not have landed: the
        connection was lost on the way back and the run ended (stopped, or
        the database stayed lost) before it could read the rows back.  Not
        among ``updated``; listed in the report's changes with
        ``"unconfirmed": true`` (``--revert`` undoes those that landed).
        Shown only when there are some.
    :ivar slowest_write: seconds the longest write transaction took on a
        server (how close the run came to ``db_transaction_timeout``);
        shown only on a server.
    """

    shard: str = '1/1'
    scanned: int = 0
    updated: int = 0
    already_set: int = 0
    wrong_store: int = 0
    unresolved: collections.Counter = dataclasses.field(
        default_factory=collections.Counter)
    conflicts_retried: int = 0
    errors: int = 0
    unconfirmed: int = 0
    slowest_write: float = 0.0

    def as_dict(self) -> dict:
        rate = self.scanned / self.elapsed if self.elapsed else 0.0
        extra = {'unconfirmed': self.unconfirmed} if self.unconfirmed else {}
        if self.slowest_write:
            extra['slowest_write_seconds'] = round(self.slowest_write, 3)
        return {'dry_run': self.dry_run, 'shard': self.shard,
                'scanned': self.scanned,
                ('would_update' if self.dry_run else 'updated'): self.updated,
                'already_set': self.already_set,
                'wrong_store': self.wrong_store,
                'unresolved': dict(sorted(self.unresolved.items())),
                'conflicts_retried': self.conflicts_retried,
                'errors': self.errors,
                'elapsed_seconds': round(self.elapsed, 3),
                'rate_per_second': round(rate, 1),
                **extra, 'interrupted': self.interrupted,
                **({'failed': self.failed} if self.failed else {})}


class Spool:
    """Rows for the report, kept on disk so memory stays flat."""

    def __init__(self):
        self._file = tempfile.TemporaryFile('w+', encoding='utf-8')

    def add(self, row: dict) -> None:
        self._file.write(json.dumps(row) + '\n')

    def __iter__(self) -> Iterator[dict]:
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            yield json.loads(line)

    def close(self) -> None:
        self._file.close()


def check_writable(path: str) -> None:
    """Fail now (OSError, naming the path) if the report can't be written."""
    if os.path.isdir(path):
        raise IsADirectoryError(21, 'is a directory', path)
    directory = os.path.dirname(os.path.abspath(path))
    probe = tempfile.NamedTemporaryFile(dir=directory, prefix='.msp-probe-')
    probe.close()


def write(path: str, report: Summarised,
          sections: Iterable[tuple[str, Spool]]) -> None:
    """The JSON report: the counts, then one list per section.

    Written to a temporary file beside ``path`` and renamed, so a report
    is whole or absent, never half-written.
    """
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        with open(tmp, 'w', encoding='utf-8') as out:
            body = json.dumps(report.as_dict(), indent=2)
            out.write(body[:-2])
            for key, rows in sections:
                out.write(f',\n  "{key}": [')
                before = '\n    '
                for row in rows:
                    out.write(before + json.dumps(row))
                    before = ',\n    '
                out.write(']' if before == '\n    ' else '\n  ]')
            out.write('\n}\n')
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
