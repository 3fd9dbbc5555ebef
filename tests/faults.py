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

"""Faults the tests make for real, on any of the three engines."""

import contextlib

import sqlalchemy as sa


@contextlib.contextmanager
def database_stops_answering(engine: sa.engine.Engine):
    """Another session holds ``image_locations`` whole: reads wait too.

    SQLite: an exclusive transaction (readers get "busy" and wait);
    PostgreSQL: ``ACCESS EXCLUSIVE``; MariaDB: ``LOCK TABLES ... WRITE``.
    """
    name = engine.dialect.name
    with engine.connect() as conn:
        if name == 'sqlite':
            conn.exec_driver_sql('BEGIN EXCLUSIVE')
        elif name == 'postgresql':
            conn.exec_driver_sql(
                'LOCK TABLE image_locations IN ACCESS EXCLUSIVE MODE')
        else:
            conn.exec_driver_sql('LOCK TABLES image_locations WRITE')
        try:
            yield
        finally:
            if name == 'mysql':
                conn.exec_driver_sql('UNLOCK TABLES')
            conn.rollback()
