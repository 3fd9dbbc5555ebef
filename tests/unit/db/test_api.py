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


"""Row reads and compare-and-swap writes: multistore_prefix/db/api.py."""

import json

from oslo_utils import timeutils
import pytest
import sqlalchemy as sa

from multistore_prefix.db import api
from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import exceptions
from multistore_prefix.db import models
from multistore_prefix import metadata as metadata_text

IMAGE = '11111111-2222-3333-4444-555555555555'
URL = 'file:///var/lib/glance/images/x'


@pytest.fixture
def database(db_url):
    database = db_engine.Database(db_url)
    with database.writer() as conn:
        api.image_create(
            conn, {'id': IMAGE, 'name': 'Bar', 'status': 'active'},
            {'foo': 'Bar', 'empty': None}, ['t1'],
            [{'url': URL, 'metadata': {'a': 1}, 'status': 'active'}],
            timeutils.utcnow())
    yield database
    database.dispose()


def _now():
    return timeutils.utcnow()


def _location_id(database):
    with database.reader() as conn:
        return api.image_get(conn, IMAGE)['locations'][0]['id']


def test_image_get_returns_everything(database):
    with database.reader() as conn:
        image = api.image_get(conn, IMAGE)
    assert image['name'] == 'Bar'
    assert image['visibility'] == 'shared'
    assert (image['min_disk'], image['protected']) == (0, False)
    assert image['properties'] == {'foo': 'Bar', 'empty': None}
    assert image['tags'] == ['t1']
    assert image['locations'] == [{'id': image['locations'][0]['id'],
                                   'url': URL, 'metadata': {'a': 1},
                                   'status': 'active'}]


def test_image_get_missing(database):
    with database.reader() as conn:
        with pytest.raises(exceptions.NotFound):
            api.image_get(conn, 'nope')


def test_image_get_all_filters_and_pages(database):
    with database.writer() as conn:
        for n in range(3):
            api.image_create(conn, {'id': f'img-{n}', 'status': 'queued',
                                    'owner': 'o'}, {}, [], [], _now())
    with database.reader() as conn:
        assert [i['id'] for i in api.image_get_all(
            conn, filters={'owner': 'o'}, marker='img-0', limit=1)] == [
                'img-1']
        with pytest.raises(ValueError):
            api.image_get_all(conn, filters={'deleted': True})


def test_image_update_compare_and_swap(database):
    with database.writer() as conn:
        api.image_update(conn, IMAGE, {'name': ('Bar', 'new'),
                                       'min_ram': (0, 512)}, _now())
    with database.writer() as conn:
        # Already the wanted value: nothing to conflict with.
        api.image_update(conn, IMAGE, {'name': ('Bar', 'new')}, _now())
    with pytest.raises(exceptions.Conflict) as caught:
        with database.writer() as conn:
            api.image_update(conn, IMAGE, {'min_ram': (512, 1),
                                           'name': ('Bar', 'other')}, _now())
    assert (caught.value.attribute, caught.value.expected,
            caught.value.found) == ('name', 'Bar', 'new')
    with database.reader() as conn:
        image = api.image_get(conn, IMAGE)
    assert (image['name'], image['min_ram']) == ('new', 512)


def test_compare_is_exact_even_where_collation_is_not(database):
    """MySQL says 'Bar' = 'bar'; a compare-and-swap must not."""
    with pytest.raises(exceptions.Conflict):
        with database.writer() as conn:
            api.image_update(conn, IMAGE, {'name': ('bar', 'x')}, _now())
    with pytest.raises(exceptions.Conflict):
        with database.writer() as conn:
            api.property_update(conn, IMAGE, 'foo', 'bar', 'x', _now())
    with pytest.raises(exceptions.Conflict):
        with database.writer() as conn:
            api.property_update(conn, IMAGE, 'foo', 'Bar ', 'x', _now())


def test_image_update_of_deleted_image(database):
    with database.writer() as conn:
        api.image_destroy(conn, IMAGE, _now())
    with pytest.raises(exceptions.NotFound):
        with database.writer() as conn:
            api.image_update(conn, IMAGE, {'name': ('Bar', 'x')}, _now())
    with pytest.raises(exceptions.NotFound):
        with database.writer() as conn:
            api.image_destroy(conn, IMAGE, _now())


def test_image_update_rejects_unknown_columns(database):
    with pytest.raises(ValueError):
        with database.writer() as conn:
            api.image_update(conn, IMAGE, {'deleted': (False, True)}, _now())


def test_property_writes(database):
    with database.writer() as conn:
        api.property_update(conn, IMAGE, 'empty', None, 'set', _now())
        api.property_remove(conn, IMAGE, 'foo', 'Bar', _now())
        api.property_add(conn, IMAGE, 'foo', 'again', _now())
        # Removing what is gone already is the same end.
        api.property_remove(conn, IMAGE, 'never', 'x', _now())
    with database.reader() as conn:
        assert api.image_get(conn, IMAGE)['properties'] == {
            'empty': 'set', 'foo': 'again'}
    with pytest.raises(exceptions.Duplicate):
        with database.writer() as conn:
            api.property_add(conn, IMAGE, 'foo', 'twice', _now())
    with pytest.raises(exceptions.Conflict) as caught:
        with database.writer() as conn:
            api.property_remove(conn, IMAGE, 'foo', 'stale', _now())
    assert caught.value.attribute == 'property foo'
    with pytest.raises(exceptions.Conflict) as caught:
        with database.writer() as conn:
            api.property_update(conn, IMAGE, 'gone', 'x', 'y', _now())
    assert 'removed' in str(caught.value)


def test_tags(database):
    with database.writer() as conn:
        api.tag_add(conn, IMAGE, 't2', _now())
        api.tag_remove(conn, IMAGE, 't1', _now())
        api.tag_remove(conn, IMAGE, 't1', _now())
        api.tag_add(conn, IMAGE, 't1', _now())
    with database.reader() as conn:
        assert sorted(api.image_get(conn, IMAGE)['tags']) == ['t1', 't2']
    with pytest.raises(exceptions.Duplicate):
        with database.writer() as conn:
            api.tag_add(conn, IMAGE, 't2', _now())


def test_location_update_first_try_is_one_update(database, statement_log):
    location_id = _location_id(database)
    with statement_log(database.engine) as log:
        with database.writer() as conn:
            merged = api.location_update(
                conn, IMAGE, location_id, _now(),
                metadata=({'a': 1}, {'a': 1, 'store': 'fast'}))
    assert merged == {'a': 1, 'store': 'fast'}
    assert len(log.writes) == 1
    assert not [s for s in log.statements if s.startswith('SELECT')]


def _set_text(database, location_id, text):
    with database.writer() as conn:
        conn.execute(sa.update(models.image_locations).where(
            models.image_locations.c.id == location_id).values(
                meta_data=text))


def test_location_update_merges_into_a_changed_row(database):
    location_id = _location_id(database)
    # Another writer added a key, with its own spacing.
    _set_text(database, location_id, '{"a":1,  "other": "kept"}')
    with database.writer() as conn:
        merged = api.location_update(
            conn, IMAGE, location_id, _now(),
            metadata=({'a': 1}, {'a': 1, 'store': 'fast'}))
    assert merged == {'a': 1, 'other': 'kept', 'store': 'fast'}
    with database.reader() as conn:
        stored = api.image_get(conn, IMAGE)['locations'][0]['metadata']
    assert stored == merged


def test_location_update_same_key_conflict(database):
    location_id = _location_id(database)
    _set_text(database, location_id, json.dumps({'a': 2}))
    with pytest.raises(exceptions.Conflict) as caught:
        with database.writer() as conn:
            api.location_update(conn, IMAGE, location_id, _now(),
                                metadata=({'a': 1}, {'a': 3}))
    assert caught.value.attribute == f"location {location_id} metadata " \
                                     f"key 'a'"
    assert (caught.value.expected, caught.value.found) == (1, 2)


def test_location_update_same_change_already_made(database, statement_log):
    location_id = _location_id(database)
    _set_text(database, location_id, '{"store": "fast",  "a": 1}')
    with database.writer() as conn:
        merged = api.location_update(
            conn, IMAGE, location_id, _now(),
            metadata=({'a': 1}, {'a': 1, 'store': 'fast'}))
    assert merged == {'store': 'fast', 'a': 1}


def test_location_update_status_and_removal(database):
    location_id = _location_id(database)
    with database.writer() as conn:
        api.location_update(conn, IMAGE, location_id, _now(),
                            status=('active', 'pending_delete'))
    with pytest.raises(exceptions.Conflict) as caught:
        with database.writer() as conn:
            api.location_update(conn, IMAGE, location_id, _now(),
                                status=('active', 'deleted'))
    assert caught.value.found == 'pending_delete'
    with database.writer() as conn:
        api.location_remove(conn, location_id, _now())
    with pytest.raises(exceptions.Conflict) as caught:
        with database.writer() as conn:
            api.location_update(conn, IMAGE, location_id, _now(),
                                metadata=({'a': 1}, {}))
    assert 'removed' in str(caught.value)


@pytest.mark.parametrize('text, before, after, expected', [
    (None, None, {'store': 'fast'}, {'store': 'fast'}),
    ('not json', 'not json', {'store': 'fast'}, {'store': 'fast'}),
])
def test_location_update_of_metadata_that_is_not_an_object(
        database, text, before, after, expected):
    location_id = _location_id(database)
    _set_text(database, location_id, text)
    with database.writer() as conn:
        assert api.location_update(conn, IMAGE, location_id, _now(),
                                   metadata=(before, after)) == expected


def test_location_update_refuses_to_merge_into_a_non_object(database):
    location_id = _location_id(database)
    _set_text(database, location_id, '[1, 2]')
    with pytest.raises(exceptions.Conflict) as caught:
        with database.writer() as conn:
            api.location_update(conn, IMAGE, location_id, _now(),
                                metadata=({'a': 1}, {'a': 1, 'store': 'x'}))
    assert 'not a JSON object' in str(caught.value)


def test_location_duplicate_masks_credentials(database):
    url = 'swift+https://user:secretkey@auth.example.com/v3/c/o'
    with database.writer() as conn:
        api.location_add(conn, IMAGE, url, {}, 'active', _now())
    with pytest.raises(exceptions.Duplicate) as caught:
        with database.writer() as conn:
            api.location_add(conn, IMAGE, url, {}, 'active', _now())
    assert 'secretkey' not in str(caught.value)
    assert 'secretkey' not in caught.value.key


def test_image_destroy_soft_deletes_everything(database):
    with database.writer() as conn:
        api.image_destroy(conn, IMAGE, _now())
    with database.reader() as conn:
        for table in (models.image_properties, models.image_tags,
                      models.image_locations):
            assert not conn.execute(sa.select(table.c.id).where(
                table.c.deleted == sa.false())).all()
        row = conn.execute(sa.select(models.images)).mappings().one()
    assert (row['deleted'], row['status']) == (True, 'deleted')
    assert row['deleted_at'] is not None


# -- pure ---------------------------------------------------------------------

@pytest.mark.parametrize('current, before, after, merged', [
    ({'a': 1}, {'a': 1}, {'a': 1, 'store': 's'}, {'a': 1, 'store': 's'}),
    ({'a': 1, 'b': 2}, {'a': 1}, {'a': 1, 'store': 's'},
     {'a': 1, 'b': 2, 'store': 's'}),
    ({'a': 1, 'b': 2}, {'a': 1}, {}, {'b': 2}),
    ({'store': 's'}, {}, {'store': 's'}, {'store': 's'}),
    ({'a': 5}, {'a': 1, 'x': 0}, {'a': 1}, {'a': 5}),
])
def test_merge_metadata(current, before, after, merged):
    assert api.merge_metadata(current, before, after) == merged


@pytest.mark.parametrize('current, before, after', [
    ({'a': 2}, {'a': 1}, {'a': 3}),
    ({}, {'a': 1}, {'a': 3}),
    ({'a': 2}, {}, {'a': 3}),
])
def test_merge_metadata_conflicts(current, before, after):
    with pytest.raises(exceptions.Conflict) as caught:
        api.merge_metadata(current, before, after)
    assert caught.value.attribute == "metadata key 'a'"


def test_metadata_text():
    assert metadata_text.dump({'a': 1}) == '{"a": 1}'
    assert metadata_text.dump(None) is None
    assert api.load_metadata('{"a": 1}') == {'a': 1}
    # Text that is not a JSON object loads as the reason, never a guess;
    # it keeps the text it stands for.
    bad = api.load_metadata('nope')
    assert (str(bad), bad.text) == ('meta_data is not JSON', 'nope')
    assert isinstance(bad, metadata_text.Bad)
    assert api.load_metadata(None) is None
    with pytest.raises(ValueError):
        metadata_text.dump({'a': float('nan')})
