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


"""Running a job with progress on stderr, and stopping it on a signal.

A tqdm bar on a terminal, a plain line every :data:`LOG_INTERVAL` seconds
elsewhere.  The first Ctrl-C or SIGTERM lets the batch in flight finish
(its connection is cut after :data:`STOP_GRACE` seconds if it does not),
a second one stops at once, even inside a database call
(:func:`_signal_wakeup`).
"""

import contextlib
import logging
import os
import signal
import threading
import time

from multistore_prefix import masking

LOG = logging.getLogger(__name__)

#: Seconds between progress lines when stderr is not a terminal.
LOG_INTERVAL = 10.0
#: Seconds the batch in flight has to finish after the first Ctrl-C or
#: SIGTERM before its connection is cut (it rolls back whole).
STOP_GRACE = 10.0

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def _signal_wakeup(watchdog):
    """Hurry the database watchdog the moment a stop signal arrives.

    Python runs a signal handler only when the main thread returns to the
    interpreter; a main thread blocked inside a C driver call (libpq
    waiting on a silent socket) would never see it.  The C-level handler
    also writes the signal number to a pipe (``signal.set_wakeup_fd``); a
    thread reading that pipe hurries the watchdog at once, the blocked
    call fails with a lost connection, and the main thread's handler then
    runs as usual.
    """
    read, write = os.pipe()
    os.set_blocking(write, False)
    try:
        previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    except ValueError:  # not the main thread: nothing to wake
        os.close(read)
        os.close(write)
        yield
        return
    threading.Thread(target=_listen, args=(read, watchdog), daemon=True,
                     name='signal-wakeup').start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        os.close(write)  # the listener reads EOF and ends


def _listen(read_fd: int, watchdog) -> None:
    grace = STOP_GRACE
    try:
        while received := os.read(read_fd, 64):
            if set(received) & set(STOP_SIGNALS):
                watchdog.hurry(grace)
                grace = 0  # a second stop signal: no grace at all
    except OSError:
        pass
    finally:
        os.close(read_fd)


def run_with_progress(app, job, quiet: bool = False, entries=None):
    """Run a backfill job with progress on ``app``'s stderr.

    :param entries: a revert's changes to undo (``job.run(entries)``); a
        backfill job reads its own.
    """
    # cliff's own --quiet (verbosity 0) takes the flag wherever it is.
    quiet = quiet or app.options.verbose_level == 0
    progress = Progress(app.stderr, quiet)
    job.progress = progress.update
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def again(signum, frame):
        job.abort(grace=0)
        raise KeyboardInterrupt

    def first(signum, frame):
        for each in STOP_SIGNALS:
            signal.signal(each, again)
        job.stop(STOP_GRACE)
    for signum in STOP_SIGNALS:
        signal.signal(signum, first)
    report = None
    try:
        with _signal_wakeup(job.database.watchdog):
            if entries is None:
                progress.start(job.count,
                               background=job.reads_beside_writes())
                report = job.run()
            else:
                progress.start(None)
                report = job.run(entries)
        return report
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        # A run that ended shows its total; a stopped or failed one does
        # not wait for the count.
        progress.close(wait=report is not None and not report.interrupted)


class Progress:
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

        :param count: ``None``: no total.
        :param background: count in a thread while the backfill runs;
            ``False`` (a SQLite file without WAL, where a long read would
            hold off the writes): count first.
        """
        if self.quiet:
            return
        if count is not None and background:
            self._counter = threading.Thread(
                target=self._count, args=(count,), daemon=True,
                name='backfill-count')
            self._counter.start()
        elif count is not None:
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
                      masking.mask_text(exc))

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
