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

"""What a backend said, remembered for a run and asked for once.

A backfill asks about many locations from several threads at once, and
several locations (or stores) often need the same fact: one volume's type,
Cinder's default type.  :class:`FactCache` keeps the answers, bounded by
count, and lets one thread fetch a fact while the others that want it wait
for that answer instead of asking again.
"""

import concurrent.futures
import threading
from typing import Callable, Hashable


class FactCache:
    """A bounded, thread-safe cache whose misses are fetched once.

    When full it forgets everything and starts again: a backfill reads
    locations in id order, so old facts are rarely wanted again, and a
    clear is cheaper than bookkeeping for an order of use.

    :ivar size: the most facts kept.
    """

    def __init__(self, size: int):
        self.size = size
        self._lock = threading.Lock()
        self._facts: dict[Hashable, object] = {}
        self._pending: dict[Hashable, concurrent.futures.Future] = {}

    def get(self, key: Hashable, fetch: Callable[[], object],
            timeout: float):
        """The fact for ``key``: remembered, or ``fetch()``-ed now.

        The first thread to miss calls ``fetch``; the others wait for its
        result up to ``timeout`` seconds.  A fetch that raises is not
        remembered, and every thread waiting for it gets the exception.

        :raises TimeoutError: a waiting thread ran out of ``timeout``.
        """
        with self._lock:
            fact = self._facts.get(key)
            if fact is not None:
                return fact
            future = self._pending.get(key)
            leader = future is None
            if leader:
                future = self._pending[key] = concurrent.futures.Future()
        if not leader:
            return future.result(timeout=timeout)
        try:
            fact = fetch()
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            future.set_exception(exc)
            raise
        with self._lock:
            if len(self._facts) >= self.size:
                self._facts.clear()
            self._facts[key] = fact
            del self._pending[key]
        future.set_result(fact)
        return fact
