#!/usr/bin/env python3
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


"""Saving a one-property change: distinction layer against a full save.

An image with 20 properties, 5 tags and 2 locations; each round changes one
property and saves it, timed from ``save`` to commit:

* distinction: ``Gateway(conf).get_repo().save(image)``: the difference
  (one property), compare-and-swap: one UPDATE in one transaction;
* glance-style: what Glance's ``ImageRepo.save`` does (``image_update``
  with ``purge_props``): read the image, its properties, tags and
  locations, then write every image column, every property, every tag and
  every location back, in one transaction.

On SQLite (a file, as the embedded default), PostgreSQL and, when it
answers, MariaDB, in one run.  Server databases are created with random
names through the admin URLs ``MSP_TEST_POSTGRESQL_URL`` /
``MSP_TEST_MYSQL_URL`` (the test suite's defaults) and dropped afterwards.
It prints figures; it never fails on timing.  Run:

    python benchmarks/bench_save.py [--rounds N] [--engines sqlite,postgresql]
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid

from oslo_config import cfg
from oslo_utils import timeutils
import sqlalchemy as sa

from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import migration
from multistore_prefix.db import models
from multistore_prefix import gateway as gateway_mod
from multistore_prefix import metadata as metadata_text

ADMIN_URLS = {
    'postgresql': ('MSP_TEST_POSTGRESQL_URL',
                   'postgresql+psycopg2://postgres@127.0.0.1:5432/test'),
    'mysql': ('MSP_TEST_MYSQL_URL',
              'mysql+pymysql://root@127.0.0.1:3306/test'),
}


def glance_style_save(database, image):
    """Glance's full save: read it all, then write it all back."""
    now = timeutils.utcnow()
    images, props = models.images, models.image_properties
    tags, locs = models.image_tags, models.image_locations
    image_id = image.image_id
    with database.writer() as conn:
        conn.execute(sa.select(images).where(images.c.id == image_id)).one()
        prop_rows = conn.execute(sa.select(props.c.id, props.c.name).where(
            props.c.image_id == image_id,
            props.c.deleted == sa.false())).all()
        tag_rows = conn.execute(sa.select(tags.c.id, tags.c.value).where(
            tags.c.image_id == image_id,
            tags.c.deleted == sa.false())).all()
        conn.execute(sa.select(locs).where(
            locs.c.image_id == image_id, locs.c.deleted == sa.false())).all()
        conn.execute(sa.update(images).where(images.c.id == image_id).values(
            {**{name: getattr(image, name) for name in models.IMAGE_COLUMNS},
             'updated_at': now}))
        for prop_id, name in prop_rows:
            conn.execute(sa.update(props).where(props.c.id == prop_id).values(
                value=image.extra_properties[name], deleted=False,
                updated_at=now))
        for tag_id, value in tag_rows:
            conn.execute(sa.update(tags).where(tags.c.id == tag_id).values(
                value=value, updated_at=now))
        for location in image.locations:
            conn.execute(sa.update(locs).where(
                locs.c.id == location['id']).values(
                    value=location['url'],
                    meta_data=metadata_text.dump(location['metadata']),
                    status=location['status'], updated_at=now))


def make_image(gateway):
    image = gateway.get_image_factory().new_image(
        name='bench', disk_format='qcow2', container_format='bare',
        extra_properties={f'property_{i}': f'value {i}' for i in range(20)},
        tags=[f'tag{i}' for i in range(5)])
    for i in range(2):
        image.locations.append({
            'url': f'file:///var/lib/glance/images/{image.image_id}-{i}',
            'metadata': {'store': 'fast'}, 'status': 'active'})
    gateway.get_repo().add(image)
    return image.image_id


def time_rounds(rounds, save, image):
    times = []
    for i in range(rounds):
        image.extra_properties['property_0'] = f'round {i}'
        start = time.perf_counter()
        save(image)
        times.append(time.perf_counter() - start)
    return times


def bench(url, rounds, warmup):
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    gateway = gateway_mod.Gateway(conf, database=db_engine.Database(url))
    try:
        migration.sync(gateway.database)
        repo = gateway.get_repo()
        image_id = make_image(gateway)
        results = {}
        # Alternate the two, so that neither gets a warmer cache.
        for name, save in (('distinction', repo.save),
                           ('glance-style', lambda image: glance_style_save(
                               gateway.database, image.base)),
                           ) * 2:
            # Read afresh: the distinction layer compares with what the
            # database holds, which the other method changed.
            image = repo.get(image_id)
            time_rounds(warmup, save, image)
            times = time_rounds(rounds, save, image)
            results.setdefault(name, []).extend(times)
        return results, count_statements(gateway, repo, image_id)
    finally:
        gateway.close()


def count_statements(gateway, repo, image_id):
    counts = {}
    for name, save in (('distinction', repo.save),
                       ('glance-style', lambda image: glance_style_save(
                           gateway.database, image.base))):
        image = repo.get(image_id)
        statements = []

        def log(conn, cursor, statement, *args):
            statements.append(statement)
        sa.event.listen(gateway.database.engine, 'before_cursor_execute', log)
        image.extra_properties['property_0'] = 'counted ' + name
        save(image)
        sa.event.remove(gateway.database.engine, 'before_cursor_execute',
                        log)
        counts[name] = sum(
            s.split()[0].upper() in ('UPDATE', 'SELECT', 'INSERT', 'DELETE')
            for s in statements)
    return counts


class ServerDatabase:
    def __init__(self, engine_name):
        variable, default = ADMIN_URLS[engine_name]
        self.admin_url = os.environ.get(variable) or default
        self.engine_name = engine_name
        self.name = f'msp_bench_{uuid.uuid4().hex[:10]}'
        self.admin = sa.create_engine(self.admin_url,
                                      isolation_level='AUTOCOMMIT',
                                      poolclass=sa.pool.NullPool)

    def __enter__(self):
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE {self.name}')
        return sa.engine.make_url(self.admin_url).set(
            database=self.name).render_as_string(hide_password=False)

    def __exit__(self, *exc):
        with self.admin.connect() as conn:
            force = ' WITH (FORCE)' if self.engine_name == 'postgresql' else ''
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS {self.name}{force}')
        self.admin.dispose()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=300,
                        help='timed saves per method and pass (default 300)')
    parser.add_argument('--warmup', type=int, default=30,
                        help='untimed saves first (default 30)')
    parser.add_argument('--engines', default='sqlite,postgresql,mysql',
                        help='databases to run on (default all three; a '
                             'server that does not answer is skipped)')
    args = parser.parse_args(argv)
    print(f'Python {platform.python_version()}, SQLAlchemy '
          f'{sa.__version__}, {os.cpu_count()} CPUs; image: 20 properties, '
          f'5 tags, 2 locations; one property changed per save; '
          f'{2 * args.rounds} saves per method')
    header = (f'{"database":<11} {"method":<13} {"statements":>10} '
              f'{"median ms":>10} {"mean ms":>9} {"saves/s":>9}')
    print(header)
    print('-' * len(header))
    ratios = {}
    for engine_name in args.engines.split(','):
        try:
            if engine_name == 'sqlite':
                with tempfile.TemporaryDirectory() as tmp:
                    results, writes = bench(
                        f'sqlite:///{tmp}/bench.sqlite', args.rounds,
                        args.warmup)
            else:
                with ServerDatabase(engine_name) as url:
                    results, writes = bench(url, args.rounds, args.warmup)
        except sa.exc.OperationalError as exc:
            print(f'{engine_name:<11} skipped: server unreachable '
                  f'({str(exc).splitlines()[0][:60]})')
            continue
        for method, times in results.items():
            mean = statistics.fmean(times)
            print(f'{engine_name:<11} {method:<13} {writes[method]:>10} '
                  f'{statistics.median(times) * 1000:>10.3f} '
                  f'{mean * 1000:>9.3f} {1 / mean:>9.0f}')
        ratios[engine_name] = (statistics.fmean(results['glance-style'])
                               / statistics.fmean(results['distinction']))
    print()
    for engine_name, ratio in ratios.items():
        print(f'{engine_name}: distinction layer saves {ratio:.1f}x faster '
              f'than a glance-style full save (target: 3x)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
