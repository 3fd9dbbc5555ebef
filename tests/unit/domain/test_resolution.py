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


"""Resolve on GET: multistore_prefix/domain/resolution.py."""

import copy

import pytest

from multistore_prefix.domain import distinction
from multistore_prefix.domain import exceptions
from multistore_prefix.domain import image as image_mod
from multistore_prefix.domain import resolution
from multistore_prefix import location_map as lmap
from multistore_prefix import resolver as resolver_mod

CONF = '''
[DEFAULT]
enabled_backends = fast:file, slow:file
[fast]
filesystem_store_datadir = /var/lib/glance/images
[slow]
filesystem_store_datadir = /var/lib/glance/images2
'''


class FakeRepo:
    """Below the distinction layer: fails saves as told."""

    def __init__(self, image, failures=()):
        self.image = image
        self.failures = list(failures)
        self.saved = []
        self.gets = 0

    def get(self, image_id):
        self.gets += 1
        return copy.deepcopy(self.image)

    def save(self, image, changes):
        if self.failures:
            raise self.failures.pop(0)
        self.saved.append(changes)


@pytest.fixture
def resolver(make_conf):
    return resolver_mod.Resolver(lmap.LocationMap.from_config(
        make_conf(CONF)))


def _legacy():
    return image_mod.Image('i', 'active', locations=[
        {'id': 1, 'url': 'file:///var/lib/glance/images2/x',
         'metadata': {'keep': 'me'}, 'status': 'active'},
        {'id': 2, 'url': 'file:///var/lib/glance/images/y',
         'metadata': {'store': 'fast'}, 'status': 'active'},
        {'id': 3, 'url': 'file:///elsewhere/z', 'metadata': {},
         'status': 'active'}])


def _stack(base, resolver):
    return resolution.ImageRepoProxy(distinction.ImageRepoProxy(base),
                                     resolver)


def test_get_resolves_and_saves_only_that(resolver):
    base = FakeRepo(_legacy())
    image = _stack(base, resolver).get('i')
    assert [loc['metadata'] for loc in image.locations] == [
        {'keep': 'me', 'store': 'slow'}, {'store': 'fast'}, {}]
    [changes] = base.saved
    assert not (changes.columns or changes.properties_changed
                or changes.locations_added)
    assert [(u.location_id, u.metadata) for u in changes.locations_updated
            ] == [(1, ({'keep': 'me'}, {'keep': 'me', 'store': 'slow'}))]
    # The image handed out is snapshotted as saved: nothing more to write.
    assert not image.changes()


def test_resolved_image_saves_nothing(resolver):
    image = _legacy()
    image.locations[0]['metadata']['store'] = 'slow'
    base = FakeRepo(image)
    _stack(base, resolver).get('i')
    assert base.saved == []


def test_forbidden_still_returns_the_resolved_image(resolver):
    base = FakeRepo(_legacy(), [exceptions.Forbidden('read-only')])
    image = _stack(base, resolver).get('i')
    assert image.locations[0]['metadata']['store'] == 'slow'
    assert base.saved == []
    # Not saved, so still a change for a caller who may save later.
    assert image.changes().locations_updated


def test_conflict_rereads_and_retries(resolver):
    base = FakeRepo(_legacy(), [exceptions.Conflict('i', 'location 1')])
    image = _stack(base, resolver).get('i')
    assert base.gets == 2
    assert len(base.saved) == 1
    assert image.locations[0]['metadata']['store'] == 'slow'


def test_conflicts_without_end_still_return_an_image(resolver):
    failures = [exceptions.Conflict('i', 'location 1') for _ in range(3)]
    base = FakeRepo(_legacy(), failures)
    image = _stack(base, resolver).get('i')
    assert base.gets == 3
    assert image.locations[0]['metadata']['store'] == 'slow'


def test_other_calls_pass_through(resolver):
    calls = []

    class Below:
        def __getattr__(self, name):
            return lambda *args, **kwargs: calls.append(name)

    repo = resolution.ImageRepoProxy(Below(), resolver)
    repo.list()
    repo.add(None)
    repo.save(None, from_state='queued')
    repo.remove(None)
    assert calls == ['list', 'add', 'save', 'remove']
