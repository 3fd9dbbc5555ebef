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


"""Glance's image tables, as Glance defines them.

Table and column names, types and indexes follow Glance's own models
(``glance/db/sqlalchemy/models.py``), so the code that reads and writes
these tables works on a real Glance database as on the project's own.  The
project's schema (``migrations/``) adds unique constraints on top of this
layout; the code never relies on them being there, only on the database
saying "duplicate" when they are.

These are SQLAlchemy Core tables.  Nothing at run time ever calls
``create_all``; tests use it to make a Glance-layout database.
"""

import sqlalchemy as sa

metadata = sa.MetaData()

_BIG_INTEGER = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8'}

VISIBILITIES = ('private', 'public', 'shared', 'community')


def _timestamps():
    """Glance's ``GlanceBase`` columns: soft delete by ``deleted``."""
    return [
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('deleted_at', sa.DateTime(), nullable=True),
        sa.Column('deleted', sa.Boolean(), nullable=False, default=False),
    ]


images = sa.Table(
    'images', metadata,
    sa.Column('id', sa.String(36), primary_key=True),
    sa.Column('name', sa.String(255)),
    sa.Column('disk_format', sa.String(20)),
    sa.Column('container_format', sa.String(20)),
    sa.Column('size', _BIG_INTEGER),
    sa.Column('virtual_size', _BIG_INTEGER),
    sa.Column('status', sa.String(30), nullable=False),
    sa.Column('visibility', sa.Enum(*VISIBILITIES, name='image_visibility'),
              nullable=False, server_default='shared'),
    sa.Column('checksum', sa.String(32)),
    sa.Column('os_hash_algo', sa.String(64)),
    sa.Column('os_hash_value', sa.String(128)),
    sa.Column('min_disk', sa.Integer(), nullable=False, default=0),
    sa.Column('min_ram', sa.Integer(), nullable=False, default=0),
    sa.Column('owner', sa.String(255)),
    sa.Column('protected', sa.Boolean(), nullable=False, default=False,
              server_default=sa.false()),
    sa.Column('os_hidden', sa.Boolean(), nullable=False, default=False,
              server_default=sa.false()),
    *_timestamps(),
    sa.Index('checksum_image_idx', 'checksum'),
    sa.Index('visibility_image_idx', 'visibility'),
    sa.Index('ix_images_deleted', 'deleted'),
    sa.Index('owner_image_idx', 'owner'),
    sa.Index('created_at_image_idx', 'created_at'),
    sa.Index('updated_at_image_idx', 'updated_at'),
    sa.Index('os_hidden_image_idx', 'os_hidden'),
    sa.Index('os_hash_value_image_idx', 'os_hash_value'),
    **_MYSQL)

image_properties = sa.Table(
    'image_properties', metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('image_id', sa.String(36), sa.ForeignKey('images.id'),
              nullable=False),
    sa.Column('name', sa.String(255), nullable=False),
    sa.Column('value', sa.Text()),
    *_timestamps(),
    sa.Index('ix_image_properties_image_id', 'image_id'),
    sa.Index('ix_image_properties_deleted', 'deleted'),
    # Glance's own: it counts deleted rows too, so Glance revives a deleted
    # property row instead of inserting a new one.
    sa.UniqueConstraint('image_id', 'name',
                        name='ix_image_properties_image_id_name'),
    **_MYSQL)

image_tags = sa.Table(
    'image_tags', metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('image_id', sa.String(36), sa.ForeignKey('images.id'),
              nullable=False),
    sa.Column('value', sa.String(255), nullable=False),
    *_timestamps(),
    sa.Index('ix_image_tags_image_id', 'image_id'),
    sa.Index('ix_image_tags_image_id_tag_value', 'image_id', 'value'),
    **_MYSQL)

image_locations = sa.Table(
    'image_locations', metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('image_id', sa.String(36), sa.ForeignKey('images.id'),
              nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    # JSON text, read and compared as text: the compare-and-swap of a
    # metadata change is on the exact text that was read.
    sa.Column('meta_data', sa.Text()),
    sa.Column('status', sa.String(30), nullable=False,
              server_default='active'),
    *_timestamps(),
    sa.Index('ix_image_locations_image_id', 'image_id'),
    sa.Index('ix_image_locations_deleted', 'deleted'),
    **_MYSQL)

#: The image columns a caller may change, in Glance's names (``id`` is the
#: domain's ``image_id`` and never changes).
IMAGE_COLUMNS = ('name', 'status', 'visibility', 'size', 'virtual_size',
                 'checksum', 'os_hash_algo', 'os_hash_value', 'disk_format',
                 'container_format', 'min_disk', 'min_ram', 'protected',
                 'os_hidden', 'owner')
