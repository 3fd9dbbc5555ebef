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

"""The proof on a real Glance database, on SQLite, PostgreSQL and MariaDB.

Glance makes everything here: ``glance-manage db sync`` creates its schema
at head, and Glance's own DB API (``glance.db.sqlalchemy.api``) creates the
legacy images; only the bad rows Glance's API refuses to write are made by
plain SQL.  Then ``multistore-prefix backfill`` runs as an operator runs
it, and the result is read back through Glance's DB API and compared, row
by row and column by column, with a snapshot of every table taken before.

The Glance side runs in subprocesses of this same file (``python
test_glance_database.py populate|read ...``), never in the pytest process:
Glance's DB API reads its connection from the global ``cfg.CONF`` and keeps
one global engine facade, so each engine of the three would need that
global state torn down and set up again, and importing Glance's API also
imports its policy and eventlet machinery into a process whose own tests
build fresh ``ConfigOpts``.  A subprocess per step is also what production
looks like: Glance and the tool are separate processes sharing a database.

Needs glance installed in the running Python (``tools/glance-compat`` or
``tox -e glance-compat``); without it the module skips, or fails when
``MSP_TEST_REQUIRE_GLANCE=1``.
"""

import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

try:
    import glance  # noqa: F401
    GLANCE_MISSING = None
except ImportError as exc:
    GLANCE_MISSING = str(exc)

if GLANCE_MISSING and __name__ != '__main__':
    _REASON = (f'glance is not importable here ({GLANCE_MISSING}); the '
               f'proof on a real Glance database runs in its own venv: '
               f'tools/glance-compat or tox -e glance-compat')
    if os.environ.get('MSP_TEST_REQUIRE_GLANCE') == '1':
        pytest.fail(_REASON + ' (MSP_TEST_REQUIRE_GLANCE=1)', pytrace=False)
    pytest.skip(_REASON, allow_module_level=True)

#: The cluster of the two rbd stores, and another one nobody configured.
FSID = '7a1c8e2e-5b0f-4c4e-9d7e-0d6c3f1b2a90'
OTHER_FSID = '0b9d6f3c-1e2a-4f5b-8c7d-6e5f4a3b2c1d'
#: A secret that must never reach the report.
SECRET = 's3cr3t-Pa55'

GLANCE_API_CONF = """\
[DEFAULT]
enabled_backends = fast:file, slow:file, multi:file, ceph:rbd, ceph-ssd:rbd
[glance_store]
default_backend = fast
[fast]
filesystem_store_datadir = /var/lib/glance/images
[slow]
filesystem_store_datadir = /var/lib/glance/images2
[multi]
filesystem_store_datadir =
filesystem_store_datadirs = /srv/glance/a:100
filesystem_store_datadirs = /srv/glance/b:200
[ceph]
rbd_store_pool = images
rbd_store_ceph_conf = {ceph_conf}
[ceph-ssd]
rbd_store_pool = images-ssd
rbd_store_ceph_conf = {ceph_conf}
[database]
connection = {connection}
"""

CEPH_CONF = f"""\
[global]
    fsid = {FSID}
    mon_host = 192.0.2.1
"""

#: Locations per read and write transaction: small, so the run crosses
#: batch boundaries.
BATCH_SIZE = 4
TIMEOUT = 300

# What each location is expected to become.
STORE = 'store'            # gets this store in its metadata
KEEP = 'keep'              # names an enabled store already: untouched
NOT_LIVE = 'not-live'      # pending_delete, or of a deleted image: unread
UNRESOLVED = 'unresolved'  # needs a store, gets none: reported, untouched
BAD_METADATA = 'bad-metadata'  # meta_data Glance would not write: reported

#: Text Glance's API never writes to meta_data, put there by plain SQL.
NOT_JSON = '{"store": "fast", oops'
JSON_LIST = '["store", "multi"]'
NULL = None


@dataclasses.dataclass
class Location:
    """A location to create, and what the backfill must make of it.

    :ivar expect: one of the constants above.
    :ivar store: the store it must get (``expect == STORE``) or the reason
        it must be reported with (``UNRESOLVED``).
    :ivar raw: for ``BAD_METADATA``, the meta_data text written by SQL.
    :ivar add_later: created by ``image_location_add`` rather than by
        ``image_create``'s ``locations``.
    """

    url: str
    metadata: dict
    expect: str
    store: str | None = None
    status: str = 'active'
    raw: str | None = None
    add_later: bool = False


@dataclasses.dataclass
class Image:
    """An image to create with Glance's DB API.

    :ivar then: ``destroy`` (image_destroy) or ``deactivate``
        (image_update) once created.
    :ivar readable: Glance's API can read it back (its JSON decoder raises
        on meta_data that is not JSON).
    """

    image_id: str
    values: dict
    locations: list[Location]
    tags: list[str] = dataclasses.field(default_factory=list)
    members: list[str] = dataclasses.field(default_factory=list)
    then: str | None = None
    readable: bool = True

    def for_glance(self) -> dict:
        def location(loc):
            return {'url': loc.url, 'metadata': loc.metadata,
                    'status': loc.status}
        return {'id': self.image_id,
                'values': {**self.values, 'id': self.image_id,
                           'locations': [location(loc) for loc in
                                         self.locations
                                         if not loc.add_later]},
                'add_locations': [location(loc) for loc in self.locations
                                  if loc.add_later],
                'tags': self.tags, 'members': self.members,
                'then': self.then}


def catalog() -> list[Image]:
    """The legacy images: every kind of location the backfill meets."""
    def image_id():
        return str(uuid.uuid4())

    def values(name, **extra):
        return {'name': name, 'status': 'active', 'visibility': 'public',
                'disk_format': 'qcow2', 'container_format': 'bare',
                'size': 13287936, 'min_disk': 1, 'min_ram': 64,
                'owner': 'tenant-a', 'checksum': 'd41d8cd98f00b204e9800998'
                                                 'ecf8427e', **extra}

    images = []
    i = image_id()
    images.append(Image(i, values('two-stores-one-string-prefix', properties={
        'os_distro': 'cirros', 'hw_disk_bus': 'virtio'}), [
        Location(f'file:///var/lib/glance/images/{i}', {}, STORE, 'fast'),
        Location(f'file:///var/lib/glance/images2/{i}',
                 {'kept': 'd\u00e9j\u00e0 vu', 'nested': {'a': [1, 2.5]}},
                 STORE, 'slow'),
    ], tags=['golden', 'x86_64']))
    i = image_id()
    images.append(Image(i, values('multi-directory-and-renamed', visibility=(
        'shared'), properties={'hw_scsi_model': 'virtio-scsi'}), [
        Location(f'file:///srv/glance/a/{i}', {}, STORE, 'multi'),
        Location(f'file:///srv/glance/b/{i}',
                 {'store': 'old-name', 'backup': True}, STORE, 'multi'),
    ], members=['tenant-b', 'tenant-c']))
    i = image_id()
    images.append(Image(i, values('ceph-pools', properties={
        'hw_qemu_guest_agent': 'yes'}), [
        Location(f'rbd://{FSID}/images/{i}/snap', {}, STORE, 'ceph'),
        Location(f'rbd://{FSID}/images-ssd/{i}/snap',
                 {'store': 'old-ceph', 'tier': 'ssd'}, STORE, 'ceph-ssd'),
        Location(f'file:///var/lib/glance/images/{i}', {'store': 'fast'},
                 KEEP),
    ], tags=['ceph']))
    i = image_id()
    images.append(Image(i, values('pending-delete-location'), [
        Location(f'file:///var/lib/glance/images2/{i}', {}, STORE, 'slow'),
        Location(f'file:///var/lib/glance/images/{i}', {}, NOT_LIVE,
                 status='pending_delete', add_later=True),
    ]))
    i = image_id()
    images.append(Image(i, values('deleted', properties={'gone': 'yes'}), [
        Location(f'file:///var/lib/glance/images/{i}', {}, NOT_LIVE),
        Location(f'rbd://{FSID}/images/{i}/snap', {}, NOT_LIVE),
    ], tags=['old'], then='destroy'))
    i = image_id()
    images.append(Image(i, values('deactivated'), [
        Location(f'rbd://{FSID}/images/{i}/snap', {'k': 'v'}, STORE, 'ceph'),
    ], then='deactivate'))
    i = image_id()
    images.append(Image(i, values('meta-data-not-json'), [
        Location(f'file:///var/lib/glance/images/{i}', {}, BAD_METADATA,
                 raw=NOT_JSON),
        Location(f'file:///var/lib/glance/images2/{i}-ok', {}, STORE,
                 'slow'),
    ], readable=False))
    i = image_id()
    images.append(Image(i, values('meta-data-list-and-null'), [
        Location(f'file:///srv/glance/a/{i}', {}, BAD_METADATA,
                 raw=JSON_LIST),
        Location(f'file:///srv/glance/b/{i}', {}, BAD_METADATA, raw=NULL),
        Location(f'file:///srv/glance/b/{i}-ok', {'note': 'added later'},
                 STORE, 'multi', add_later=True),
    ]))
    i = image_id()
    images.append(Image(i, values('urls-no-store-owns'), [
        Location(f'http://[::1/{i}', {}, UNRESOLVED, 'invalid-url'),
        Location(f'file:///var/lib/glance/images/../../../etc/{i}', {},
                 UNRESOLVED, 'no-matching-prefix'),
        Location(f'swift+https://glance:{SECRET}@swift.example.com/v1/'
                 f'AUTH_a/glance/{i}', {}, UNRESOLVED, 'unknown-scheme'),
        Location(f'rbd://{OTHER_FSID}/images/{i}/snap', {'x': 1},
                 UNRESOLVED, 'no-matching-prefix'),
        Location(f'file:///var/lib/glance/images2/{i}', {}, STORE, 'slow'),
    ]))
    i = image_id()
    images.append(Image(i, values('queued-no-locations', status='queued',
                                  size=None, checksum=None), [],
                        tags=['empty']))
    return images


def _locations(images, *expect):
    return [loc for image in images for loc in image.locations
            if not expect or loc.expect in expect]


# -- processes ------------------------------------------------------------

def _tool(name: str) -> str:
    """A console script of the running Python's environment."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    if os.access(path, os.X_OK):
        return path
    found = shutil.which(name)
    if found is None:
        pytest.fail(f'{name} is not installed next to {sys.executable} nor '
                    f'on PATH; install glance and this package in one venv '
                    f'(tools/glance-compat does)')
    return found


def _run(args, *, check=True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True,
                            text=True, timeout=TIMEOUT, **kwargs)
    if check and result.returncode != 0:
        pytest.fail(f'{" ".join(map(str, args))} exited '
                    f'{result.returncode}\n--- stdout\n{result.stdout}\n'
                    f'--- stderr\n{result.stderr}', pytrace=False)
    return result


def _glance_side(command, conf, payload, workdir):
    """Run this file's Glance side; its JSON answer."""
    request = workdir / f'{command}-{uuid.uuid4().hex[:6]}.json'
    answer = request.with_suffix('.out.json')
    request.write_text(json.dumps(payload))
    _run([sys.executable, __file__, command, conf, request, answer])
    return json.loads(answer.read_text())


def _backfill(db, report):
    started = _utcnow()
    result = _run([_tool('multistore-prefix'), '--config-file', db.conf,
                   'backfill', '--batch-size', BATCH_SIZE, '--report',
                   report, '-f', 'json'])
    finished = _utcnow()
    return (json.loads(result.stdout), json.loads(report.read_text()),
            started, finished)


def _glance_schema_state(db):
    """Glance's own word on its schema (``db check``, else ``db version``).

    Glance refuses ``db check`` on PostgreSQL (its rolling upgrades are for
    MySQL and SQLite only); elsewhere it exits 3, 4 or 5 when an upgrade
    step is pending.
    """
    command = 'version' if db.engine_name == 'postgresql' else 'check'
    return _run([_tool('glance-manage'), '--config-file', db.conf, 'db',
                 command]).stdout.strip()


def _utcnow():
    # Glance's own timestamps: naive UTC.
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


# -- snapshots ------------------------------------------------------------

def schema_of(engine) -> dict:
    """Every table, column, key, index and constraint the database has."""
    def by_name(items):
        return sorted(items, key=lambda item: str(item.get('name')))

    def maybe(method, *args):
        try:
            return method(*args)
        except NotImplementedError:
            return None

    # One connection for the whole inspection (NullPool: one per call
    # would be a login per table and method).
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        schema = {'views': sorted(inspector.get_view_names())}
        if engine.dialect.name == 'postgresql':
            schema['sequences'] = sorted(inspector.get_sequence_names())
            schema['enums'] = sorted((e['name'], tuple(e['labels']))
                                     for e in inspector.get_enums())
        if engine.dialect.name == 'sqlite':
            schema['sqlite_master'] = conn.exec_driver_sql(
                'SELECT type, name, tbl_name, sql FROM sqlite_master '
                'ORDER BY type, name').all()
        for table in sorted(inspector.get_table_names()):
            schema[table] = {
                'columns': [{key: str(value) for key, value in column.items()}
                            for column in inspector.get_columns(table)],
                'primary_key': inspector.get_pk_constraint(table),
                'foreign_keys': by_name(inspector.get_foreign_keys(table)),
                'indexes': by_name(inspector.get_indexes(table)),
                'unique': by_name(inspector.get_unique_constraints(table)),
                'checks': by_name(
                    maybe(inspector.get_check_constraints, table) or []),
                'options': maybe(inspector.get_table_options, table),
            }
    return schema


def rows_of(engine) -> dict:
    """Every row of every table, all columns, keyed by primary key."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    snapshot = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            key = [c.name for c in table.primary_key.columns]
            rows = {}
            for row in conn.execute(sa.select(table)).mappings():
                row = dict(row)
                ident = (tuple(row[name] for name in key) if key
                         else tuple(sorted(row.items())))
                assert ident not in rows, (table.name, ident)
                rows[ident] = row
            snapshot[table.name] = rows
    return snapshot


def row_changes(before: dict, after: dict) -> dict:
    """(table, key) -> {column: (before, after)}; rows must be the same."""
    changes = {}
    assert set(before) == set(after), 'tables differ'
    for table in before:
        assert set(before[table]) == set(after[table]), (
            f'rows added or removed in {table}')
        for key, old in before[table].items():
            new = after[table][key]
            diff = {column: (old[column], new[column]) for column in old
                    if old[column] != new[column]}
            if diff:
                changes[(table, key)] = diff
    return changes


# -- fixtures -------------------------------------------------------------

@dataclasses.dataclass
class GlanceDatabase:
    engine_name: str
    url: str
    conf: str
    workdir: object
    engine: sa.engine.Engine
    schema_state: str = ''


@pytest.fixture(scope='module')
def glance_db(database_server, tmp_path_factory):
    """An empty database given Glance's schema by ``glance-manage``."""
    url = database_server.create()
    workdir = tmp_path_factory.mktemp(f'glance-{database_server.name}')
    ceph_conf = workdir / 'ceph.conf'
    ceph_conf.write_text(CEPH_CONF)
    conf = workdir / 'glance-api.conf'
    conf.write_text(GLANCE_API_CONF.format(ceph_conf=ceph_conf,
                                           connection=url))
    _run([_tool('glance-manage'), '--config-file', conf, 'db', 'sync'])
    # future: SQLAlchemy 1.4 (2024.1) gives 2.0-style connections too.
    db = GlanceDatabase(database_server.name, url, str(conf), workdir,
                        sa.create_engine(url, poolclass=sa.pool.NullPool,
                                         future=True))
    db.schema_state = state = _glance_schema_state(db)
    if db.engine_name == 'postgresql':
        assert state, 'glance-manage db version printed no revision'
    else:
        assert state == 'Database is up to date. No upgrades needed.'
    yield db
    db.engine.dispose()


@dataclasses.dataclass
class Proof:
    images: list[Image]
    location_ids: dict        # url -> image_locations.id
    schema: list[dict]        # before, after the run, after the rerun
    rows: list[dict]          # the same
    summary: list[dict]       # the run's and the rerun's -f json output
    report: list[dict]        # their --report
    window: tuple             # (started, finished) of the first run
    read_back: dict           # image id -> what Glance's API reads


@pytest.fixture(scope='module')
def proof(glance_db):
    """Legacy images by Glance, then two backfill runs; every snapshot."""
    images = catalog()
    _glance_side('populate', glance_db.conf,
                 [image.for_glance() for image in images], glance_db.workdir)
    locations = sa.table('image_locations', sa.column('id'),
                         sa.column('value'), sa.column('meta_data'))
    with glance_db.engine.begin() as conn:
        ids = dict(conn.execute(sa.select(locations.c.value,
                                          locations.c.id)).all())
        for location in _locations(images, BAD_METADATA):
            # What Glance's API never writes: by hand.
            conn.execute(sa.update(locations)
                         .where(locations.c.id == ids[location.url])
                         .values(meta_data=location.raw))
    assert set(ids) == {loc.url for loc in _locations(images)}
    schemas = [schema_of(glance_db.engine)]
    rows = [rows_of(glance_db.engine)]
    summary, report, started, finished = _backfill(
        glance_db, glance_db.workdir / 'report.json')
    schemas.append(schema_of(glance_db.engine))
    rows.append(rows_of(glance_db.engine))
    read_back = _glance_side('read', glance_db.conf,
                             [image.image_id for image in images],
                             glance_db.workdir)
    summary2, report2, _, _ = _backfill(
        glance_db, glance_db.workdir / 'report-rerun.json')
    schemas.append(schema_of(glance_db.engine))
    rows.append(rows_of(glance_db.engine))
    return Proof(images, ids, schemas, rows, [summary, summary2],
                 [report, report2], (started, finished), read_back)


# -- the proof ------------------------------------------------------------

def test_db_sync_refuses_a_glance_database(glance_db):
    schema, rows = schema_of(glance_db.engine), rows_of(glance_db.engine)
    assert 'alembic_version' in schema and 'images' in schema
    result = _run([_tool('multistore-prefix'), '--config-file',
                   glance_db.conf, 'db', 'sync'], check=False)
    assert result.returncode != 0, result.stdout
    assert 'Glance' in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr, result.stderr
    assert schema_of(glance_db.engine) == schema
    assert rows_of(glance_db.engine) == rows


def test_glance_reads_every_live_location_with_its_store(proof):
    for image in proof.images:
        got = proof.read_back[image.image_id]
        if image.then == 'destroy':
            # An admin sees deleted images; never their deleted locations.
            assert (got['deleted'], got['status'], got['locations'],
                    got['properties']) == (True, 'deleted', [], {})
            continue
        if not image.readable:
            # Glance cannot read the row it never wrote, before or after:
            # the backfill did not "repair" it (SQL checks it below).
            assert 'JSONDecodeError' in got['error'], got
            continue
        assert 'error' not in got, got
        assert got['deleted'] is False
        assert got['status'] == ('deactivated' if image.then == 'deactivate'
                                 else image.values['status'])
        assert got['properties'] == image.values.get('properties', {})
        assert got['tags'] == sorted(image.tags)
        live = [loc for loc in image.locations if loc.expect != NOT_LIVE]
        read_back = {loc['url']: loc for loc in got['locations']}
        assert sorted(read_back) == sorted(loc.url for loc in live)
        for location in live:
            read = read_back[location.url]
            assert read['status'] == 'active'
            if location.expect == STORE:
                expected = {**location.metadata, 'store': location.store}
            elif location.expect == BAD_METADATA:
                expected = (None if location.raw is None
                            else json.loads(location.raw))
            else:
                expected = location.metadata
            assert read['metadata'] == expected, location.url


def test_report_says_what_was_done_and_what_was_not(proof):
    summary, report = proof.summary[0], proof.report[0]
    updated = _locations(proof.images, STORE)
    unresolved = _locations(proof.images, UNRESOLVED, BAD_METADATA)
    scanned = updated + unresolved + _locations(proof.images, KEEP)
    reasons = {}
    for location in unresolved:
        reason = location.store or BAD_METADATA
        reasons[reason] = reasons.get(reason, 0) + 1
    for counts in (summary, report):
        assert counts['scanned'] == len(scanned)
        assert counts['updated'] == len(updated)
        assert counts['already_set'] == len(_locations(proof.images, KEEP))
        assert counts['errors'] == 0
        assert counts['conflicts_retried'] == 0
    assert summary['unresolved'] == len(unresolved)
    assert report['unresolved'] == reasons
    assert report['interrupted'] is False and report['dry_run'] is False
    ids = proof.location_ids
    assert sorted((c['location_id'], c['store']) for c in report['changed']
                  ) == sorted((ids[loc.url], loc.store) for loc in updated)
    assert sorted((u['location_id'], u['reason'])
                  for u in report['unresolved_locations']) == sorted(
        (ids[loc.url], loc.store or BAD_METADATA) for loc in unresolved)
    text = json.dumps(proof.report)
    assert SECRET not in text
    assert 'swift+https://***@swift.example.com/' in text


def test_only_meta_data_store_and_updated_at_of_those_rows_change(proof):
    before, after = proof.rows[0], proof.rows[1]
    changes = row_changes(before, after)
    updated = {proof.location_ids[loc.url]: loc
               for loc in _locations(proof.images, STORE)}
    assert {key for key in changes} == {
        ('image_locations', (location_id,)) for location_id in updated}
    started, finished = proof.window
    # MySQL's DATETIME keeps whole seconds, rounded.
    earliest = started.replace(microsecond=0) - datetime.timedelta(seconds=1)
    latest = finished + datetime.timedelta(seconds=1)
    for (_, (location_id,)), diff in changes.items():
        location = updated[location_id]
        assert 'meta_data' in diff and set(diff) <= {'meta_data',
                                                     'updated_at'}, diff
        old, new = diff['meta_data']
        old, new = json.loads(old), json.loads(new)
        assert new == {**old, 'store': location.store}
        assert old == location.metadata
        stamp = after['image_locations'][(location_id,)]['updated_at']
        assert earliest <= stamp <= latest, (stamp, proof.window)


def test_bad_rows_are_left_as_they_were(proof):
    before, after = proof.rows[0], proof.rows[1]
    for location in _locations(proof.images, BAD_METADATA, UNRESOLVED, KEEP,
                               NOT_LIVE):
        key = (proof.location_ids[location.url],)
        assert after['image_locations'][key] == before['image_locations'][key]
        if location.expect == BAD_METADATA:
            assert after['image_locations'][key]['meta_data'] == location.raw


def test_no_table_column_or_index_changes(proof, glance_db):
    before, after, rerun = proof.schema
    assert after == before
    assert rerun == before
    assert not any(name.startswith('multistore_prefix') for name in after)
    assert _glance_schema_state(glance_db) == glance_db.schema_state


def test_a_rerun_changes_nothing(proof):
    assert proof.rows[2] == proof.rows[1]
    first, rerun = proof.report
    assert rerun['updated'] == 0 and rerun['changed'] == []
    assert rerun['already_set'] == first['updated'] + first['already_set']
    assert rerun['unresolved'] == first['unresolved']
    assert rerun['errors'] == 0


# -- the Glance side (run as a script) ------------------------------------

def _glance_main(argv) -> int:
    """``populate|read CONF REQUEST ANSWER``: Glance's DB API at work."""
    command, conf, request, answer = argv
    from glance.common import exception as glance_exc
    from glance import context as glance_context
    from glance.db.sqlalchemy import api as glance_db
    from oslo_config import cfg

    cfg.CONF(['--config-file', conf], project='glance',
             default_config_files=[])
    context = glance_context.RequestContext(is_admin=True)
    with open(request, encoding='utf-8') as stream:
        payload = json.load(stream)
    result = {}
    if command == 'populate':
        for image in payload:
            glance_db.image_create(context, image['values'])
            for location in image['add_locations']:
                glance_db.image_location_add(context, image['id'], location)
            if image['tags']:
                glance_db.image_tag_set_all(context, image['id'],
                                            image['tags'])
            for member in image['members']:
                glance_db.image_member_create(context, {
                    'image_id': image['id'], 'member': member,
                    'can_share': False, 'status': 'pending'})
            if image['then'] == 'deactivate':
                glance_db.image_update(context, image['id'],
                                       {'status': 'deactivated'})
            elif image['then'] == 'destroy':
                # As glance's ImageRepo.remove does it.
                glance_db.image_update(context, image['id'],
                                       {'status': 'deleted'},
                                       purge_props=True)
                glance_db.image_destroy(context, image['id'])
    elif command == 'read':
        for image_id in payload:
            try:
                image = glance_db.image_get(context, image_id)
            except glance_exc.NotFound as exc:
                result[image_id] = {'error': repr(exc)}
                continue
            except ValueError as exc:  # meta_data that is not JSON
                result[image_id] = {'error': repr(exc)}
                continue
            result[image_id] = {
                'status': image['status'],
                'deleted': image['deleted'],
                'properties': {p.name: p.value for p in image['properties']
                               if not p.deleted},
                'tags': sorted(glance_db.image_tag_get_all(context,
                                                           image_id)),
                'locations': [{'url': loc['url'],
                               'metadata': loc['metadata'],
                               'status': loc['status']}
                              for loc in image['locations']]}
    else:
        raise SystemExit(f'unknown command {command!r}')
    with open(answer, 'w', encoding='utf-8') as stream:
        json.dump(result, stream)
    return 0


if __name__ == '__main__':
    sys.exit(_glance_main(sys.argv[1:]))
