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


"""The difference between two states of an image: multistore_prefix/domain/
distinction.py."""

from multistore_prefix.domain import distinction
from multistore_prefix.domain import image as image_mod


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
    before = distinction.ImageState.capture(image)
    edit(image)
    return distinction.compute(before, distinction.ImageState.capture(image))


def test_nothing_changed():
    assert not _changes(lambda image: None)


def test_capture_is_a_deep_copy():
    image = _image()
    state = distinction.ImageState.capture(image)
    image.locations[0]['metadata']['k'] = 'changed'
    image.extra_properties['foo'] = 'changed'
    assert state.locations[0].metadata == {'k': 'v'}
    assert state.properties['foo'] == 'bar'


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
