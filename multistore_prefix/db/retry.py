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

A caller that was asked to stop is not kept waiting: ``should_stop`` is
checked before every pause and during it.
"""

import logging
import random
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


def call(database, work: Callable[[], T], what: str,
         should_stop: Callable[[], bool] | None = None) -> T:
    """``work()`` (one whole transaction), tried again as said above.

    :param database: the :class:`~multistore_prefix.db.engine.Database`
        (its ``safe_url``, ``max_retries`` and ``retry_interval``).
    :param what: what the transaction does, for the log line.
    :raises Stopped: ``should_stop()`` became true while retrying; the
        error that was being retried is its cause.
    :raises: the last error, once the retries are spent.
    """
    should_stop = should_stop or (lambda: False)
    deadlocks = lost = 0
    while True:
        try:
            return work()
        except db_exc.DBDeadlock as exc:
            deadlocks += 1
            if deadlocks >= DEADLOCK_ATTEMPTS:
                raise
            pause = min(0.05 * 2 ** deadlocks, DEADLOCK_MAX_PAUSE)
            pause *= random.uniform(0.5, 1.0)  # two losers don't meet again
            _announce(database, what, 'deadlock', exc, pause, deadlocks,
                      DEADLOCK_ATTEMPTS - 1)
            _pause(pause, should_stop, exc)
        except db_exc.DBConnectionError as exc:
            lost += 1
            limit = database.max_retries
            if limit != -1 and lost > limit:
                raise
            _announce(database, what, 'connection failed', exc,
                      database.retry_interval, lost, limit)
            _pause(database.retry_interval, should_stop, exc)


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
