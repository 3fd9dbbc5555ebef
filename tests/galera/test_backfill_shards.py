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

"""``backfill --shard K/3`` on three Galera nodes while Glance writes.

The operator's setup on the engine Glance runs on: three backfill workers,
each a ``multistore-prefix backfill`` process whose
``[database]/connection`` names a different node, share the images by
``--shard``.  Meanwhile Glance-like writers (:mod:`tests.galera.glance`)
on the two other nodes save the images of each worker's shard, hottest
where that worker is about to write.  A save and a worker's batch that
meet on a row are a certification conflict: the loser's transaction is
aborted whole (MySQL 1213, ``DBDeadlock``) and must be run again on fresh
rows.  Each worker also meets one conflict it cannot win, set up for
certain (:class:`~tests.galera.glance.Pin`).

What must hold: every live location ends with its store; every key and
property value a writer committed is there; the three reports add up to
each location once; every node holds the same rows.
"""

import collections
import json
import threading
import time

import sqlalchemy as sa

from multistore_prefix import backfill as backfill_mod
from multistore_prefix.db import models
from tests.functional import test_backfill_cli as cli
from tests.galera import glance

_L = models.image_locations
_P = models.image_properties

WORKERS = 3
IMAGES = 1500
LOCATIONS_PER_IMAGE = 2
BATCH_SIZE = 100
#: Seconds the workers may take together, conflicts included.
RUN_TIMEOUT = 180
#: Seconds a worker may take to reach its first batch (it imports every
#: store driver; the machine may be busy).
START_TIMEOUT = 60
#: Writers save among this many of their images nearest a worker ...
FRONTIER = 4
#: ... each at most this often.
SAVES_PER_IMAGE = 1


def seed(engine) -> dict:
    """Legacy images on the two stores that share a prefix.

    Each image's first location is on ``fast`` with ``{}``, its second on
    ``slow`` with another key.

    :returns: {location id: the row as seeded}.
    """
    stores = ('fast', 'slow')
    locations = [(cli.url_for(stores[i % 2], i), cli.LEGACY_METADATA[i % 2])
                 for i in range(IMAGES * LOCATIONS_PER_IMAGE)]
    seeded = cli.seed(engine, locations, per_image=LOCATIONS_PER_IMAGE)
    image_ids = sorted({row['image_id'] for row in seeded.values()})
    with engine.begin() as conn:
        conn.execute(_P.insert(), [
            {'image_id': image_id, 'name': glance.PROPERTY, 'value': 'seed',
             'created_at': cli.PAST, 'deleted': False}
            for image_id in image_ids])
    return seeded


def shard_of(image_id: str) -> int:
    for k in range(1, WORKERS + 1):
        low, high = backfill_mod.Shard(k, WORKERS).bounds()
        if (low is None or image_id >= low) and (
                high is None or image_id < high):
            return k
    raise AssertionError(image_id)


def images_by_shard(seeded) -> dict[int, list[str]]:
    """Each shard's images, in the order its worker reaches them."""
    first_location = {}
    for location_id, row in sorted(seeded.items()):
        first_location.setdefault(row['image_id'], location_id)
    by_shard = collections.defaultdict(list)
    for image_id in sorted(first_location, key=first_location.get):
        by_shard[shard_of(image_id)].append(image_id)
    return by_shard


def make_writers(galera, database_name, by_shard, stop):
    """Pins, and two writers per shard on the nodes its worker is not on.

    Each writer has half the shard's images (the pins' two aside), so
    writers never meet each other: every conflict is with a worker.
    """
    pins, writers = [], []
    for k in range(1, WORKERS + 1):
        others = [node for node in galera.nodes if node.index != k]
        other, held, *rest = by_shard[k]
        pins.append(glance.Pin(f'pin{k}', galera.nodes[k - 1], others[0],
                               database_name, other, held))
        for half, node in enumerate(others):
            writers.append(glance.GlanceWriter(
                f'w{k}n{node.index}',
                node.url(database_name, user=glance.GLANCE_USER),
                rest[half::2], stop, FRONTIER, SAVES_PER_IMAGE))
    return pins, writers


def run_workers(nodes, database_name, tmp_path, pins, writers, stop):
    """The three workers, with the writers; their summaries and reports."""
    reports = [tmp_path / f'shard-{k}.json' for k in range(1, WORKERS + 1)]
    for pin in pins:
        pin.hold()
    for writer in writers:
        writer.start()
    workers = [
        cli.start_backfill(
            cli.write_conf(tmp_path, nodes[k - 1].url(database_name)),
            '--shard', f'{k}/{WORKERS}', '--batch-size', str(BATCH_SIZE),
            '--report', str(reports[k - 1]), '-f', 'json', '--quiet')
        for k in range(1, WORKERS + 1)]
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        for pin, worker in zip(pins, workers):
            pin.spring(worker, START_TIMEOUT)
        outputs = [worker.communicate(
            timeout=max(1, deadline - time.monotonic()))
            for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        stop.set()
        for writer in writers:
            writer.join(60)
        for pin in pins:
            pin.close()
    failed = [f'backfill --shard {k}/{WORKERS} on node {k} exited '
              f'{worker.returncode}:\n{err[-2000:]}'
              for k, (worker, (_, err)) in enumerate(zip(workers, outputs), 1)
              if worker.returncode != 0]
    assert not failed, '\n'.join(failed)
    assert [w.error for w in writers] == [None] * len(writers)
    return ([cli.summary(out) for out, _ in outputs],
            [json.loads(path.read_text()) for path in reports])


def read_back(url):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            locations = {r.id: r for r in conn.execute(sa.select(_L))}
            properties = dict(conn.execute(
                sa.select(_P.c.image_id, _P.c.value)
                .where(_P.c.name == glance.PROPERTY)).all())
    finally:
        engine.dispose()
    return locations, properties


def test_shards_on_three_nodes_with_glance_writing(galera, galera_database,
                                                   tmp_path):
    nodes = galera.nodes
    engine = sa.create_engine(nodes[0].url(galera_database),
                              poolclass=sa.pool.NullPool)
    try:
        seeded = seed(engine)
    finally:
        engine.dispose()
    galera.add_user(glance.GLANCE_USER, galera_database)
    stop = threading.Event()
    pins, writers = make_writers(galera, galera_database,
                                 images_by_shard(seeded), stop)
    saves = [pin.saves for pin in pins] + [w.saves for w in writers]
    conflicts_before = sum(node.conflicts() for node in nodes)
    started = time.monotonic()
    try:
        summaries, reports = run_workers(nodes, galera_database, tmp_path,
                                         pins, writers, stop)
    finally:
        conflicts_seen = sum(node.conflicts() for node in nodes)
        print(f'{len(seeded)} locations, {WORKERS} workers: '
              f'{time.monotonic() - started:.1f} s; '
              f'{sum(len(k) for s in saves for k in s.saved.values())} '
              f'saves, {sum(s.deadlocks for s in saves)} lost by the '
              f'writers; {conflicts_seen - conflicts_before} conflicts '
              f'on the nodes')

    # Each worker lost the conflict set up for it: Galera aborted its
    # transaction, which held a row a save on another node changed.
    assert [pin.aborted for pin in pins] == [True] * WORKERS

    # Every node holds the same rows (each read after all it was sent).
    results = [read_back(node.url(galera_database, causal=True))
               for node in nodes]
    assert results[1] == results[0] and results[2] == results[0]
    locations, properties = results[0]

    # Every location has its store and every key its writers committed;
    # each image's property is what its last save set.
    saved = collections.defaultdict(list)
    for each in saves:
        for image_id, keys in each.saved.items():
            saved[image_id] += keys
    assert set(locations) == set(seeded)
    for location_id, row in seeded.items():
        expected = {**json.loads(row['meta_data']),
                    **{key: glance.key_number(key)
                       for key in saved[row['image_id']]},
                    'store': cli.expected_store(row['value'])}
        assert json.loads(locations[location_id].meta_data) == expected, (
            location_id)
    assert len(properties) == IMAGES
    assert properties == {
        image_id: saved[image_id][-1] if saved[image_id] else 'seed'
        for image_id in properties}

    # The reports: each location once, in the shard of its image.
    assert [r['shard'] for r in reports] == [f'{k}/{WORKERS}'
                                             for k in range(1, WORKERS + 1)]
    assert sum(s['scanned'] for s in summaries) == len(seeded)
    assert sum(s['updated'] for s in summaries) == len(seeded)
    assert [s['errors'] for s in summaries] == [0] * WORKERS
    changed = [c['location_id'] for r in reports for c in r['changed']]
    assert sorted(changed) == sorted(seeded)
    for k, report in enumerate(reports, 1):
        assert report['updated'] == len(report['changed'])
        assert {shard_of(c['image_id']) for c in report['changed']} == {k}
