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

oslo.db turns each engine's errors into the same exceptions
(``DBDeadlock``: MySQL's 1213, which is also how Galera reports a lost
certification, and PostgreSQL's 40P01; ``DBConnectionError``: the server
cannot be reached or the connection broke; :mod:`multistore_prefix.db.
engine` adds libpq's newer wording).  This runs a whole transaction again
on either, the same way on every engine, and says so in one line that
names the database (password masked) and the cause:

* a deadlock is retried at once, with a short growing pause, up to
  :data:`DEADLOCK_ATTEMPTS` times;
* a lost connection is retried ``[database]/max_retries`` times (-1:
  without end), ``[database]/retry_interval`` seconds apart, as oslo.db
  does for a database that cannot be reached at start.

One fault is counted once: the calls of one job (a backfill's read-ahead
and its writes, a write that moves from its fast path to its exact one)
share a :class:`Budget`, so however many of them meet the same outage,
it is retried at most those limits in all, and each line's count says
so.  The count starts again once the database answers.
"""

import logging
import random
import threading
import time
from typing import Callable, TypeVar

from oslo_db import exception as db_exc

from multistore_prefix.db import exceptions

LOG = logging.getLogger(__name__)

#: Deadlocks (and Galera certification failures) tried again at most this
#: many times for one transaction.
DEADLOCK_ATTEMPTS = 20
#: The longest pause between two tries after a deadlock, in seconds.
DEADLOCK_MAX_PAUSE = 2.0

T = TypeVar('T')


class Stopped(Exception):
    """A retry was given up because the caller was asked to stop."""


class Budget:
    """The retries spent on one fault, by every call that shares it.

    :ivar deadlocks: deadlocks tried again.
    :ivar lost: lost connections tried again.
    """

    def __init__(self):
        self.deadlocks = 0
        self.lost = 0
        self._lock = threading.Lock()

    def spend(self, deadlock: bool) -> int:
        """One more retry of a deadlock or a lost connection; its number."""
        with self._lock:
            if deadlock:
                self.deadlocks += 1
                return self.deadlocks
            self.lost += 1
            return self.lost

    def answered(self) -> None:
        """The database answered: the fault is over."""
        with self._lock:
            self.deadlocks = self.lost = 0


def call(database, work: Callable[[], T], what: str,
         should_stop: Callable[[], bool] | None = None,
         budget: Budget | None = None) -> T:
    """``work()`` (one whole transaction), tried again as said above.

    :param database: the :class:`~multistore_prefix.db.engine.Database`
        (its ``safe_url``, ``max_retries`` and ``retry_interval``).
    :param what: what the transaction does, for the log line.
    :param budget: the retries already spent on the fault by other calls
        (counted on, and cleared once ``work()`` succeeds); a new one by
        default.
    :raises Stopped: ``should_stop()`` became true while retrying; the
        error that was being retried is its cause.
    :raises: the last error, once the retries are spent.
    """
    should_stop = should_stop or (lambda: False)
    budget = budget or Budget()
    while True:
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
            budget.answered()
            return result


def _announce(database, what, kind, exc, pause, attempt, limit):
    of = 'without end' if limit == -1 else f'of {limit}'
    LOG.warning('database %s: %s while %s (%s); trying again in %.1f s '
                '(retry %d %s)', database.safe_url, kind, what,
                exceptions.describe(exc), pause, attempt, of)


def _pause(seconds: float, should_stop, cause: BaseException) -> None:
    end = time.monotonic() + seconds
    while True:
        if should_stop():
            raise Stopped(exceptions.describe(cause)) from cause
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.2))
