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

"""The demo: a Glance-like deployment on the embedded default, to backfill.

It writes a glance-api.conf with local file stores chosen to trip Glance's
first-match rule (two directories that share a string prefix, one store
nested inside another, one store with several directories), creates the
project's SQLite database, and fills it with legacy images: locations with
no ``store``, some naming a store that was renamed, some with other keys to
keep, and a few bad rows.
"""

import dataclasses
import datetime
import json
import os
import random
import uuid

from oslo_config import cfg
import sqlalchemy as sa

from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import migration
from multistore_prefix.db import models
from multistore_prefix import glance_rule
from multistore_prefix import location_map as lmap

#: (store, directories relative to the state directory, with priorities).
STORES = (
    ('fast', ('images',)),
    ('slow', ('images2',)),              # "images" is a string prefix of it
    ('archive', ('images/archive',)),    # nested inside "fast"
    ('tiered', ('tier/a:200', 'tier/b:100')),
)
_CHUNK = 5000
_CREATED = datetime.datetime(2019, 6, 1, 12, 0, 0)


@dataclasses.dataclass
class Seeded:
    """What the demo put in the database.

    :ivar legacy: live locations that need a store.
    :ivar glance_wrong: legacy locations Glance's first-match rule gives
        the wrong store or none.
    """

    images: int = 0
    locations: int = 0
    legacy: int = 0
    glance_wrong: int = 0


def write_config(state_dir: str) -> str:
    """The demo's glance-api.conf in ``state_dir``; its path."""
    lines = ['# Written by "multistore-prefix demo": local file stores '
             'chosen to',
             "# trip Glance's first-match rule, and the embedded SQLite "
             'database.',
             '[DEFAULT]', 'enabled_backends = ' + ', '.join(
                 f'{store}:file' for store, _ in STORES)]
    for store, dirs in STORES:
        lines.append(f'[{store}]')
        if len(dirs) == 1:
            lines.append(f'filesystem_store_datadir = '
                         f'{os.path.join(state_dir, dirs[0])}')
            continue
        lines.append('filesystem_store_datadir =')
        lines += [f'filesystem_store_datadirs = {os.path.join(state_dir, d)}'
                  for d in dirs]
    database = os.path.join(state_dir, 'demo.sqlite')
    lines += ['[database]', f'connection = sqlite:///{database}']
    path = os.path.join(state_dir, 'glance-api.conf')
    with open(path, 'w') as conf:
        conf.write('\n'.join(lines) + '\n')
    for _, directory in _directories(state_dir):
        os.makedirs(directory, exist_ok=True)
    return path


def create(state_dir: str, images: int,
           seed: int = 42) -> tuple[cfg.ConfigOpts, Seeded]:
    """Make the demo deployment afresh; (its configuration, what it holds).

    The configuration's file is ``conf.config_file[0]``.
    """
    os.makedirs(state_dir, exist_ok=True)
    database_file = os.path.join(state_dir, 'demo.sqlite')
    for suffix in ('', '-wal', '-shm'):
        if os.path.exists(database_file + suffix):
            os.unlink(database_file + suffix)
    conf = cfg.ConfigOpts()
    conf(['--config-file', write_config(state_dir)],
         project='multistore-prefix', default_config_files=[])
    location_map = lmap.LocationMap.from_config(conf)
    database = db_engine.Database.from_config(conf)
    try:
        migration.sync(database)
        seeded = _fill(database, location_map, state_dir, images,
                       random.Random(seed))
    finally:
        database.dispose()
    return conf, seeded


def _directories(state_dir):
    return [(store, os.path.join(state_dir, d.split(':')[0]))
            for store, dirs in STORES for d in dirs]


def _fill(database, location_map, state_dir, count, rng) -> Seeded:
    glance = glance_rule.GlanceFirstMatch(location_map)
    places = _directories(state_dir)
    seeded = Seeded()
    images, locations = [], []
    for n in range(count):
        image_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        images.append(_image_row(image_id, n))
        for copy in range(1 + (n % 4 == 0)):
            store, directory = places[(n + copy) % len(places)]
            url = f'file://{directory}/{image_id}'
            metadata = _metadata(n, store)
            text = json.dumps(metadata)
            seeded.locations += 1
            if n % 997 == 3:
                text = '{"truncated": '        # a bad row: not JSON
            elif n % 1009 == 5:                # a URL outside every store
                url = f'file://{directory}/../../../outside/{image_id}'
            elif metadata.get('store') != store:
                seeded.legacy += 1
                if glance.resolve(url) != store:
                    seeded.glance_wrong += 1
            locations.append(_location_row(image_id, url, text))
        seeded.images += 1
        if len(images) >= _CHUNK:
            _insert(database, images, locations)
            images, locations = [], []
    _insert(database, images, locations)
    return seeded


def _metadata(n, store):
    if n % 50 == 7:
        return {'store': store}             # already right
    if n % 20 == 1:
        return {'store': 'ceph-old'}        # a store renamed since
    if n % 10 == 2:
        return {'owner_note': 'keep me'}    # other keys stay
    return {}


def _image_row(image_id, n):
    return {'id': image_id, 'name': f'demo-{n}', 'status': 'active',
            'visibility': 'shared', 'disk_format': 'qcow2',
            'container_format': 'bare', 'size': 1024 * (n % 97 + 1),
            'min_disk': 0, 'min_ram': 0, 'protected': False,
            'os_hidden': False, 'created_at': _CREATED,
            'updated_at': _CREATED, 'deleted': False}


def _location_row(image_id, url, text):
    return {'image_id': image_id, 'value': url, 'meta_data': text,
            'status': 'active', 'created_at': _CREATED,
            'updated_at': _CREATED, 'deleted': False}


def _insert(database, images, locations):
    if images:  # every image has a location
        with database.writer() as conn:
            conn.execute(sa.insert(models.images), images)
            conn.execute(sa.insert(models.image_locations), locations)
