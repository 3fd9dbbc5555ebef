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

"""Two glance-api on one Glance database: one with the filter, one without.

For tests/glance_compat/test_glance_api.py and
benchmarks/bench_glance_api.py: both answer the same requests on images of
their own, so every figure of the filter stands beside Glance's own in the
same run.  Legacy images are uploaded through Glance's API, then made
legacy by plain SQL.
"""

import concurrent.futures
import contextlib
import datetime
import json
import os
import pathlib
import threading

import sqlalchemy as sa

from tests.glance_compat.glance_api import GlanceApi
from tests.glance_compat.glance_api import server_class

#: A time before every request: a row whose updated_at moves was written.
PAST = datetime.datetime(2020, 1, 1)

IMAGES = sa.table('images', sa.column('id'), sa.column('updated_at'))
LOCATIONS = sa.table('image_locations', sa.column('id'),
                     sa.column('image_id'), sa.column('value'),
                     sa.column('meta_data'), sa.column('updated_at'))
PROPERTIES = sa.table('image_properties', sa.column('image_id'),
                      sa.column('name'), sa.column('value'),
                      sa.column('deleted'))


class Deployment:
    """A Glance database and the two glance-api on it.

    :ivar filtered: the glance-api with the filter.
    :ivar plain: the glance-api without it (Glance alone).
    :ivar engine: the database, for snapshots and legacy rows.
    :ivar engine_name: ``sqlite``, ``postgresql`` or ``mysql``.
    :ivar database: the database's name.
    """

    def __init__(self, engine_name: str, url: str, workdir: pathlib.Path,
                 options: dict | None = None, **uwsgi):
        """Write both glance-api's files (nothing runs yet).

        :param options: ``[multistore_prefix]`` of the filtered one.
        :param uwsgi: ``processes``, ``threads`` and ``stores_conf`` of
            each (see :class:`GlanceApi`).
        """
        self.engine_name = engine_name
        self.url = url
        self.database = sa.engine.make_url(url).database
        # future: SQLAlchemy 1.4 (2024.1) gives 2.0-style connections too.
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool,
                                       future=True)
        # uWSGI, or the eventlet glance-api command (MSP_GLANCE_SERVER).
        server = server_class()
        self.filtered = server(workdir / 'filtered', url, with_filter=True,
                               stores_dir=workdir, options=options, **uwsgi)
        self.plain = server(workdir / 'plain', url, with_filter=False,
                            stores_dir=workdir, **uwsgi)
        #: image id -> the bytes uploaded.
        self.data = {}

    @contextlib.contextmanager
    def running(self):
        """Glance's schema, both glance-api started; stopped at the end."""
        try:
            self.filtered.db_sync()
            self.filtered.start()
            self.plain.start()
            yield self
        finally:
            self.filtered.stop()
            self.plain.stop()
            self.engine.dispose()

    def apis(self):
        return {'filter': self.filtered, 'glance': self.plain}

    def legacy_per_api(self, count: int) -> dict:
        """``count`` legacy images for each glance-api (see :meth:`apis`)."""
        return {mode: self.legacy_images(count) for mode in self.apis()}

    def legacy_images(self, count: int, store: str = 'slow') -> list[str]:
        """Images uploaded into ``store``, then made legacy."""
        ids = []
        for index in range(count):
            data = os.urandom(4096 + index)
            image_id = self.plain.create_image(
                f'legacy-{store}-{index}', data, store,
                tags=['golden', 'x86_64'], os_distro='cirros',
                hw_disk_bus='virtio')
            self.data[image_id] = data
            ids.append(image_id)
        self.make_legacy(ids)
        return ids

    def make_legacy(self, image_ids) -> None:
        """Drop ``store`` from the images' locations, by plain SQL."""
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(LOCATIONS.c.id,
                                          LOCATIONS.c.meta_data)
                                .where(LOCATIONS.c.image_id.in_(image_ids))
                                ).all()
            for location_id, text in rows:
                metadata = json.loads(text)
                metadata.pop('store', None)
                conn.execute(sa.update(LOCATIONS)
                             .where(LOCATIONS.c.id == location_id)
                             .values(meta_data=json.dumps(metadata),
                                     updated_at=PAST))
            conn.execute(sa.update(IMAGES).where(IMAGES.c.id.in_(
                image_ids)).values(updated_at=PAST))

    def stores_in_db(self, image_id) -> list:
        with self.engine.connect() as conn:
            return [json.loads(text).get('store') for (text,) in
                    conn.execute(sa.select(LOCATIONS.c.meta_data).where(
                        LOCATIONS.c.image_id == image_id))]

    def has_property(self, image_id, name) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(PROPERTIES.c.value).where(
                PROPERTIES.c.image_id == image_id,
                PROPERTIES.c.name == name,
                PROPERTIES.c.deleted.is_(False))).first() is not None


def race_gets_and_patch(api: GlanceApi, image_ids, gets: int
                        ) -> tuple[list[str], int]:
    """For each image, ``gets`` GETs and one PATCH released at once.

    The PATCH adds the property ``raced``.

    :returns: the images whose PATCH Glance accepted, and how many GETs
        failed.
    """
    landed, failed = [], 0
    with concurrent.futures.ThreadPoolExecutor(gets + 1) as pool:
        for image_id in image_ids:
            barrier = threading.Barrier(gets + 1)

            def go(call, *args):
                barrier.wait()
                return call(*args)
            patch = pool.submit(go, api.patch, image_id, [
                {'op': 'add', 'path': '/raced', 'value': 'yes'}])
            shows = [pool.submit(go, api.show, image_id)
                     for _ in range(gets)]
            # A PATCH Glance refused (a locked SQLite) is no lost one.
            if patch.result().status_code == 200:
                landed.append(image_id)
            failed += sum(show.result().status_code != 200
                          for show in shows)
    return landed, failed
