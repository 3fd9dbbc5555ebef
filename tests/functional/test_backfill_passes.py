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

"""PostgreSQL writes a batch in passes, so that rows can stay on their page.

See :func:`multistore_prefix.db.batches.transactions`; the share of
heap-only updates is a figure of ``benchmarks/bench_backfill.py``.
"""

import json
import time

import pytest
import sqlalchemy as sa

from multistore_prefix import backfill as backfill_mod
from multistore_prefix.db import batches
from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import models
from tests.functional import test_backfill_cli as cli

_L = models.image_locations
#: Locations seeded: one batch, every pass long enough to be one.
ROWS = 2000

pytestmark = pytest.mark.engines('postgresql')


@pytest.fixture
def fresh(database_server):
    """A database of its own: no dead rows of other tests, no counts."""
    database = db_engine.Database(database_server.create_synced())
    yield database
    database.dispose()


@pytest.fixture
def legacy_rows(fresh):
    """``ROWS`` legacy locations, two per image, in full pages."""
    cli.seed(fresh.engine, [(f'file:///srv/a/{n:06d}', '{}')
                            for n in range(ROWS)], per_image=2)
    return ROWS


def _updates(database, expected: int) -> tuple[int, int]:
    """(rows updated, of which heap-only) once the statistics have them.

    Each server process reports its counts when its transaction ends (at
    most once a second) and when it exits: the run's pool is closed.
    """
    deadline = time.monotonic() + 15
    while True:
        with database.reader() as conn:
            conn.exec_driver_sql('SELECT pg_stat_clear_snapshot()')
            updated, hot = conn.exec_driver_sql(
                'SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables '
                "WHERE relname = 'image_locations'").one()
        if updated >= expected or time.monotonic() > deadline:
            return updated, hot
        time.sleep(0.2)


def test_a_batch_is_written_in_passes_each_row_once(
        fresh, location_map, legacy_rows, monkeypatch):
    # One transaction for the batch would move every row to a new page;
    # in passes, the later ones can fit in the room the earlier ones
    # freed (heap-only tuples).  How many do is a figure of
    # benchmarks/bench_backfill.py; here, the passes and their writes.
    database = fresh
    job = backfill_mod.Backfill(database, location_map)
    write = job.writer.write
    passes = []

    def write_a_pass(writes):
        passes.append(len(writes))
        return write(writes)
    monkeypatch.setattr(job.writer, 'write', write_a_pass)
    report = job.run()
    job.close()
    database.dispose()  # its server processes report their counts
    assert passes == [legacy_rows // batches.PASSES] * batches.PASSES
    assert (report.scanned, report.updated, report.errors) == (
        legacy_rows, legacy_rows, 0)
    updated, _hot = _updates(database, legacy_rows)
    assert updated == legacy_rows  # each row once
    with database.reader() as conn:
        texts = conn.execute(sa.select(_L.c.meta_data)).scalars().all()
    assert set(texts) == {json.dumps({'store': 'multi'})}


def _stopped_after_the_first_pass(database, location_map, monkeypatch,
                                  how):
    """Run, stopping (``job.stop`` or ``job.abort``) after the first pass.

    :returns: the rows of each pass written, and the report.
    """
    job = backfill_mod.Backfill(database, location_map)
    write = job.writer.write
    passes = []

    def write_then_stop(writes):
        outcomes = write(writes)
        passes.append(len(writes))
        if len(passes) == 1:
            getattr(job, how)()  # as Ctrl-C would, once it committed
        return outcomes
    monkeypatch.setattr(job.writer, 'write', write_then_stop)
    report = job.run()
    job.close()
    return passes, report


def test_a_stop_during_a_batch_finishes_every_pass_of_it(
        fresh, location_map, legacy_rows, monkeypatch):
    # A first Ctrl-C lets the batch in flight finish: all of its passes.
    passes, report = _stopped_after_the_first_pass(
        fresh, location_map, monkeypatch, 'stop')
    assert passes == [legacy_rows // batches.PASSES] * batches.PASSES
    assert report.interrupted
    assert (report.scanned, report.updated) == (legacy_rows, legacy_rows)


def test_an_abort_between_passes_reports_the_passes_that_committed(
        fresh, location_map, legacy_rows, monkeypatch):
    database = fresh
    # A second Ctrl-C stops at once: the passes already committed are
    # kept and reported, the others not made.
    passes, report = _stopped_after_the_first_pass(
        fresh, location_map, monkeypatch, 'abort')
    per_pass = legacy_rows // batches.PASSES
    assert passes == [per_pass]
    assert report.interrupted
    assert report.updated == per_pass
    with database.reader() as conn:
        stored = dict(conn.execute(sa.select(_L.c.id, _L.c.meta_data)).all())
    changed = sorted(i for i, text in stored.items() if text != '{}')
    assert changed == sorted(stored)[0::batches.PASSES]
