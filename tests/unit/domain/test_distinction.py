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


"""The distinction layer: multistore_prefix/domain/distinction.py.

The proxies' repository below is a fake that records what it is asked to
write; the difference itself is tested pure, at the end.
"""

import copy

import pytest

from multistore_prefix.domain import distinction
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
    with pytest.raises(distinction.NotSnapshotted):
        repo.save(image_mod.Image('i', 'active'))
    with pytest.raises(distinction.NotSnapshotted):
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


# --- the difference itself (pure) ------------------------------------------

def _image(**kwargs):
    kwargs.setdefault('extra_properties', {'foo': 'bar', 'goo': 'far'})
    kwargs.setdefault('tags', {'a', 'b'})
    kwargs.setdefault('locations', [
        {'id': 1, 'url': 'file:///a', 'metadata': {'k': 'v'},
         'status': 'active'},
        {'id': 2, 'url': 'file:///b', 'metadata': {}, 'status': 'active'}])
    return image_mod.Image('id-1', 'active', name='n', **kwargs)


def _changes(edit):
    image = _image()
    before = copy.deepcopy(image)
    edit(image)
    return distinction.compute(before, image)


def test_nothing_changed():
    assert not _changes(lambda image: None)


def test_snapshot_is_a_deep_copy():
    image = _image()
    proxy = distinction.ImageProxy(image)
    proxy.mark_saved()
    image.locations[0]['metadata']['k'] = 'changed'
    image.extra_properties['foo'] = 'changed'
    assert proxy.snapshot.locations[0]['metadata'] == {'k': 'v'}
    assert proxy.snapshot.extra_properties['foo'] == 'bar'
    assert proxy.changes().properties_changed == {'foo': ('bar', 'changed')}


def test_columns():
    def edit(image):
        image.name = 'm'
        image.protected = True
    changes = _changes(edit)
    assert changes.columns == {'name': ('n', 'm'), 'protected': (False, True)}
    assert not (changes.properties_added or changes.locations_updated)


def test_properties():
    def edit(image):
        image.extra_properties['foo'] = 'baz'
        del image.extra_properties['goo']
        image.extra_properties['new'] = 'x'
    changes = _changes(edit)
    assert changes.properties_changed == {'foo': ('bar', 'baz')}
    assert changes.properties_removed == {'goo': 'far'}
    assert changes.properties_added == {'new': 'x'}
    assert not changes.columns


def test_tags():
    def edit(image):
        image.tags.discard('a')
        image.tags.add('c')
    changes = _changes(edit)
    assert (changes.tags_added, changes.tags_removed) == ({'c'}, {'a'})


def test_location_metadata_and_status():
    def edit(image):
        image.locations[0]['metadata']['store'] = 'fast'
        image.locations[1]['status'] = 'pending_delete'
    changes = _changes(edit)
    assert changes.locations_updated == [
        distinction.LocationUpdate(
            0, 1, 'file:///a', ({'k': 'v'}, {'k': 'v', 'store': 'fast'}),
            None),
        distinction.LocationUpdate(1, 2, 'file:///b', None,
                                   ('active', 'pending_delete'))]


def test_locations_added_and_removed():
    def edit(image):
        image.locations.pop(0)
        image.locations.append({'url': 'file:///c'})
    changes = _changes(edit)
    assert [loc.location_id for loc in changes.locations_removed] == [1]
    assert [(loc.index, loc.url, loc.location_id, loc.status, loc.metadata)
            for loc in changes.locations_added] == [
                (1, 'file:///c', None, 'active', {})]
    assert not changes.locations_updated


def test_rebuilt_location_list_keeps_identity_by_url():
    """Glance code often assigns a new list of dicts without ids."""
    def edit(image):
        image.locations = [
            {'url': 'file:///b', 'metadata': {'store': 's'},
             'status': 'active'},
            {'url': 'file:///a', 'metadata': {'k': 'v'},
             'status': 'active'}]
    changes = _changes(edit)
    assert not changes.locations_added and not changes.locations_removed
    assert changes.locations_updated == [
        distinction.LocationUpdate(0, 2, 'file:///b', ({}, {'store': 's'}),
                                   None)]


def test_changed_url_of_a_row_is_rewritten_in_place():
    def edit(image):
        image.locations[0]['url'] = 'file:///moved'
    changes = _changes(edit)
    assert not changes.locations_removed and not changes.locations_added
    assert changes.locations_updated == [distinction.LocationUpdate(
        0, 1, 'file:///moved', None, None, ('file:///a', 'file:///moved'))]


def test_new_url_without_a_row_id_is_a_new_location():
    def edit(image):
        image.locations = [
            {'url': 'file:///moved', 'metadata': {}, 'status': 'active'},
            dict(image.locations[1])]
    changes = _changes(edit)
    assert [loc.location_id for loc in changes.locations_removed] == [1]
    assert [loc.url for loc in changes.locations_added] == ['file:///moved']


def test_type_change_is_a_change():
    changes = _changes(lambda image: image.extra_properties.update(foo=1))
    assert changes.properties_changed == {'foo': ('bar', 1)}
