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

"""Backfill progress: the total is counted beside the run, not before it."""

import io
import threading

from multistore_prefix.cmd import progress as progress_mod


def lines(stream):
    return [line.split(' backfill: ', 1)[1]
            for line in stream.getvalue().splitlines()]


def test_the_count_runs_beside_the_backfill():
    release, counting = threading.Event(), threading.Event()

    def slow_count():
        counting.set()
        assert release.wait(10)
        return 30

    stream = io.StringIO()
    progress = progress_mod.Progress(stream, quiet=False)
    progress.start(slow_count)
    assert counting.wait(10)
    # Batches go on while the count is still running: no total yet.
    progress.update(10)
    assert progress.total is None and lines(stream) == []
    release.set()
    progress._counter.join(10)
    progress.update(10)
    assert progress.total == 30
    assert lines(stream) == ['30 live locations to scan']
    progress.update(10)
    progress.close()
    assert progress.done == 30


def test_a_run_that_ends_first_waits_for_its_total():
    release = threading.Event()
    stream = io.StringIO()
    progress = progress_mod.Progress(stream, quiet=False)
    progress.start(lambda: release.wait(10) and 5)
    progress.update(5)
    threading.Timer(0.1, release.set).start()
    progress.close()
    assert lines(stream) == ['5 live locations to scan']


def test_a_stopped_run_does_not_wait_for_the_count():
    release = threading.Event()
    progress = progress_mod.Progress(io.StringIO(), quiet=False)
    progress.start(lambda: release.wait(10) and 5)
    progress.close(wait=False)
    assert progress._counter.is_alive() and progress.total is None
    release.set()


def test_a_failed_count_leaves_progress_without_a_total():
    def broken():
        raise RuntimeError('connection lost')

    stream = io.StringIO()
    progress = progress_mod.Progress(stream, quiet=False)
    progress.start(broken)
    progress.last -= progress_mod.LOG_INTERVAL  # a line is due
    progress._counter.join(10)
    progress.update(7)
    progress.close()
    assert progress.total is None
    assert len(lines(stream)) == 1
    assert lines(stream)[0].startswith('7 locations (')


def test_counted_first_when_reads_would_hold_off_writes():
    calls = []
    stream = io.StringIO()
    progress = progress_mod.Progress(stream, quiet=False)
    progress.start(lambda: calls.append(threading.current_thread().name)
                   or 4, background=False)
    assert calls == [threading.current_thread().name]
    assert progress._counter is None
    assert lines(stream) == ['4 live locations to scan']
    progress.close()


def test_quiet_never_counts():
    progress = progress_mod.Progress(io.StringIO(), quiet=True)
    progress.start(lambda: 1 / 0)
    progress.update(3)
    progress.close()
    assert progress._counter is None and progress.total is None
