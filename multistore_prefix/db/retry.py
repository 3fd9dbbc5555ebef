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

"""Try a transaction again after a deadlock or a lost connection.

oslo.db's ``wrap_db_retry`` (the repository's save uses it) sleeps
without a way to stop, counts each call alone, takes ``-1`` for no
retry at all, and ends with a traceback.  A run of the backfill needs
what it cannot give: a stop signal that ends the pause, one count for
every call of a job that meets the same outage (a backfill's read-ahead
and its writes, a write that moves from its fast path to its exact one),
``[database]/max_retries = -1`` as "without end", and one line per
retry that names the database (password masked), the cause and the
count:

* a deadlock (oslo.db's ``DBDeadlock``: MySQL's 1213, also Galera's lost
  certification; PostgreSQL's 40P01) is retried at once, with a short
  growing pause, up to :data:`DEADLOCK_ATTEMPTS` times;
* a lost connection (``DBConnectionError``) is retried
  ``[database]/max_retries`` times, ``[database]/retry_interval``
  seconds apart, as oslo.db does for a database it cannot reach at
  start.
"""

import logging
import random
import threading
import time
from typing import Callable, TypeVar

from oslo_db import exception as db_exc

from multistore_prefix import masking

LOG = logging.getLogger(__name__)

DEADLOCK_ATTEMPTS = 20
#: The longest pause between two tries after a deadlock, in seconds.
DEADLOCK_MAX_PAUSE = 2.0

T = TypeVar('T')


class Stopped(Exception):
    """A retry was given up because the caller was asked to stop."""


class Budget:
    """The retries spent on one outage, by every call that shares it.

    The count starts again once a try that began after the last fault
    succeeds: a try already in flight when the outage began (a read-ahead
    that got its answer just before the cut) does not end the outage.
    """

    def __init__(self):
        self.deadlocks = 0
        self.lost = 0
        self.faults = 0  # every fault counted so far, never reset
        self._lock = threading.Lock()

    def spend(self, deadlock: bool) -> int:
        """One more retry of a deadlock or a lost connection; its number."""
        with self._lock:
            self.faults += 1
            if deadlock:
                self.deadlocks += 1
                return self.deadlocks
            self.lost += 1
            return self.lost

    def answered(self, faults_before: int) -> None:
        """A try begun when ``faults`` was ``faults_before`` succeeded."""
        with self._lock:
            if self.faults == faults_before:
                self.deadlocks = self.lost = 0


def call(database, work: Callable[[], T], what: str,
         should_stop: Callable[[], bool] | None = None,
         budget: Budget | None = None) -> T:
    """``work()`` (one whole transaction), tried again as said above.

    :param database: the :class:`~multistore_prefix.db.engine.Database`.
    :param what: what the transaction does, for the log line.
    :raises Stopped: ``should_stop()`` became true while retrying; the
        error that was being retried is its cause.
    :raises: the last error, once the retries are spent.
    """
    should_stop = should_stop or (lambda: False)
    budget = budget or Budget()
    while True:
        faults_before = budget.faults
        try:
            result = work()
        except db_exc.DBDeadlock as exc:
            attempt = budget.spend(deadlock=True)
            if attempt >= DEADLOCK_ATTEMPTS:
                raise
            pause = min(0.05 * 2 ** attempt, DEADLOCK_MAX_PAUSE)
            pause *= random.uniform(0.5, 1.0)  # two losers don't meet again
            _announce(database, what, 'deadlock', exc, pause, attempt,
                      DEADLOCK_ATTEMPTS - 1)
            _pause(pause, should_stop, exc)
        except db_exc.DBConnectionError as exc:
            attempt = budget.spend(deadlock=False)
            limit = database.max_retries
            if limit != -1 and attempt > limit:
                raise
            _announce(database, what, 'connection failed', exc,
                      database.retry_interval, attempt, limit)
            _pause(database.retry_interval, should_stop, exc)
        else:
            budget.answered(faults_before)
            return result


def _announce(database, what, kind, exc, pause, attempt, limit):
    of = 'without end' if limit == -1 else f'of {limit}'
    LOG.warning('database %s: %s while %s (%s); trying again in %.1f s '
                '(retry %d %s)', database.safe_url, kind, what,
                masking.mask_error(exc), pause, attempt, of)


def _pause(seconds: float, should_stop, cause: BaseException) -> None:
    end = time.monotonic() + seconds
    while True:
        if should_stop():
            raise Stopped(masking.mask_error(cause)) from cause
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.2))
