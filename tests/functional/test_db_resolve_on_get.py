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


"""Resolve on GET through the gateway, on the three databases."""

import sqlalchemy as sa

from multistore_prefix.db import models


def _add(gateway, locations):
    image = gateway.get_image_factory().new_image(
        name='legacy', extra_properties={'a': 'b'})
    image.locations.extend({'url': url, 'metadata': metadata,
                            'status': 'active'}
                           for url, metadata in locations)
    gateway.get_repo().add(image)
    return image.image_id


def _stored_metadata(url, image_id):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [text for (text,) in conn.execute(
                sa.select(models.image_locations.c.meta_data)
                .where(models.image_locations.c.image_id == image_id)
                .order_by(models.image_locations.c.id))]
    finally:
        engine.dispose()


def test_longest_prefix_stale_store_and_unresolvable(db_url, make_gateway):
    image_id = _add(make_gateway(db_url, stores=None), [
        ('file:///var/lib/glance/images2/a', {}),
        ('file:///var/lib/glance/images/b', {'store': 'renamed'}),
        ('file:///var/lib/glance/images/../../../etc/passwd', {}),
        ('rbd://fsid/pool/img/snap', {'other': 1}),
    ])
    image = make_gateway(db_url).get_repo().get(image_id)
    assert [loc['metadata'] for loc in image.locations] == [
        {'store': 'slow'}, {'store': 'fast'}, {}, {'other': 1}]
    assert _stored_metadata(db_url, image_id) == [
        '{"store": "slow"}', '{"store": "fast"}', '{}', '{"other": 1}']


def test_read_only_database_still_returns_resolved_image(
        database_server, db_url, make_gateway, statement_log):
    image_id = _add(make_gateway(db_url, stores=None),
                    [('file:///var/lib/glance/images2/a', {'k': 'v'})])
    gateway = make_gateway(database_server.read_only_url(db_url))
    image = gateway.get_repo().get(image_id)
    assert image.locations[0]['metadata'] == {'k': 'v', 'store': 'slow'}
    assert image.extra_properties == {'a': 'b'}
    assert _stored_metadata(db_url, image_id) == ['{"k": "v"}']
