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


"""The project's own schema: Glance's image tables plus unique constraints.

Revision ID: msp0001
Revises:
Create Date: 2025-01-01

The four tables have Glance's layout (names, types, indexes).  On top:

* a generated column ``live`` in image_properties, image_tags and
  image_locations: 1 while the row is live, NULL once it is soft-deleted
  (computed by the database from Glance's own ``deleted`` column, so no
  writer can forget it);
* unique constraints on (image_id, name, live), (image_id, value, live) for
  tags, and (image_id, <location URL>, live).  Unique indexes treat NULLs as
  distinct on SQLite, PostgreSQL and MariaDB/MySQL alike, so any number of
  soft-deleted twins coexist with exactly one live row;
* a location URL is TEXT, which MySQL cannot index whole and PostgreSQL
  indexes only up to ~2.7 kB: there a generated ``value_hash`` (a digest
  of ``value`` computed by the database) stands for the URL in the
  constraint.  SQLite indexes the URL itself.

Glance's own ``ix_image_properties_image_id_name`` (unique on image_id and
name, deleted rows included) is replaced by the constraint above, which
lets a deleted property have a live successor.
"""

from alembic import op
import sqlalchemy as sa

revision = 'msp0001'
down_revision = None
branch_labels = None
depends_on = None

_LIVE = 'CASE WHEN deleted THEN NULL ELSE 1 END'
# Immutable digests of a text column, per database.
_VALUE_HASH = {
    'postgresql': 'md5(value)',
    'mysql': 'sha2(value, 256)',
}
_TABLE_ARGS = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'}
_BIG_INTEGER = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _timestamps(live=True):
    columns = [
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('deleted_at', sa.DateTime(), nullable=True),
        sa.Column('deleted', sa.Boolean(), nullable=False,
                  server_default=sa.false()),
    ]
    if live:
        columns.append(sa.Column('live', sa.Integer(),
                                 sa.Computed(_LIVE, persisted=True)))
    return columns


def upgrade():
    dialect = op.get_bind().dialect.name

    op.create_table(
        'images',
        sa.Column('id', sa.String(36), nullable=False),
        sa.Column('name', sa.String(255)),
        sa.Column('disk_format', sa.String(20)),
        sa.Column('container_format', sa.String(20)),
        sa.Column('size', _BIG_INTEGER),
        sa.Column('virtual_size', _BIG_INTEGER),
        sa.Column('status', sa.String(30), nullable=False),
        sa.Column('visibility',
                  sa.Enum('private', 'public', 'shared', 'community',
                          name='image_visibility'),
                  nullable=False, server_default='shared'),
        sa.Column('checksum', sa.String(32)),
        sa.Column('os_hash_algo', sa.String(64)),
        sa.Column('os_hash_value', sa.String(128)),
        sa.Column('min_disk', sa.Integer(), nullable=False),
        sa.Column('min_ram', sa.Integer(), nullable=False),
        sa.Column('owner', sa.String(255)),
        sa.Column('protected', sa.Boolean(), nullable=False,
                  server_default=sa.false()),
        sa.Column('os_hidden', sa.Boolean(), nullable=False,
                  server_default=sa.false()),
        *_timestamps(live=False),
        sa.PrimaryKeyConstraint('id'),
        **_TABLE_ARGS)
    for name, column in (('checksum_image_idx', 'checksum'),
                         ('visibility_image_idx', 'visibility'),
                         ('ix_images_deleted', 'deleted'),
                         ('owner_image_idx', 'owner'),
                         ('created_at_image_idx', 'created_at'),
                         ('updated_at_image_idx', 'updated_at'),
                         ('os_hidden_image_idx', 'os_hidden'),
                         ('os_hash_value_image_idx', 'os_hash_value')):
        op.create_index(name, 'images', [column])

    op.create_table(
        'image_properties',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('image_id', sa.String(36), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('value', sa.Text()),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id'),
        sa.ForeignKeyConstraint(['image_id'], ['images.id']),
        sa.UniqueConstraint('image_id', 'name', 'live',
                            name='uq_image_properties_image_id_name_live'),
        **_TABLE_ARGS)
    op.create_index('ix_image_properties_image_id', 'image_properties',
                    ['image_id'])
    op.create_index('ix_image_properties_deleted', 'image_properties',
                    ['deleted'])

    op.create_table(
        'image_tags',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('image_id', sa.String(36), nullable=False),
        sa.Column('value', sa.String(255), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id'),
        sa.ForeignKeyConstraint(['image_id'], ['images.id']),
        sa.UniqueConstraint('image_id', 'value', 'live',
                            name='uq_image_tags_image_id_value_live'),
        **_TABLE_ARGS)
    op.create_index('ix_image_tags_image_id', 'image_tags', ['image_id'])
    op.create_index('ix_image_tags_image_id_tag_value', 'image_tags',
                    ['image_id', 'value'])

    hashed = dialect != 'sqlite'
    url_columns = []
    if hashed:
        url_columns.append(sa.Column(
            'value_hash', sa.String(64),
            sa.Computed(_VALUE_HASH.get(dialect, 'md5(value)'),
                        persisted=True)))
    op.create_table(
        'image_locations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('image_id', sa.String(36), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('meta_data', sa.Text()),
        sa.Column('status', sa.String(30), nullable=False,
                  server_default='active'),
        *_timestamps(),
        *url_columns,
        sa.PrimaryKeyConstraint('id'),
        sa.ForeignKeyConstraint(['image_id'], ['images.id']),
        sa.UniqueConstraint('image_id',
                            'value_hash' if hashed else 'value', 'live',
                            name='uq_image_locations_image_id_value_live'),
        **_TABLE_ARGS)
    op.create_index('ix_image_locations_image_id', 'image_locations',
                    ['image_id'])
    op.create_index('ix_image_locations_deleted', 'image_locations',
                    ['deleted'])


def downgrade():
    for table in ('image_locations', 'image_tags', 'image_properties',
                  'images'):
        op.drop_table(table)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TYPE IF EXISTS image_visibility')
