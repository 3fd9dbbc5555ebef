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

"""The Cinder client's fact cache (multistore_prefix/drivers/cinder_client)."""

import threading

import pytest

from multistore_prefix.drivers import cinder_client as facts


def test_a_fact_is_fetched_once_and_remembered():
    cache = facts.FactCache(10)
    calls = []
    for _ in range(3):
        assert cache.get('k', lambda: calls.append(1) or 'v', 1.0) == 'v'
    assert calls == [1]


def test_threads_that_want_one_fact_wait_for_one_fetch():
    cache = facts.FactCache(10)
    started, release = threading.Event(), threading.Event()
    calls, answers = [], []

    def fetch():
        calls.append(1)
        started.set()
        release.wait(5)
        return 'v'

    def want():
        answers.append(cache.get('k', fetch, 5.0))

    leader = threading.Thread(target=want)
    leader.start()
    started.wait(5)
    waiters = [threading.Thread(target=want) for _ in range(4)]
    for thread in waiters:
        thread.start()
    release.set()
    for thread in [leader] + waiters:
        thread.join(5)
    assert answers == ['v'] * 5
    assert calls == [1]


def test_a_failed_fetch_is_not_remembered():
    cache = facts.FactCache(10)

    def fail():
        raise LookupError('down')

    with pytest.raises(LookupError):
        cache.get('k', fail, 1.0)
    assert cache.get('k', lambda: 'v', 1.0) == 'v'


def test_a_waiter_gives_up_at_its_timeout():
    cache = facts.FactCache(10)
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(5)
        return 'v'

    leader = threading.Thread(target=cache.get, args=('k', slow, 5.0))
    leader.start()
    started.wait(5)
    with pytest.raises(TimeoutError):
        cache.get('k', slow, 0.05)
    release.set()
    leader.join(5)
    assert cache.get('k', slow, 0.05) == 'v'


def test_a_full_cache_forgets_and_starts_again():
    cache = facts.FactCache(2)
    calls = []

    def fetch(value):
        return lambda: calls.append(value) or value

    for key in ('a', 'b', 'a', 'c', 'a'):
        cache.get(key, fetch(key), 1.0)
    assert calls == ['a', 'b', 'c', 'a']
