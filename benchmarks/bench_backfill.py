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


"""Backfill speed and memory: the command against its limits and Glance.

One run prints, side by side:

* ``multistore-prefix backfill -f json`` (the real console script, in a
  subprocess, progress lines to a file) on 1,000,000 legacy locations in
  the project's SQLite schema (``db sync`` on a fresh file): locations per
  second from start to exit, and the peak RSS of that process;
* the physical limit: one hand-written set-based ``UPDATE image_locations
  SET meta_data = '{"store": "<id>"}', updated_at = ... WHERE value LIKE
  '<dir>/%'`` per store, on an identical copy of the data.  It is not
  correct in general (LIKE wildcards in directory names, no JSON merge: it
  drops other keys and overwrites bad rows, no component-boundary check,
  no canonical URLs), but it is the speed to approach;
* a Glance-style on-GET emulation on a sample of images: per image, load
  it whole (image row, properties, tags, locations) in one transaction,
  resolve with Glance's rule (the first store whose ``url_prefix`` the URL
  starts with) and save it whole (every image column, every property,
  every tag, every location);
* the same backfill on PostgreSQL and MariaDB (with the set-based limit
  there too, for scale), and on PostgreSQL the share of its updates that
  were heap-only (the row stayed on its page: what writing a batch in
  passes is for).

The data: file stores ``fast`` (/var/lib/glance/images), ``slow``
(/var/lib/glance/images2: the same string prefix), ``multi`` (two
directories) and ``cold``; one or two locations per image; mostly ``{}``
metadata, with 2% already set, 2% with other keys to keep, 2% naming a
retired store, and a few bad rows and URLs no store owns.  Every run's
result is checked row by row afterwards (outside the timing).

Server databases get random names through the admin URLs
``MSP_TEST_POSTGRESQL_URL`` / ``MSP_TEST_MYSQL_URL`` (the test suite's
defaults) and are dropped afterwards; SQLite files live in a temporary
directory that is removed.  It prints figures and PASS/MISS beside each
target; it never fails on timing.  Run:

    python benchmarks/bench_backfill.py [--rows N] [--server-rows N]
        [--batch-size N] [--sample N] [--skip-servers] [--baseline REV]
        [--engines sqlite,postgresql,mysql]

``--baseline REV`` runs the backfill of an earlier git revision too, on an
identical copy of each database, just before the current one: a before
and after from one run.
"""

import argparse
import datetime
import json
import logging
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

from oslo_config import cfg
import sqlalchemy as sa

from multistore_prefix import backfill as backfill_mod
from multistore_prefix.cmd import logs as cmd_logs
from multistore_prefix.db import engine as db_engine
from multistore_prefix.db import migration
from multistore_prefix.db import models
from multistore_prefix import location_map as lmap

ADMIN_URLS = {
    'postgresql': ('MSP_TEST_POSTGRESQL_URL',
                   'postgresql+psycopg2://postgres@127.0.0.1:5432/test'),
    'mysql': ('MSP_TEST_MYSQL_URL',
              'mysql+pymysql://root@127.0.0.1:3306/test'),
}

#: (store id, directories), in enabled_backends order: Glance's rule
#: tries them in this order.
STORES = (
    ('fast', ('/var/lib/glance/images',)),
    ('slow', ('/var/lib/glance/images2',)),
    ('multi', ('/srv/glance/a', '/srv/glance/b')),
    ('cold', ('/mnt/cold/glance',)),
)
#: Every directory with its store, in the order locations cycle through.
DIRECTORIES = tuple((d, store) for store, dirs in STORES for d in dirs)
ELSEWHERE = '/tmp/not-a-store'
EXTRA = {'backend_hint': 'legacy', 'size_hint': 1}
BAD_TEXT = 'not json {'
PAST = datetime.datetime(2020, 1, 2, 3, 4, 5)
PAST_TEXT = '2020-01-02 03:04:05.000000'

# Targets (issue 5).
SQLITE_RATE = 100_000
LIMIT_RATIO = 1 / 3
PEAK_RSS_MB = 200
SERVER_RATE = 20_000
# Baselines quoted in issue 5 / DESIGN.md (Glance 33.0.0, SQLite).
ISSUE_SET_BASED = 310_000
GLANCE_ON_GET = 30


# -- the data -----------------------------------------------------------------

def kind(location_id: int) -> str:
    """What seeded location ``location_id`` (from 1) holds."""
    if location_id % 10_000 == 3:
        return 'bad'
    if location_id % 5_000 == 7:
        return 'elsewhere'
    if location_id % 50 < 3:
        return ('set', 'extra', 'retired')[location_id % 50]
    return 'legacy'


def expected_store(url: str) -> str | None:
    for directory, store in DIRECTORIES:
        if url.startswith(directory + '/', 7):
            return store
    return None


def seed_rows(count: int, seed: int = 5, directories=DIRECTORIES):
    """(images, locations) rows, deterministic: copies are identical.

    An image has one location, every fourth has two (in two directories).
    Yields ('image', image id) and ('location', (id, image id, URL,
    meta_data text)) in insertion order.

    :param directories: (directory, store) pairs the locations cycle
        through (default: :data:`STORES`' own).
    """
    rng = random.Random(seed)
    location_id = 0
    image_index = 0
    while location_id < count:
        image_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        yield 'image', image_id
        copies = 2 if image_index % 4 == 0 else 1
        for copy in range(min(copies, count - location_id)):
            location_id += 1
            what = kind(location_id)
            directory, store = directories[(image_index + copy)
                                           % len(directories)]
            if what == 'elsewhere':
                directory = ELSEWHERE
            url = f'file://{directory}/{image_id}'
            text = {'legacy': '{}', 'bad': BAD_TEXT, 'elsewhere': '{}',
                    'set': json.dumps({'store': store}),
                    'extra': json.dumps(EXTRA),
                    'retired': '{"store": "retired"}'}[what]
            yield 'location', (location_id, image_id, url, text)
        image_index += 1


def seed_sqlite(path: str, count: int) -> None:
    """Fill a synced SQLite file fast: raw sqlite3, one transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute('PRAGMA synchronous = OFF')
        conn.execute('BEGIN')
        images, locations = [], []

        def flush():
            conn.executemany(
                'INSERT INTO images (id, name, disk_format, container_format,'
                ' size, status, visibility, min_disk, min_ram, owner,'
                ' protected, os_hidden, created_at, updated_at, deleted)'
                " VALUES (?, 'legacy', 'qcow2', 'bare', 1048576, 'active',"
                " 'public', 0, 0, 'admin', 0, 0, ?, ?, 0)",
                [(i, PAST_TEXT, PAST_TEXT) for i in images])
            conn.executemany(
                'INSERT INTO image_locations (id, image_id, value, meta_data,'
                ' status, created_at, updated_at, deleted)'
                " VALUES (?, ?, ?, ?, 'active', ?, ?, 0)",
                [(*row, PAST_TEXT, PAST_TEXT) for row in locations])
            images.clear()
            locations.clear()
        for table, row in seed_rows(count):
            (images if table == 'image' else locations).append(row)
            if len(locations) >= 50_000:
                flush()
        flush()
        conn.execute('COMMIT')
        conn.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    finally:
        conn.close()


def seed_server(url: str, count: int, directories=DIRECTORIES) -> None:
    """Fill a synced server database with Core bulk inserts.

    It may be Glance's own (``glance-manage db sync``): the same tables.
    """
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    images, locations = [], []

    def flush(conn):
        if images:
            conn.execute(models.images.insert(), [
                {'id': i, 'name': 'legacy', 'disk_format': 'qcow2',
                 'container_format': 'bare', 'size': 1048576,
                 'status': 'active', 'visibility': 'public', 'min_disk': 0,
                 'min_ram': 0, 'owner': 'admin', 'protected': False,
                 'os_hidden': False, 'created_at': PAST, 'updated_at': PAST,
                 'deleted': False} for i in images])
        if locations:
            conn.execute(models.image_locations.insert(), [
                {'id': lid, 'image_id': image_id, 'value': value,
                 'meta_data': text, 'status': 'active', 'created_at': PAST,
                 'updated_at': PAST, 'deleted': False}
                for lid, image_id, value, text in locations])
        images.clear()
        locations.clear()
    try:
        with engine.begin() as conn:
            for table, row in seed_rows(count, directories=directories):
                (images if table == 'image' else locations).append(row)
                if len(locations) >= 10_000:
                    flush(conn)
            flush(conn)
        with engine.connect().execution_options(
                isolation_level='AUTOCOMMIT') as conn:
            if engine.dialect.name == 'postgresql':
                conn.exec_driver_sql('VACUUM ANALYZE')
                # The seed gave ids explicitly; keep the sequence ahead.
                conn.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('image_locations',"
                    " 'id'), (SELECT max(id) FROM image_locations))")
            else:
                conn.exec_driver_sql('ANALYZE TABLE images, image_locations')
    finally:
        engine.dispose()


def check(url: str) -> dict:
    """Row by row: right stores, other keys kept, bad rows untouched."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    wrong = lost = clobbered = 0
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(
                models.image_locations.c.id, models.image_locations.c.value,
                models.image_locations.c.meta_data).execution_options(
                    yield_per=20_000))
            for location_id, url_, text in rows:
                what = kind(location_id)
                if what == 'bad':
                    clobbered += text != BAD_TEXT
                    continue
                meta = json.loads(text)
                if what == 'elsewhere':
                    wrong += 'store' in meta
                    continue
                wrong += meta.get('store') != expected_store(url_)
                if what == 'extra':
                    lost += any(meta.get(k) != v for k, v in EXTRA.items())
    finally:
        engine.dispose()
    return {'wrong': wrong, 'lost_keys': lost, 'clobbered_bad': clobbered}


def write_conf(directory: str, name: str, connection: str) -> str:
    lines = ['[DEFAULT]', 'enabled_backends = ' + ', '.join(
        f'{store}:file' for store, _ in STORES)]
    for store, dirs in STORES:
        lines.append(f'[{store}]')
        if len(dirs) == 1:
            lines.append(f'filesystem_store_datadir = {dirs[0]}')
        else:
            lines.append('filesystem_store_datadir =')
            lines += [f'filesystem_store_datadirs = {d}' for d in dirs]
    lines += ['[database]', f'connection = {connection}']
    path = os.path.join(directory, f'{name}.conf')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def sync(url: str) -> None:
    database = db_engine.Database(url)
    try:
        migration.sync(database)
    finally:
        database.dispose()


# -- the console script, timed and measured ----------------------------------

def baseline_tree(rev: str, tmp: str) -> str:
    """The package of git revision ``rev``, unpacked in ``tmp``."""
    top = subprocess.run(['git', 'rev-parse', '--show-toplevel'],
                         cwd=os.path.dirname(os.path.abspath(__file__)),
                         check=True, capture_output=True, text=True
                         ).stdout.strip()
    directory = os.path.join(tmp, f'baseline-{rev}')
    os.makedirs(directory)
    archive = subprocess.run(['git', 'archive', rev, 'multistore_prefix'],
                             cwd=top, check=True, capture_output=True)
    subprocess.run(['tar', '-x', '-C', directory], input=archive.stdout,
                   check=True)
    return directory


def command(baseline: str | None = None) -> list[str]:
    """The console script; with ``baseline``, that tree's code instead.

    The baseline's package comes first on sys.path, ahead of the
    installed (editable) one; entry points are the installed ones, which
    name the same modules.
    """
    if baseline:
        return [sys.executable, '-c',
                f'import sys; sys.path.insert(0, {baseline!r}); '
                f'from multistore_prefix.cmd.main import main; '
                f'sys.exit(main())']
    script = os.path.join(os.path.dirname(sys.executable),
                          'multistore-prefix')
    if os.path.exists(script):
        return [script]
    found = shutil.which('multistore-prefix')
    if found:
        return [found]
    return [sys.executable, '-m', 'multistore_prefix.cmd.main']


def run_command(args: list[str], workdir: str,
                baseline: str | None = None) -> dict:
    """Run the console script; wall seconds, peak RSS (MB), its JSON."""
    out_path = os.path.join(workdir, 'stdout')
    err_path = os.path.join(workdir, 'stderr')
    with open(out_path, 'wb') as out, open(err_path, 'wb') as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command(baseline) + args, stdout=out,
                                stderr=err, stdin=subprocess.DEVNULL)
        # wait4: this child's own rusage (RUSAGE_CHILDREN is the maximum
        # over every child waited for so far).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path, encoding='utf-8') as f:
        stdout = f.read()
    with open(err_path, encoding='utf-8', errors='replace') as f:
        stderr = f.read()
    result = {'wall': wall, 'rss_mb': usage.ru_maxrss / 1024,
              'user': usage.ru_utime, 'sys': usage.ru_stime,
              'exit': proc.returncode, 'stderr': stderr.strip()}
    try:
        result['json'] = json.loads(stdout)
    except ValueError:
        result['json'] = {}
        result['stdout'] = stdout.strip()
    return result


def backfill(conf: str, batch_size: int, workdir: str,
             baseline: str | None = None) -> dict:
    # Not --quiet: as an operator runs it, with the progress total counted
    # and progress lines on stderr (a file here, not a terminal).
    result = run_command(['--config-file', conf, 'backfill', '-f', 'json',
                          '--batch-size', str(batch_size)], workdir,
                         baseline)
    if result['exit'] != 0 or not result['json']:
        tail = (result['stderr'] or result.get('stdout', ''))[-600:]
        raise RuntimeError(f'backfill exited {result["exit"]}: {tail}')
    return result


# -- the set-based limit ------------------------------------------------------

def set_based_statements():
    """(SQL, parameters) per store, in named-parameter style."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(
        tzinfo=None).strftime('%Y-%m-%d %H:%M:%S.%f')
    for store, dirs in STORES:
        params = {'meta': json.dumps({'store': store}), 'now': now}
        likes = []
        for n, directory in enumerate(dirs):
            params[f'p{n}'] = f'file://{directory}/%'
            likes.append(f'value LIKE :p{n}')
        yield (f'UPDATE image_locations SET meta_data = :meta, updated_at = '
               f':now WHERE {" OR ".join(likes)}', params)


def set_based_sqlite(path: str) -> tuple[float, int]:
    """Seconds and rows: raw sqlite3, the product's pragmas."""
    start = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f'PRAGMA busy_timeout = '
                     f'{db_engine.SQLITE_BUSY_TIMEOUT_MS}')
        conn.execute('PRAGMA synchronous = NORMAL')  # WAL: as the product
        rows = 0
        for sql, params in set_based_statements():
            conn.execute('BEGIN IMMEDIATE')
            rows += conn.execute(sql, params).rowcount
            conn.execute('COMMIT')
    finally:
        conn.close()
    return time.perf_counter() - start, rows


def set_based_server(url: str) -> tuple[float, int]:
    """Seconds and rows: one transaction per store."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        start = time.perf_counter()
        rows = 0
        for sql, params in set_based_statements():
            with engine.begin() as conn:
                rows += conn.execute(sa.text(sql), params).rowcount
        return time.perf_counter() - start, rows
    finally:
        engine.dispose()


# -- Glance-style on GET ------------------------------------------------------

def seed_sample(url: str, count: int) -> list[str]:
    """``count`` images, each with 10 properties and 3 tags."""
    images, locations, ids = [], [], []
    for table, row in seed_rows(count * 2, seed=7):
        if table == 'image':
            ids.append(row)
            images.append(row)
        else:
            locations.append(row)
    ids = ids[:count]
    keep = set(ids)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(models.images.insert(), [
                {'id': i, 'name': f'image {n}', 'disk_format': 'qcow2',
                 'container_format': 'bare', 'size': 1048576,
                 'status': 'active', 'visibility': 'public', 'min_disk': 0,
                 'min_ram': 0, 'owner': 'admin', 'protected': False,
                 'os_hidden': False, 'created_at': PAST, 'updated_at': PAST,
                 'deleted': False} for n, i in enumerate(ids)])
            conn.execute(models.image_properties.insert(), [
                {'image_id': i, 'name': f'property_{p}', 'value': f'v{p}',
                 'created_at': PAST, 'deleted': False}
                for i in ids for p in range(10)])
            conn.execute(models.image_tags.insert(), [
                {'image_id': i, 'value': f'tag{t}', 'created_at': PAST,
                 'deleted': False} for i in ids for t in range(3)])
            conn.execute(models.image_locations.insert(), [
                {'id': lid, 'image_id': image_id, 'value': value,
                 'meta_data': text, 'status': 'active', 'created_at': PAST,
                 'updated_at': PAST, 'deleted': False}
                for lid, image_id, value, text in locations
                if image_id in keep])
    finally:
        engine.dispose()
    return ids


def glance_rule(location_map: lmap.LocationMap):
    """Glance's store_utils: the first store whose url_prefix matches."""
    prefixes = [(store_id, str(entry.prefixes[0]))
                for store_id, entry in location_map.stores.items()
                if entry.prefixes]

    def resolve(url):
        for store_id, prefix in prefixes:
            if url.startswith(prefix):
                return store_id
        return None
    return resolve


def glance_on_get(database: db_engine.Database, image_ids, resolve,
                  enabled) -> dict:
    """Per image: load it whole, resolve, save it whole.

    ``enabled``: the store ids; like Glance, a location whose metadata
    names one of them is left alone.
    """
    images, props = models.images, models.image_properties
    tags, locs = models.image_tags, models.image_locations
    wrong = missed = 0
    start = time.perf_counter()
    for image_id in image_ids:
        with database.reader() as conn:
            image = conn.execute(sa.select(images).where(
                images.c.id == image_id)).one()
            properties = conn.execute(sa.select(props).where(
                props.c.image_id == image_id,
                props.c.deleted == sa.false())).all()
            tag_rows = conn.execute(sa.select(tags).where(
                tags.c.image_id == image_id,
                tags.c.deleted == sa.false())).all()
            locations = conn.execute(sa.select(locs).where(
                locs.c.image_id == image_id,
                locs.c.deleted == sa.false())).all()
        new_meta = {}
        for location in locations:
            try:
                meta = json.loads(location.meta_data)
            except (TypeError, ValueError):
                continue  # Glance would fail the GET here
            if not isinstance(meta, dict) or meta.get('store') in enabled:
                continue
            store = resolve(location.value)
            expected = expected_store(location.value)
            if store is None:
                missed += expected is not None
                continue
            wrong += store != expected
            new_meta[location.id] = json.dumps({**meta, 'store': store})
        if not new_meta:
            continue
        now = datetime.datetime.now(datetime.timezone.utc).replace(
            tzinfo=None)
        with database.writer() as conn:
            # ImageRepo.save -> image_update(purge_props=True): read it
            # again, write every column, every property, every tag and
            # every location back.
            conn.execute(sa.select(images).where(
                images.c.id == image_id)).one()
            conn.execute(sa.update(images).where(
                images.c.id == image_id).values(
                    {**{name: image._mapping[name]
                        for name in models.IMAGE_COLUMNS},
                     'updated_at': now}))
            for prop in properties:
                conn.execute(sa.update(props).where(
                    props.c.id == prop.id).values(
                        value=prop.value, deleted=False, updated_at=now))
            for tag in tag_rows:
                conn.execute(sa.update(tags).where(
                    tags.c.id == tag.id).values(value=tag.value,
                                                updated_at=now))
            for location in locations:
                conn.execute(sa.update(locs).where(
                    locs.c.id == location.id).values(
                        value=location.value,
                        meta_data=new_meta.get(location.id,
                                               location.meta_data),
                        status=location.status, updated_at=now))
    elapsed = time.perf_counter() - start
    return {'seconds': elapsed, 'images': len(image_ids), 'wrong': wrong,
            'missed': missed}


# -- servers -----------------------------------------------------------------

def hot_updates(url: str, expected: int) -> tuple[int, int]:
    """PostgreSQL: (rows of image_locations updated, of which heap-only).

    The seeding only inserts, so these are the backfill's.  A server
    process reports its counts when it exits (the backfill's have) or at
    most once a second: wait until they are all in, for 15 s at most.
    """
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    deadline = time.monotonic() + 15
    try:
        while True:
            with engine.connect() as conn:
                updated, hot = conn.exec_driver_sql(
                    'SELECT n_tup_upd, n_tup_hot_upd FROM '
                    "pg_stat_user_tables WHERE relname = 'image_locations'"
                ).one()
            if updated >= expected or time.monotonic() > deadline:
                return updated, hot
            time.sleep(0.2)
    finally:
        engine.dispose()


class ServerDatabase:
    """A database with a random name on a server, dropped on exit."""

    def __init__(self, engine_name, admin_url):
        self.engine_name = engine_name
        self.admin_url = admin_url
        self.names = []
        self.admin = sa.create_engine(admin_url,
                                      isolation_level='AUTOCOMMIT',
                                      poolclass=sa.pool.NullPool)

    def create(self, template: str | None = None) -> str:
        name = f'msp_bench_{uuid.uuid4().hex[:10]}'
        with self.admin.connect() as conn:
            clause = f' TEMPLATE {template}' if template else ''
            conn.exec_driver_sql(f'CREATE DATABASE {name}{clause}')
        self.names.append(name)
        return name

    def copy(self, name: str) -> str:
        """The URL of a new database with the same rows as ``name``."""
        if self.engine_name == 'postgresql':
            return self.url(self.create(template=name))
        copy = self.create()
        url = self.url(copy)
        sync(url)
        copy_tables(self, name, copy)
        return url

    def url(self, name: str) -> str:
        return sa.engine.make_url(self.admin_url).set(
            database=name).render_as_string(hide_password=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with self.admin.connect() as conn:
            force = ' WITH (FORCE)' if self.engine_name == 'postgresql' else ''
            for name in self.names:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS {name}{force}')
        self.admin.dispose()


def copy_tables(server: ServerDatabase, source: str, target: str) -> None:
    """MySQL: the same rows in a synced twin (not generated columns)."""
    images = ', '.join(c.name for c in models.images.columns)
    locations = ', '.join(c.name for c in models.image_locations.columns)
    with server.admin.connect() as conn:
        conn.exec_driver_sql(f'INSERT INTO {target}.images ({images}) '
                             f'SELECT {images} FROM {source}.images')
        conn.exec_driver_sql(
            f'INSERT INTO {target}.image_locations ({locations}) '
            f'SELECT {locations} FROM {source}.image_locations')
        conn.exec_driver_sql(f'ANALYZE TABLE {target}.images, '
                             f'{target}.image_locations')


# -- output -------------------------------------------------------------------

ROW = '{:<34} {:<10} {:>11} {:>9} {:>12} {:>9}  {}'


def row(what, engine, count, seconds, rate, rss, note=''):
    print(ROW.format(what, engine, f'{count:,}', f'{seconds:.2f}',
                     f'{rate:,.0f}', '-' if rss is None else f'{rss:.0f}',
                     note))


def load_average() -> str:
    try:
        return ' '.join(f'{x:.2f}' for x in os.getloadavg())
    except OSError:
        return 'unknown'


def verdict(ok: bool) -> str:
    return 'PASS' if ok else 'MISS'


def describe(checked: dict) -> str:
    return (f'wrong {checked["wrong"]}, keys lost {checked["lost_keys"]}, '
            f'bad rows clobbered {checked["clobbered_bad"]}')


def summary_note(result: dict) -> str:
    data = result['json']
    return (f'engine {data.get("rate_per_second", 0):,.0f}/s in '
            f'{data.get("elapsed_seconds", 0):.2f}s; cpu user '
            f'{result["user"]:.1f}s sys {result["sys"]:.1f}s; updated '
            f'{data.get("updated", 0):,}, already set '
            f'{data.get("already_set", 0):,}, unresolved '
            f'{data.get("unresolved", 0):,}'
            + (f'; slowest write transaction '
               f'{data["slowest_write_seconds"]:.2f}s'
               if 'slowest_write_seconds' in data else ''))


def bench_sqlite(args, tmp, targets):
    main = os.path.join(tmp, 'backfill.sqlite')
    copy = os.path.join(tmp, 'set-based.sqlite')
    start = time.perf_counter()
    sync(f'sqlite:///{main}')
    seed_sqlite(main, args.rows)
    shutil.copyfile(main, copy)
    size = os.path.getsize(main) / 2 ** 20
    print(f'seeded {args.rows:,} locations in SQLite ({size:.0f} MB file, '
          f'and an identical copy) in {time.perf_counter() - start:.1f}s')
    conf = write_conf(tmp, 'sqlite', f'sqlite:///{main}')
    floor = run_command(['--config-file', conf, 'stores', '-f', 'json'],
                        tmp)
    print(f'peak RSS of "multistore-prefix stores" (the import floor): '
          f'{floor["rss_mb"]:.0f} MB, {floor["wall"]:.2f}s')
    print()
    print(ROW.format('what', 'database', 'rows', 'seconds', 'rows/s',
                     'RSS MB', 'notes'))
    print('-' * 100)
    if args.baseline:
        before = os.path.join(tmp, 'baseline.sqlite')
        shutil.copyfile(copy, before)
        base_conf = write_conf(tmp, 'sqlite-baseline', f'sqlite:///{before}')
        base = backfill(base_conf, args.batch_size, tmp, args.baseline_tree)
        row(f'backfill at {args.baseline}', 'sqlite', base['json']['scanned'],
            base['wall'], base['json']['scanned'] / base['wall'],
            base['rss_mb'], summary_note(base))
        os.remove(before)
    result = backfill(conf, args.batch_size, tmp)
    scanned = result['json']['scanned']
    rate = scanned / result['wall']
    row('backfill (console script)', 'sqlite', scanned, result['wall'],
        rate, result['rss_mb'], summary_note(result))
    checked = check(f'sqlite:///{main}')
    print(f'{"":<34} {"":<10} result: {describe(checked)}')
    os.remove(main)

    seconds, rows = set_based_sqlite(copy)
    limit = rows / seconds
    row('set-based UPDATE ... LIKE (limit)', 'sqlite', rows, seconds, limit,
        None, f'issue 5 measured ~{ISSUE_SET_BASED:,}/s; NOT correct in '
              f'general')
    print(f'{"":<34} {"":<10} result: {describe(check(f"sqlite:///{copy}"))}'
          f' (LIKE wildcards, no JSON merge, no boundary check)')
    os.remove(copy)

    sample = os.path.join(tmp, 'glance.sqlite')
    sync(f'sqlite:///{sample}')
    ids = seed_sample(f'sqlite:///{sample}', args.sample)
    conf_obj = cfg.ConfigOpts()
    conf_obj(['--config-file', conf], default_config_files=[])
    location_map = lmap.LocationMap.from_config(conf_obj)
    database = db_engine.Database(f'sqlite:///{sample}')
    try:
        glance = glance_on_get(database, ids, glance_rule(location_map),
                               set(location_map.stores))
    finally:
        database.dispose()
    os.remove(sample)
    glance_rate = glance['images'] / glance['seconds']
    row('glance-style on GET (sample)', 'sqlite', glance['images'],
        glance['seconds'], glance_rate, None,
        f'images/s; Glance 33.0.0 measured ~{GLANCE_ON_GET}/s; '
        f'Glance\'s rule: {glance["wrong"]} locations given the wrong '
        f'store, {glance["missed"]} left without one')
    print(f'{"":<34} {"":<10} its own SQLite file: {len(ids):,} images '
          f'with 10 properties, 3 tags, 1-2 locations each; per image a '
          f'read and a write transaction')
    targets.append((f'sqlite backfill >= {SQLITE_RATE:,} locations/s',
                    f'{rate:,.0f}/s', rate >= SQLITE_RATE))
    targets.append(('sqlite backfill / set-based limit >= 1/3',
                    f'{rate / limit:.2f} ({rate:,.0f} / {limit:,.0f})',
                    rate / limit >= LIMIT_RATIO))
    rss_note = f'{result["rss_mb"]:.0f} MB at {scanned:,} rows'
    if scanned < 1_000_000:
        rss_note += ' (the target is at 1,000,000)'
    targets.append((f'sqlite peak RSS < {PEAK_RSS_MB} MB', rss_note,
                    result['rss_mb'] < PEAK_RSS_MB))
    if checked['wrong'] or checked['lost_keys'] or checked['clobbered_bad']:
        targets.append(('sqlite backfill result correct', describe(checked),
                        False))
    return rate


def bench_server(engine_name, args, tmp, targets):
    variable, default = ADMIN_URLS[engine_name]
    admin_url = os.environ.get(variable) or default
    try:
        server = ServerDatabase(engine_name, admin_url)
        with server.admin.connect():
            pass
    except sa.exc.OperationalError as exc:
        print(f'{"backfill (console script)":<34} {engine_name:<10} '
              f'skipped: server unreachable '
              f'({str(exc).splitlines()[0][:60]})')
        return
    with server:
        name = server.create()
        url = server.url(name)
        start = time.perf_counter()
        sync(url)
        seed_server(url, args.server_rows)
        copy_url = server.copy(name)
        seeded = time.perf_counter() - start
        conf = write_conf(tmp, engine_name, url)
        if args.baseline:
            base_url = server.copy(name)
            base = backfill(write_conf(tmp, f'{engine_name}-baseline',
                                       base_url),
                            args.batch_size, tmp, args.baseline_tree)
            row(f'backfill at {args.baseline}', engine_name,
                base['json']['scanned'], base['wall'],
                base['json']['scanned'] / base['wall'], base['rss_mb'],
                summary_note(base))
        result = backfill(conf, args.batch_size, tmp)
        scanned = result['json']['scanned']
        rate = scanned / result['wall']
        row('backfill (console script)', engine_name, scanned,
            result['wall'], rate, result['rss_mb'], summary_note(result))
        print(f'{"":<34} {"":<10} result: {describe(check(url))}; seeded '
              f'(and copied) in {seeded:.1f}s')
        if engine_name == 'postgresql':
            updated, hot = hot_updates(url, result['json']['updated'])
            print(f'{"":<34} {"":<10} heap-only updates: {hot:,} of '
                  f'{updated:,} rows updated ({hot / max(updated, 1):.0%})')
        seconds, rows = set_based_server(copy_url)
        row('set-based UPDATE ... LIKE (limit)', engine_name, rows,
            seconds, rows / seconds, None,
            f'backfill / limit = {rate / (rows / seconds):.2f}')
    targets.append((f'{engine_name} backfill >= {SERVER_RATE:,} '
                    f'locations/s', f'{rate:,.0f}/s', rate >= SERVER_RATE))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rows', type=int, default=1_000_000,
                        help='legacy locations on SQLite (default 1000000)')
    parser.add_argument('--server-rows', type=int, default=200_000,
                        help='legacy locations on PostgreSQL and MariaDB '
                             '(default 200000)')
    parser.add_argument('--batch-size', type=int,
                        default=backfill_mod.BATCH_SIZE,
                        help=f'passed to the backfill command (default '
                             f'{backfill_mod.BATCH_SIZE}, its own default)')
    parser.add_argument('--sample', type=int, default=2000,
                        help='images in the Glance-style on-GET emulation '
                             '(default 2000)')
    parser.add_argument('--skip-servers', action='store_true',
                        help='SQLite only')
    parser.add_argument('--engines', default='sqlite,postgresql,mysql',
                        help='comma-separated engines to run (default: '
                             'sqlite,postgresql,mysql)')
    parser.add_argument('--baseline', metavar='REV',
                        help='also run the backfill of this git revision '
                             '(e.g. 4b0c732) on an identical copy of each '
                             'database, in the same run, for a before and '
                             'after')
    args = parser.parse_args(argv)
    # As the command does: import-time deprecation chatter is not ours.
    cmd_logs.quiet_library_warnings()
    logging.getLogger('oslo_config').setLevel(logging.ERROR)
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    print(f'Python {platform.python_version()} '
          f'({platform.python_implementation()}), SQLAlchemy '
          f'{sa.__version__}, SQLite {sqlite3.sqlite_version}, '
          f'{os.cpu_count()} CPUs ({affinity} usable); backfill '
          f'--batch-size {args.batch_size}; command: {" ".join(command())}')
    print('stores: ' + '; '.join(f'{s} {", ".join(d)}' for s, d in STORES)
          + '.  Backfill rates: locations scanned / wall seconds of the '
            'process, start to exit.')
    print(f'load average at start: {load_average()} (other work on this '
          f'machine slows every figure; CPU seconds of the process are in '
          f'the notes)')
    targets = []
    with tempfile.TemporaryDirectory(prefix='msp-bench-') as tmp:
        args.baseline_tree = (baseline_tree(args.baseline, tmp)
                              if args.baseline else None)
        engines = args.engines.split(',')
        if 'sqlite' in engines:
            bench_sqlite(args, tmp, targets)
        if not args.skip_servers:
            for engine_name in ('postgresql', 'mysql'):
                if engine_name in engines:
                    bench_server(engine_name, args, tmp, targets)
    print(f'load average at end: {load_average()}')
    print()
    print('targets:')
    for name, figure, ok in targets:
        print(f'  {verdict(ok)}  {name:<44} {figure}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
