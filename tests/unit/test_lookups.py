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

"""Backend-assisted resolution: multistore_prefix/lookups.py."""

import threading
import time

import pytest

from multistore_prefix import deciding
from multistore_prefix.drivers import base
from multistore_prefix import location_map as lmap
from multistore_prefix import lookups
from multistore_prefix import resolver as resolver_mod

CONF = """
    [DEFAULT]
    enabled_backends = fast:cinder, slow:cinder, files:file
    [files]
    filesystem_store_datadir = /var/lib/glance/images
"""


class VolumeTypes:
    """A backend that knows which volumes are a store's (a table)."""

    def __init__(self, store_id, volumes, delay=0.0, fail=None):
        self.store_id = store_id
        self.volumes = volumes
        self.delay = delay
        self.fail = fail
        self.asked = []
        self.lock = threading.Lock()

    def wants(self, canon):
        return canon.scheme == 'cinder' and not canon.path

    def lookup(self, canon, timeout):
        with self.lock:
            self.asked.append(canon.authority)
        time.sleep(self.delay)
        if self.fail:
            raise self.fail
        answer = self.volumes.get(canon.authority)
        if answer is None:
            return base.Resolution(None, base.NOT_FOUND,
                                   f'{self.store_id}: no volume')
        if isinstance(answer, str) and answer.startswith('backend-'):
            return base.Resolution(None, answer,
                                   f'{self.store_id}: {answer}')
        if answer != self.store_id:
            return base.Resolution(None, base.ELSEWHERE,
                                   f'{self.store_id}: type {answer}')
        return base.Resolution(
            self.store_id, url=f'cinder://{self.store_id}/{canon.authority}')


@pytest.fixture
def location_map(make_conf):
    return lmap.LocationMap.from_config(make_conf(CONF))


def both(volumes, **kwargs):
    return lookups.BackendLookups(
        [('fast', VolumeTypes('fast', volumes, **kwargs)),
         ('slow', VolumeTypes('slow', volumes, **kwargs))])


@pytest.mark.parametrize('volumes, store, url, reason', [
    ({'v1': 'fast'}, 'fast', 'cinder://fast/v1', None),
    ({'v1': 'slow'}, 'slow', 'cinder://slow/v1', None),
    ({}, None, None, base.NOT_FOUND),
    ({'v1': 'bronze'}, None, None, base.ELSEWHERE),
    ({'v1': base.UNAVAILABLE}, None, None, base.UNAVAILABLE),
    ({'v1': base.FORBIDDEN}, None, None, base.FORBIDDEN),
])
def test_one_answer_per_url(volumes, store, url, reason):
    result = both(volumes).resolve('cinder://v1')
    assert (result.store, result.url, result.reason) == (store, url, reason)


def test_two_owners_are_a_conflict():
    result = lookups.BackendLookups(
        [('fast', VolumeTypes('fast', {'v1': 'fast'})),
         ('slow', VolumeTypes('fast', {'v1': 'fast'}))]).resolve(
        'cinder://v1')
    assert result.store is None and result.reason == lmap.CONFLICT
    assert 'fast, slow' in result.detail


def test_unavailable_beats_not_found():
    # One backend could not answer: the volume may be its; rerun later.
    result = lookups.BackendLookups(
        [('fast', VolumeTypes('fast', {'v1': base.UNAVAILABLE})),
         ('slow', VolumeTypes('slow', {}))]).resolve('cinder://v1')
    assert result.reason == base.UNAVAILABLE


def test_one_owner_is_no_proof_while_another_store_cannot_answer():
    result = lookups.BackendLookups(
        [('fast', VolumeTypes('fast', {'v1': 'fast'})),
         ('slow', VolumeTypes('slow', {'v1': base.FORBIDDEN}))]).resolve(
        'cinder://v1')
    assert result.store is None and result.reason == base.FORBIDDEN
    assert 'fast claims' in result.detail


def test_a_lookup_that_raises_is_unavailable_not_a_crash():
    result = lookups.BackendLookups(
        [('fast', VolumeTypes('fast', {}, fail=RuntimeError('boom')))]
    ).resolve('cinder://v1')
    assert result.reason == base.UNAVAILABLE and 'fast' in result.detail


def test_many_urls_run_concurrently_and_once_each():
    backend = VolumeTypes('fast', {f'v{i}': 'fast' for i in range(16)},
                          delay=0.1)
    group = lookups.BackendLookups([('fast', backend)], max_workers=8)
    started = time.monotonic()
    answers = group.resolve_many([f'cinder://v{i}' for i in range(16)] * 2)
    elapsed = time.monotonic() - started
    assert {a.store for a in answers.values()} == {'fast'}
    assert sorted(backend.asked) == sorted(f'v{i}' for i in range(16))
    assert elapsed < 16 * 0.1 / 2  # far less than one at a time


def test_wants_only_what_a_backend_can_answer():
    group = both({})
    assert group.wants('cinder://v1')
    assert not group.wants('cinder://fast/v1')
    assert not group.wants('file:///x')
    assert not group.wants('not a url')
    assert not lookups.BackendLookups([])


def _decide(location_map, rows, backends=None):
    decider = deciding.Decider(resolver_mod.Resolver(location_map),
                               lookups=backends)
    batch = decider.classify([(n, 'i', url, text) for n, (url, text)
                              in enumerate(rows, 1)], len(rows))
    if backends is not None:
        decider.ask_backends(batch)
    return batch


def test_the_resolver_asks_backends_only_what_no_prefix_owns(location_map):
    backends = both({'v1': 'slow', 'v2': 'fast'})
    batch = _decide(location_map, [
        ('cinder://v1', '{}'), ('cinder://fast/v2', '{}'),
        ('file:///var/lib/glance/images/x', '{}'),
        ('cinder://v9', '{"store": "renamed"}')], backends)
    assert [(w.location_id, w.store) for w in batch.writes] == [
        (2, 'fast'), (3, 'files')]
    assert [(r.location_id, r.store, r.new_url, r.metadata, r.previous)
            for r in batch.rewrites] == [
        (1, 'slow', 'cinder://slow/v1', {}, None)]
    assert [(u.location_id, u.reason) for u in batch.unresolved] == [
        (4, base.NOT_FOUND)]
    assert batch.asked == []
    asked = backends.lookups[0][1].asked
    assert sorted(asked) == ['v1', 'v9']


def test_the_resolver_asks_about_legacy_volume_ids(location_map):
    # A real volume id: the location map says "names no store", and the
    # backends still get the question.
    volume = '5b1c4f9e-0d3a-4b6e-9f2c-7a8d1e3b5c60'
    url = f'cinder://{volume}'
    assert location_map.explain(url).reason == lmap.NO_STORE_IN_URL
    batch = _decide(location_map, [(url, '{}')], both({volume: 'slow'}))
    assert [(r.store, r.new_url) for r in batch.rewrites] == [
        ('slow', f'cinder://slow/{volume}')]
    assert batch.unresolved == []

    batch = _decide(location_map, [(url, '{}')])
    assert [u.reason for u in batch.unresolved] == [lmap.NO_STORE_IN_URL]


def test_without_lookups_nothing_is_asked(location_map):
    batch = _decide(location_map, [('cinder://v1', '{}')])
    assert [u.reason for u in batch.unresolved] == [lmap.NO_PREFIX]
    assert batch.asked == []
