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


"""What reaches the database, counted with SQLAlchemy's events.

A one-property save is one UPDATE; a GET that resolves one legacy location
is one UPDATE of that location row; a GET of a resolved image, or a save of
an unchanged one, writes nothing.
"""

import pytest

LEGACY = 'file:///var/lib/glance/images2/a'
RESOLVED = 'file:///var/lib/glance/images/b'


def _add(gateway, properties=20, tags=5):
    image = gateway.get_image_factory().new_image(
        name='counted', disk_format='qcow2', container_format='bare',
        extra_properties={f'p{i}': f'v{i}' for i in range(properties)},
        tags=[f't{i}' for i in range(tags)])
    image.locations.append({'url': LEGACY, 'metadata': {},
                            'status': 'active'})
    image.locations.append({'url': RESOLVED, 'metadata': {'store': 'fast'},
                            'status': 'active'})
    gateway.get_repo().add(image)
    return image.image_id


def test_one_property_save_is_one_update(db_url, make_gateway,
                                         statement_log):
    gateway = make_gateway(db_url, stores=None)
    repo = gateway.get_repo()
    image = repo.get(_add(gateway))
    image.extra_properties['p7'] = 'changed'
    with statement_log(gateway.database.engine) as log:
        repo.save(image)
    assert len(log.writes) == 1
    assert log.writes[0].lstrip().upper().startswith(
        'UPDATE IMAGE_PROPERTIES')
    assert not [s for s in log.statements if s.upper().startswith('SELECT')]


def test_unchanged_save_sends_nothing(db_url, make_gateway, statement_log):
    gateway = make_gateway(db_url, stores=None)
    repo = gateway.get_repo()
    image = repo.get(_add(gateway))
    with statement_log(gateway.database.engine) as log:
        assert not repo.save(image)
    assert log.statements == []


def test_get_resolving_one_location_is_one_update(db_url, make_gateway,
                                                  statement_log):
    gateway = make_gateway(db_url)
    image_id = _add(make_gateway(db_url, stores=None))
    with statement_log(gateway.database.engine) as log:
        image = gateway.get_repo().get(image_id)
    assert image.locations[0]['metadata'] == {'store': 'slow'}
    assert len(log.writes) == 1
    update = log.writes[0].upper()
    assert update.lstrip().startswith('UPDATE IMAGE_LOCATIONS')
    set_clause = update.split(' WHERE ')[0]
    assert 'META_DATA' in set_clause and 'UPDATED_AT' in set_clause
    assert set_clause.count('=') == 2


def test_get_of_resolved_image_writes_nothing(db_url, make_gateway,
                                              statement_log):
    gateway = make_gateway(db_url)
    image_id = _add(make_gateway(db_url, stores=None))
    gateway.get_repo().get(image_id)
    with statement_log(gateway.database.engine) as log:
        image = gateway.get_repo().get(image_id)
    assert [loc['metadata']['store'] for loc in image.locations] == [
        'slow', 'fast']
    assert log.writes == []


@pytest.mark.parametrize('edit, table', [
    (lambda image: setattr(image, 'name', 'renamed'), 'IMAGES'),
    (lambda image: image.tags.add('new'), 'IMAGE_TAGS'),
    (lambda image: image.tags.discard('t1'), 'IMAGE_TAGS'),
    (lambda image: image.extra_properties.pop('p1'), 'IMAGE_PROPERTIES'),
    (lambda image: image.extra_properties.update(new='x'),
     'IMAGE_PROPERTIES'),
    (lambda image: image.locations[1]['metadata'].update(k='v'),
     'IMAGE_LOCATIONS'),
    (lambda image: image.locations.pop(1), 'IMAGE_LOCATIONS'),
], ids=['name', 'tag-added', 'tag-removed', 'property-removed',
        'property-added', 'location-metadata', 'location-removed'])
def test_each_kind_of_change_is_one_statement(db_url, make_gateway,
                                              statement_log, edit, table):
    gateway = make_gateway(db_url, stores=None)
    repo = gateway.get_repo()
    image = repo.get(_add(gateway))
    edit(image)
    with statement_log(gateway.database.engine) as log:
        repo.save(image)
    assert len(log.writes) == 1, log.writes
    assert f' {table} ' in f' {log.writes[0].upper()} '.replace('(', ' ')
    assert repo.save(repo.get(image.image_id)).__bool__() is False
