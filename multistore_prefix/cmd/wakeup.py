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

"""A stop signal reaches the database watchdogs at once."""

import os
import signal
import threading


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class SignalWakeup:
    """Hurry the watchdogs the moment a signal arrives.

    Python runs a signal handler only when the main thread returns to the
    interpreter; a main thread blocked inside a C driver call (libpq
    waiting on a silent socket) would never see it.  The C-level handler
    also writes the signal number to a pipe (``signal.set_wakeup_fd``); a
    thread reading that pipe hurries the watchdogs at once, the blocked
    call fails with a lost connection, and the main thread's handler then
    runs as usual.

    Use it as a context manager in the main thread, around the run.
    """

    def __init__(self, watchdogs, grace: float):
        self.watchdogs = list(watchdogs)
        self.grace = grace
        self._read = self._write = None
        self._previous = None

    def __enter__(self):
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        try:
            self._previous = signal.set_wakeup_fd(self._write,
                                                  warn_on_full_buffer=False)
        except ValueError:  # not the main thread: nothing to wake
            os.close(self._read)
            os.close(self._write)
            self._read = self._write = None
            return self
        threading.Thread(target=self._listen, args=(self._read,),
                         daemon=True, name='signal-wakeup').start()
        return self

    def _listen(self, read_fd: int) -> None:
        try:
            while True:
                received = os.read(read_fd, 64)
                if not received:
                    return
                if not set(received) & _STOP_SIGNALS:
                    continue
                for watchdog in self.watchdogs:
                    watchdog.hurry(self.grace)
                # A second stop signal: no grace at all.
                self.grace = 0
        except OSError:
            return
        finally:
            os.close(read_fd)

    def __exit__(self, *exc_info):
        if self._write is None:
            return False
        signal.set_wakeup_fd(self._previous)
        os.close(self._write)  # the listener reads EOF and ends
        return False
