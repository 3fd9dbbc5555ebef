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


"""Uniqueness by constraints: one live property per name, one live location
per URL, one live tag per value, even with soft-deleted twins.

Writers insert; the database refuses the second live row and the caller gets
a clean :class:`~multistore_prefix.db.exceptions.Duplicate`.  Nothing reads
first to decide.
"""

import threading

import pytest
import sqlalchemy as sa

from multistore_prefix.db import exceptions
from multistore_prefix.db import models

URL = 'file:///var/lib/glance/images/twin'
WRITERS = 8


def _image_with_deleted_twins(gateway):
    """An image whose property ``twin``, tag and location were deleted."""
    repo = gateway.get_repo()
    image = gateway.get_image_factory().new_image(
        name='twins', extra_properties={'twin': 'first'}, tags=['twin'])
    image.locations.append({'url': URL, 'metadata': {}, 'status': 'active'})
    repo.add(image)
    for _ in range(2):  # two generations of deleted twins
        del image.extra_properties['twin']
        image.tags.discard('twin')
        image.locations.clear()
        repo.save(image)
        image.extra_properties['twin'] = 'again'
        image.tags.add('twin')
        image.locations.append({'url': URL, 'metadata': {},
                                'status': 'active'})
        repo.save(image)
    del image.extra_properties['twin']
    image.tags.discard('twin')
    image.locations.clear()
    repo.save(image)
    return image.image_id


def _rows(url, table, image_id):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(
                sa.select(table.c.deleted).where(
                    table.c.image_id == image_id)).mappings()]
    finally:
        engine.dispose()


def _add_concurrently(db_url, make_gateway, image_id, edit):
    gateways = [make_gateway(db_url, stores=None) for _ in range(WRITERS)]
    images = [g.get_repo().get(image_id) for g in gateways]
    barrier = threading.Barrier(WRITERS, timeout=60)
    results = [None] * WRITERS

    def run(index):
        edit(images[index], index)
        barrier.wait()
        try:
            gateways[index].get_repo().save(images[index])
            results[index] = 'saved'
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,))
               for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


@pytest.mark.parametrize('kind, table', [
    ('property', models.image_properties),
    ('location', models.image_locations),
    ('tag', models.image_tags),
])
def test_concurrent_inserts_make_one_live_row(db_url, make_gateway, kind,
                                              table):
    image_id = _image_with_deleted_twins(make_gateway(db_url, stores=None))

    def edit(image, index):
        if kind == 'property':
            image.extra_properties['twin'] = f'writer{index}'
        elif kind == 'tag':
            image.tags.add('twin')
        else:
            image.locations.append({'url': URL,
                                    'metadata': {'writer': index},
                                    'status': 'active'})

    results = _add_concurrently(db_url, make_gateway, image_id, edit)
    assert results.count('saved') == 1, results
    losers = [r for r in results if r != 'saved']
    assert all(isinstance(r, exceptions.Duplicate) for r in losers), losers
    assert {r.kind for r in losers} == {kind}
    rows = _rows(db_url, table, image_id)
    assert sum(not r['deleted'] for r in rows) == 1
    assert sum(bool(r['deleted']) for r in rows) == 3


def test_duplicate_location_url_in_one_image(db_url, make_gateway):
    gateway = make_gateway(db_url, stores=None)
    repo = gateway.get_repo()
    image = gateway.get_image_factory().new_image(name='dup')
    image.locations.append({'url': URL, 'metadata': {}, 'status': 'active'})
    repo.add(image)
    image.locations.append({'url': URL, 'metadata': {'x': 1},
                            'status': 'active'})
    with pytest.raises(exceptions.Duplicate) as caught:
        repo.save(image)
    assert caught.value.kind == 'location'
    assert repo.get(image.image_id).locations == [
        {'id': image.locations[0]['id'], 'url': URL, 'metadata': {},
         'status': 'active'}]


def test_long_urls_are_unique_by_their_whole_text(db_url, make_gateway):
    """URLs sharing a 5 kB prefix are different locations.

    A digest (SQLite: the whole text) stands for the URL in the constraint.
    """
    gateway = make_gateway(db_url, stores=None)
    repo = gateway.get_repo()
    image = gateway.get_image_factory().new_image(name='long')
    base = 'file:///var/lib/glance/images/' + 'x' * 5000
    image.locations.extend([
        {'url': base + '/1', 'metadata': {}, 'status': 'active'},
        {'url': base + '/2', 'metadata': {}, 'status': 'active'}])
    repo.add(image)
    assert len(repo.get(image.image_id).locations) == 2
    image.locations.append({'url': base + '/1', 'metadata': {},
                            'status': 'active'})
    with pytest.raises(exceptions.Duplicate):
        repo.save(image)


def test_duplicate_image_id(db_url, make_gateway):
    gateway = make_gateway(db_url, stores=None)
    factory, repo = gateway.get_image_factory(), gateway.get_repo()
    first = factory.new_image(name='one')
    repo.add(first)
    with pytest.raises(exceptions.Duplicate) as caught:
        repo.add(factory.new_image(image_id=first.image_id, name='two'))
    assert caught.value.kind == 'image'
    assert repo.get(first.image_id).name == 'one'
