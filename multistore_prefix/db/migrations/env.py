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


"""Alembic environment of the project's own schema.

The version table is multistore-prefix's own
(:data:`multistore_prefix.db.migration.VERSION_TABLE`), never Glance's
``alembic_version``.  :func:`multistore_prefix.db.migration.sync` hands in
the connection to use, after checking that Glance does not manage the
database; run from the ``alembic`` command line, the URL comes from
``-x url=...``.
"""

from alembic import context
import sqlalchemy as sa

from multistore_prefix.db import migration

config = context.config


def _run(connection):
    context.configure(connection=connection, target_metadata=None,
                      version_table=migration.VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connection = config.attributes.get('connection')
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get('url') or \
        config.get_main_option('sqlalchemy.url')
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        migration.check_ownership(connection)
        _run(connection)


def run_migrations_offline():
    context.configure(url=config.get_main_option('sqlalchemy.url'),
                      literal_binds=True,
                      version_table=migration.VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
