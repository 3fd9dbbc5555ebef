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


"""The glance-api filter in-process, on a real database (three engines).

The application behind the filter is a plain WSGI callable that records
what reached it: the filter's own work is checked in the database, row by
row and statement by statement.  tests/glance_compat/test_glance_api.py
runs the same filter inside a real glance-api.
"""

import logging
import socket
import textwrap
import time
import uuid
import wsgiref.util

from oslo_config import cfg
import pytest
import sqlalchemy as sa

from multistore_prefix.db import batches
from multistore_prefix import middleware
from tests import faults

LEGACY = 'file:///var/lib/glance/images2/{}'
RESOLVED = 'file:///var/lib/glance/images/{}'
LOGGER = 'multistore_prefix.middleware'
_L = sa.table('image_locations', sa.column('id'), sa.column('image_id'),
              sa.column('meta_data'), sa.column('updated_at'))


class Downstream:
    """The application behind the filter: says 200, remembers each call."""

    def __init__(self):
        self.calls = []

    def __call__(self, environ, start_response):
        self.calls.append(environ)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'glance']


@pytest.fixture
def make_filter(tmp_path):
    """``make_filter(db_url, stores=True, **options)``: filter and app.

    :param slow_dir: the directory of store ``slow``.
    :param database: lines of ``[database]`` besides the connection, or
        ``None``: no connection.
    :param default: lines of ``[DEFAULT]``.
    """
    made = []

    def make(url, stores=True, slow_dir='/var/lib/glance/images2',
             database=(), default=(), **options):
        lines = ['[DEFAULT]', *default]
        if stores:
            lines += ['enabled_backends = fast:file, slow:file',
                      '[fast]',
                      'filesystem_store_datadir = /var/lib/glance/images',
                      '[slow]', f'filesystem_store_datadir = {slow_dir}']
        if database is not None:
            lines += ['[database]', f'connection = {url}', *database]
        lines += ['[multistore_prefix]'] + [f'{k} = {v}'
                                            for k, v in options.items()]
        path = tmp_path / f'glance-api-{uuid.uuid4().hex[:6]}.conf'
        path.write_text(textwrap.dedent('\n'.join(lines)) + '\n')
        conf = cfg.ConfigOpts()
        conf(['--config-file', str(path)], project='glance',
             default_config_files=[])
        app = Downstream()
        made.append(middleware.ResolveFilter(app, conf))
        return made[-1], app
    yield make
    for made_filter in made:
        if made_filter._worker is not None:
            made_filter._worker.close()


def filter_records(caplog):
    """The filter's own log records (other loggers may be on too)."""
    return [record for record in caplog.records if record.name == LOGGER]


def call(app, path, method='GET'):
    environ = {'PATH_INFO': path, 'REQUEST_METHOD': method}
    wsgiref.util.setup_testing_defaults(environ)
    statuses = []
    body = b''.join(app(environ, lambda status, headers: statuses.append(
        status)))
    return statuses[0], body, environ


def add_image(make_gateway, db_url, *locations):
    """An image with these (url, metadata) locations; its id."""
    gateway = make_gateway(db_url, stores=None)
    image = gateway.get_image_factory().new_image(
        name='filtered', extra_properties={'os_distro': 'cirros'},
        tags=['golden'])
    for url, metadata in locations:
        image.locations.append({'url': url.format(image.image_id),
                                'metadata': metadata, 'status': 'active'})
    gateway.get_repo().add(image)
    return image.image_id


def location_rows(url):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {row.id: dict(row._mapping) for row in conn.execute(
                sa.text('SELECT * FROM image_locations ORDER BY id'))}
    finally:
        engine.dispose()


def all_rows(url):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {table: conn.execute(sa.text(
                f'SELECT * FROM {table} ORDER BY id')).mappings().all()
                for table in ('images', 'image_properties', 'image_tags',
                              'image_locations')}
    finally:
        engine.dispose()


@pytest.mark.parametrize('suffix, method', [
    ('', 'GET'), ('/file', 'GET'), ('', 'PATCH'), ('', 'DELETE'),
    ('/tags/x', 'PUT'), ('/members', 'GET'), ('/actions/deactivate', 'POST'),
    ('', 'HEAD'),
])
def test_a_request_naming_a_legacy_image_writes_only_its_store(
        db_url, make_gateway, make_filter, statement_log, suffix, method):
    image_id = add_image(make_gateway, db_url, (LEGACY, {'k': 'v'}),
                         (RESOLVED, {'store': 'fast'}))
    before = all_rows(db_url)
    resolve, app = make_filter(db_url)
    engine = resolve.worker().gateway.database.engine
    with statement_log(engine) as log:
        status, body, environ = call(resolve, f'/v2/images/{image_id}'
                                     f'{suffix}', method)
    assert (status, body, app.calls) == ('200 OK', b'glance', [environ])
    # One UPDATE: meta_data and updated_at of the legacy row, nothing else.
    assert len(log.writes) == 1
    set_clause = log.writes[0].upper().split(' WHERE ')[0]
    assert set_clause.lstrip().startswith('UPDATE IMAGE_LOCATIONS')
    assert 'META_DATA' in set_clause and set_clause.count('=') == 2
    after = all_rows(db_url)
    for table in ('images', 'image_properties', 'image_tags'):
        assert after[table] == before[table]
    [legacy, resolved] = after['image_locations']
    assert resolved == before['image_locations'][1]
    changed = {k for k, v in legacy.items()
               if v != before['image_locations'][0][k]}
    # (MySQL's DATETIME keeps whole seconds: updated_at may look the same.)
    assert 'meta_data' in changed <= {'meta_data', 'updated_at'}
    assert legacy['meta_data'] == '{"k": "v", "store": "slow"}'


@pytest.mark.parametrize('path', [
    '/v2/images', '/v2/images/not-a-uuid', '/v2/schemas/image', '/',
    '/v2/info/stores', '/healthcheck', '/v1/images/{}', '/v2/imagesX/{}',
])
def test_other_paths_never_touch_the_database(db_url, make_gateway,
                                              make_filter, statement_log,
                                              path):
    image_id = add_image(make_gateway, db_url, (LEGACY, {}))
    resolve, app = make_filter(db_url)
    with statement_log(resolve.worker().gateway.database.engine) as log:
        status, _, _ = call(resolve, path.format(image_id))
        call(resolve, f'/v2/images/{image_id}', 'OPTIONS')
    assert status == '200 OK' and len(app.calls) == 2
    assert log.statements == []


def test_cache_path_and_minor_version_resolve(db_url, make_gateway,
                                              make_filter):
    first = add_image(make_gateway, db_url, (LEGACY, {}))
    second = add_image(make_gateway, db_url, (LEGACY, {}))
    resolve, _ = make_filter(db_url)
    call(resolve, f'/v2/cache/{first}', 'PUT')
    call(resolve, f'/v2.15/images/{second}')
    stores = {row['image_id']: row['meta_data']
              for row in location_rows(db_url).values()}
    assert stores == {first: '{"store": "slow"}',
                      second: '{"store": "slow"}'}


def test_a_resolved_image_is_read_and_never_written(
        db_url, make_gateway, make_filter, statement_log):
    image_id = add_image(make_gateway, db_url, (RESOLVED, {'store': 'fast'}))
    resolve, _ = make_filter(db_url)
    with statement_log(resolve.worker().gateway.database.engine) as log:
        call(resolve, f'/v2/images/{image_id}')
    # Its locations, one query; not the whole image.  (SQLite's BEGIN is
    # a statement of its own.)
    [select] = [s for s in log.statements if s != 'BEGIN']
    assert 'IMAGE_LOCATIONS' in select.upper() and log.writes == []


@pytest.mark.parametrize('fix', [False, True])
def test_a_certainly_wrong_store_is_fixed_only_when_asked(
        db_url, make_gateway, make_filter, fix):
    image_id = add_image(make_gateway, db_url, (LEGACY, {'store': 'fast'}))
    resolve, _ = make_filter(db_url, fix_wrong_stores=fix)
    call(resolve, f'/v2/images/{image_id}')
    [row] = location_rows(db_url).values()
    assert row['meta_data'] == ('{"store": "slow"}' if fix
                                else '{"store": "fast"}')


def test_unknown_image_bad_row_and_unowned_url_pass_through(
        db_url, make_gateway, make_filter, database_server, caplog):
    image_id = add_image(make_gateway, db_url,
                         ('file:///elsewhere/{}', {}), (LEGACY, {}),
                         (RESOLVED, {}))
    bad = min(location_rows(db_url))
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.update(_L).where(_L.c.id == bad).values(
            meta_data='{"store": oops'))
    engine.dispose()
    before = location_rows(db_url)
    resolve, app = make_filter(db_url)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert call(resolve, f'/v2/images/{uuid.uuid4()}')[0] == '200 OK'
        assert call(resolve, f'/v2/images/{image_id}')[0] == '200 OK'
        # The row left alone is said once per process, not per request.
        assert call(resolve, f'/v2/images/{image_id}')[0] == '200 OK'
    assert len(app.calls) == 3
    [line] = [r.getMessage() for r in filter_records(caplog)]
    assert (f'image {image_id} location {bad} ' in line
            and 'left as it is (bad-metadata)' in line), line
    after = location_rows(db_url)
    # The legacy row got its store; the bad and the unowned ones are kept.
    assert [after[i]['meta_data'] for i in sorted(after)] == [
        '{"store": oops', '{"store": "slow"}', '{"store": "fast"}']
    assert [after[i] for i in sorted(after)][0] == before[bad]


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_a_database_that_cannot_be_reached_is_one_line(make_filter, caplog):
    secret = 'Pa55-s3cret'
    url = f'postgresql+psycopg2://glance:{secret}@127.0.0.1:{closed_port()}/g'
    # One attempt to connect: the request gets the error, not the timeout.
    resolve, app = make_filter(url, database=['max_retries = 1'])
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        status, _, _ = call(resolve, f'/v2/images/{uuid.uuid4()}')
    assert status == '200 OK' and len(app.calls) == 1
    warnings = [r for r in filter_records(caplog)
                if r.levelno >= logging.WARNING]
    [line] = [r.getMessage() for r in warnings]
    assert 'passed through unresolved' in line and '\n' not in line
    assert all(r.exc_info is None for r in warnings)
    assert secret not in caplog.text


def test_the_request_waits_at_most_request_timeout(
        make_gateway, make_filter, database_server, caplog):
    # Glance's own database: on SQLite not in WAL mode (the project's is),
    # so that a lock holds readers too.
    db_url = database_server.create_synced()
    if database_server.name == 'sqlite':
        engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.exec_driver_sql('PRAGMA journal_mode = DELETE')
        engine.dispose()
    image_id = add_image(make_gateway, db_url, (LEGACY, {}))
    resolve, app = make_filter(db_url, request_timeout=0.5)
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        with faults.database_stops_answering(engine):
            started = time.monotonic()
            status, _, _ = call(resolve, f'/v2/images/{image_id}')
            waited = time.monotonic() - started
            # (Nothing else reads the database here: it would wait too.)
        assert status == '200 OK' and len(app.calls) == 1
        assert 0.5 <= waited < 2.5, waited
        [record] = filter_records(caplog)
        assert 'request_timeout' in record.getMessage()
        # The work given up on writes nothing once the lock is gone (the
        # request went on to Glance, whose own rule ran for it): wait for
        # it to end, its slot given back.
        worker = resolve.worker()
        deadline = time.monotonic() + 30
        while (worker._slots._value < middleware.MAX_RUNNING
               and time.monotonic() < deadline):
            time.sleep(0.05)
    engine.dispose()
    [row] = location_rows(db_url).values()
    assert row['meta_data'] == '{}'
    # The next request resolves it.
    call(resolve, f'/v2/images/{image_id}')
    [row] = location_rows(db_url).values()
    assert row['meta_data'] == '{"store": "slow"}'


@pytest.mark.parametrize('stores, database, level, words', [
    (False, (), logging.INFO, 'enabled_backends is not set'),
    (True, None, logging.ERROR, '[database]/connection is not set'),
])
def test_nothing_to_do_or_no_database_passes_everything_through(
        db_url, make_gateway, make_filter, caplog, stores, database, level,
        words):
    image_id = add_image(make_gateway, db_url, (LEGACY, {}))
    resolve, app = make_filter(db_url, stores=stores, database=database)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for _ in range(3):
            assert call(resolve, f'/v2/images/{image_id}')[0] == '200 OK'
    assert resolve.worker() is None and len(app.calls) == 3
    # Said once, not per request.
    [record] = filter_records(caplog)
    assert record.levelno == level and words in record.getMessage()
    [row] = location_rows(db_url).values()
    assert row['meta_data'] == '{}'


def test_a_store_that_does_not_build_is_one_error_line(make_filter, db_url,
                                                       caplog):
    resolve, app = make_filter(db_url, slow_dir='relative/dir')
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert call(resolve, f'/v2/images/{uuid.uuid4()}')[0] == '200 OK'
    assert resolve.worker() is None and len(app.calls) == 1
    [record] = filter_records(caplog)
    assert record.levelno == logging.ERROR
    assert '[slow]/filesystem_store_datadir' in record.getMessage()


def app_factory(global_conf, **local_conf):
    """Paste Deploy's app factory for :class:`Downstream`."""
    return Downstream()


@pytest.mark.parametrize('declaration', [
    'use = egg:multistore-prefix#multistore_prefix',
    'paste.filter_factory = multistore_prefix.middleware:filter_factory',
])
def test_paste_deploy_builds_the_filter_in_a_pipeline(tmp_path, caplog,
                                                      declaration):
    from paste import deploy
    paste_ini = tmp_path / 'api-paste.ini'
    paste_ini.write_text(textwrap.dedent(f"""\
        [pipeline:main]
        pipeline = multistore_prefix downstream
        [filter:multistore_prefix]
        {declaration}
        fix_wrong_stores = true
        [app:downstream]
        paste.app_factory = {__name__}:app_factory
        """))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        app = deploy.loadapp(f'config:{paste_ini}')
    assert isinstance(app, middleware.ResolveFilter)
    assert isinstance(app.app, Downstream) and app.conf is cfg.CONF
    [record] = filter_records(caplog)
    assert 'fix_wrong_stores ignored' in record.getMessage()
    assert '[multistore_prefix] of glance-api.conf' in record.getMessage()


def set_meta_data(url, location_id, text):
    """Write a row's ``meta_data`` as another writer would."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.update(_L).where(_L.c.id == location_id).values(
            meta_data=text))
    engine.dispose()


class FirstMatchGlance(Downstream):
    """Glance's own rule on a write: labels the request's location wrong.

    It writes ``{"store": "fast"}`` (the first store whose url_prefix the
    URL starts with) into the row, as Glance's PATCH of ``/locations``
    does, before it answers.
    """

    def __init__(self, url, location_id):
        super().__init__()
        self.url, self.location_id = url, location_id

    def __call__(self, environ, start_response):
        if environ['REQUEST_METHOD'] != 'GET':
            set_meta_data(self.url, self.location_id, '{"store": "fast"}')
        return super().__call__(environ, start_response)


@pytest.mark.parametrize('method, fix, expected', [
    ('PATCH', None, 'slow'), ('POST', None, 'slow'), ('PUT', None, 'slow'),
    # A read adds nothing: Glance's rule never runs after it.
    ('GET', None, None),
    ('PATCH', False, 'fast'),
])
def test_what_glance_labels_during_a_write_is_corrected_before_the_answer(
        db_url, make_gateway, make_filter, method, fix, expected):
    image_id = add_image(make_gateway, db_url, (LEGACY, {'store': 'slow'}))
    [location_id] = location_rows(db_url)
    options = {} if fix is None else {'fix_wrong_stores': fix}
    resolve, _ = make_filter(db_url, **options)
    resolve.app = glance = FirstMatchGlance(db_url, location_id)
    status, body, _ = call(resolve, f'/v2/images/{image_id}', method)
    assert (status, body, len(glance.calls)) == ('200 OK', b'glance', 1)
    [row] = location_rows(db_url).values()
    assert row['meta_data'] == (
        '{"store": "slow"}' if expected is None
        else f'{{"store": "{expected}"}}')


def one_row_through_the_filter(db_url, make_gateway, make_filter, caplog,
                               url, text):
    """An image of one location holding ``text``, and a GET of it.

    :returns: the location id, its ``meta_data`` after, and the filter's
        warning lines.
    """
    image_id = add_image(make_gateway, db_url, (url, {}))
    [location_id] = location_rows(db_url)
    set_meta_data(db_url, location_id, text)
    resolve, _ = make_filter(db_url)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        call(resolve, f'/v2/images/{image_id}')
    [row] = location_rows(db_url).values()
    return (location_id, row['meta_data'],
            [r.getMessage() for r in filter_records(caplog)])


@pytest.mark.parametrize('text, expected', [
    # Glance's rule replaces each of these (false, or not an enabled
    # store), so the filter writes the owner first, every other byte kept.
    ('{"store": 123}', '{"store": "slow"}'),
    ('{"store": ""}', '{"store": "slow"}'),
    ('{"store": null}', '{"store": "slow"}'),
    ('{"store": true}', '{"store": "slow"}'),
    ('{"store": []}', '{"store": "slow"}'),
    ('{"x": NaN}', '{"x": NaN, "store": "slow"}'),
    ('{"x":  -Infinity, "store": 7}', '{"x":  -Infinity, "store": "slow"}'),
    # Train's key: Glance's rule adds a store beside it.
    ('{"backend": "slow"}', '{"backend": "slow", "store": "slow"}'),
    # A store Glance cannot look up fails its own request: left alone.
    ('{"store": [1]}', None),
    ('{"store": {"a": 1}}', None),
])
def test_where_glance_would_write_a_store_the_owner_is_written_first(
        db_url, make_gateway, make_filter, caplog, text, expected):
    location_id, stored, lines = one_row_through_the_filter(
        db_url, make_gateway, make_filter, caplog, LEGACY, text)
    assert stored == (expected or text)
    if expected is None:
        [line] = lines
        assert f'location {location_id} ' in line
        assert '(invalid-store-value)' in line and 'Glance' in line
    else:
        assert lines == []


@pytest.mark.parametrize('url, text, expected, reason', [
    # Glance's reserved stores never label a live image's location.
    ('file:///var/lib/glance/os_glance_staging_store/{}', '{}', '{}',
     'reserved-store'),
    ('file:///var/lib/glance/os_glance_tasks_store/{}',
     '{"store": "os_glance_tasks_store"}',
     '{"store": "os_glance_tasks_store"}', 'reserved-store'),
    # Named so, in a store of its own: that store's.
    (LEGACY, '{"store": "os_glance_staging_store"}', '{"store": "slow"}',
     None),
])
def test_reserved_stores_are_never_a_locations_store(
        db_url, make_gateway, make_filter, caplog, url, text, expected,
        reason):
    _, stored, lines = one_row_through_the_filter(
        db_url, make_gateway, make_filter, caplog, url, text)
    assert stored == expected
    assert [reason in line for line in lines] == ([True] if reason else [])


def test_an_encrypted_url_gets_its_store_and_keeps_its_ciphertext(
        db_url, make_gateway, make_filter):
    from multistore_prefix import crypt
    key = 'k3y-0f-32-bytes-for-aes-256-cbc!'
    image_id = add_image(make_gateway, db_url, (LEGACY, {}))
    [location_id] = location_rows(db_url)
    stored = crypt.UrlCipher(key).encrypt(LEGACY.format(image_id))
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text('UPDATE image_locations SET value = :v'),
                     {'v': stored})
    engine.dispose()
    resolve, _ = make_filter(db_url, default=[
        f'metadata_encryption_key = {key}'])
    call(resolve, f'/v2/images/{image_id}')
    [row] = location_rows(db_url).values()
    assert (row['value'], row['meta_data']) == (stored, '{"store": "slow"}')


@pytest.mark.engines('postgresql', 'mysql')
def test_rows_another_writer_holds_are_never_waited_for(
        db_url, make_gateway, make_filter, caplog):
    image_id = add_image(make_gateway, db_url, (LEGACY, {}))
    resolve, app = make_filter(db_url)
    # The process's worker and connections, made before the clock runs.
    call(resolve, f'/v2/images/{uuid.uuid4()}')
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.connect() as holder, caplog.at_level(logging.INFO,
                                                     logger=LOGGER):
        # A backfill batch (or Glance's save) holds the image's rows.
        holder.execute(sa.select(_L.c.id).where(_L.c.image_id == image_id)
                       .with_for_update()).all()
        started = time.monotonic()
        status, _, _ = call(resolve, f'/v2/images/{image_id}')
        waited = time.monotonic() - started
        holder.rollback()
    engine.dispose()
    # Well under the database's lock wait (10 s) and request_timeout (5 s).
    assert status == '200 OK' and len(app.calls) == 2 and waited < 2.5
    [line] = [r.getMessage() for r in filter_records(caplog)
              if 'locked by another writer' in r.getMessage()]
    assert image_id in line
    [row] = location_rows(db_url).values()
    assert row['meta_data'] == '{}'
    call(resolve, f'/v2/images/{image_id}')
    [row] = location_rows(db_url).values()
    assert row['meta_data'] == '{"store": "slow"}'


def test_a_locked_write_that_changes_too_few_rows_passes_through(
        db_url, make_gateway, make_filter, caplog, monkeypatch):
    image_id = add_image(make_gateway, db_url, (LEGACY, {}))
    resolve, app = make_filter(db_url)
    real = batches._execute

    def short(conn, statement, params):
        real(conn, statement, params)
        return 0  # as a bug would count it
    monkeypatch.setattr(batches, '_execute', short)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        status, body, environ = call(resolve, f'/v2/images/{image_id}')
    assert (status, body, app.calls) == ('200 OK', b'glance', [environ])
    [line] = [r.getMessage() for r in filter_records(caplog)]
    assert (f'image {image_id} passed through unresolved' in line
            and '1 of 1 locked rows did not change' in line), line
    # The transaction rolled back: nothing of the write stands.
    [row] = location_rows(db_url).values()
    assert row['meta_data'] == '{}'
