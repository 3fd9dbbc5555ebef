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


"""The distinction layer's proxies: multistore_prefix/domain/distinction.py.

The repository below is a fake that records what it is asked to write.
"""

import copy

import pytest

from multistore_prefix.domain import distinction
from multistore_prefix.domain import exceptions
from multistore_prefix.domain import image as image_mod


class FakeRepo:
    def __init__(self):
        self.images = {}
        self.saved = []
        self.added = []
        self.removed = []

    def get(self, image_id):
        return copy.deepcopy(self.images[image_id])

    def list(self, **kwargs):
        return [copy.deepcopy(i) for i in self.images.values()]

    def add(self, image):
        self.added.append(image.image_id)
        self.images[image.image_id] = copy.deepcopy(image)

    def save(self, image, changes):
        self.saved.append(changes)

    def remove(self, image):
        self.removed.append(image.image_id)


@pytest.fixture
def repos():
    base = FakeRepo()
    base.images['i'] = image_mod.Image('i', 'active', name='n',
                                       extra_properties={'a': '1'})
    return base, distinction.ImageRepoProxy(base)


def test_get_snapshots_and_save_passes_only_the_difference(repos):
    base, repo = repos
    image = repo.get('i')
    assert isinstance(image, distinction.ImageProxy)
    image.extra_properties['a'] = '2'
    changes = repo.save(image)
    assert base.saved == [changes]
    assert changes.properties_changed == {'a': ('1', '2')}
    assert not changes.columns


def test_unchanged_image_reaches_nothing(repos):
    base, repo = repos
    assert not repo.save(repo.get('i'))
    assert base.saved == []


def test_second_save_sends_only_newer_changes(repos):
    base, repo = repos
    image = repo.get('i')
    image.name = 'm'
    repo.save(image)
    image.tags.add('t')
    repo.save(image)
    assert [bool(c.columns) for c in base.saved] == [True, False]
    assert base.saved[1].tags_added == {'t'}


def test_proxy_reads_and_writes_through(repos):
    _base, repo = repos
    image = repo.get('i')
    image.name = 'changed'
    assert image.base.name == 'changed' == image.name
    assert image.image_id == 'i'
    assert repr(image).startswith('<ImageProxy')


def test_proxy_copies(repos):
    _base, repo = repos
    image = repo.get('i')
    clone = copy.deepcopy(image)
    clone.name = 'clone'
    assert (image.name, clone.base.name) == ('n', 'clone')


def test_save_needs_an_image_from_the_repository(repos):
    _base, repo = repos
    with pytest.raises(exceptions.NotSnapshotted):
        repo.save(image_mod.Image('i', 'active'))
    with pytest.raises(exceptions.NotSnapshotted):
        repo.save(distinction.ImageProxy(image_mod.Image('i', 'active')))


def test_factory_add_then_save(repos):
    base, repo = repos
    factory = distinction.ImageFactoryProxy(image_mod.ImageFactory())
    image = factory.new_image(image_id='new', name='x')
    assert image.snapshot is None
    assert repo.add(image) is image
    assert base.added == ['new']
    image.name = 'y'
    assert repo.save(image).columns == {'name': ('x', 'y')}


def test_from_state_is_the_expected_status(repos):
    base, repo = repos
    image = repo.get('i')
    image.transition('deactivate')
    assert repo.save(image, from_state='queued').columns == {
        'status': ('queued', 'deactivated')}
    image.name = 'only the name'
    assert repo.save(image, from_state='queued').columns == {
        'name': ('n', 'only the name')}


def test_list_and_remove(repos):
    base, repo = repos
    images = repo.list()
    assert [i.image_id for i in images] == ['i']
    assert not images[0].changes()
    repo.remove(images[0])
    assert base.removed == ['i']
