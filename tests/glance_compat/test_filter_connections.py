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

"""The filter's database connections inside glance-api, under load.

An operator sizes ``max_connections`` for Glance's API workers; the filter
may add at most one connection per glance-api process.  The same load (a
mix of shows, downloads, lists and PATCHes from several clients, on legacy
images the filter has to resolve) runs against Glance alone, then against
Glance with the filter, on one PostgreSQL database, under uWSGI with
several processes and threads, while the server's connections to that
database are counted.  The filter's own connections carry the
``application_name`` multistore-prefix, so they are counted apart.
"""

import concurrent.futures
import random
import threading

import pytest
import requests
import sqlalchemy as sa

from tests.glance_compat import deployment as deployment_mod
from tests.glance_compat import glance_api as glance_api_mod

glance_api_mod.require('uwsgi')

pytestmark = pytest.mark.engines('postgresql')

PROCESSES = 2
THREADS = 4
CLIENTS = 8
REQUESTS = 2400
IMAGES = 24
#: The name the tool's sessions give themselves (see db/bounds.py).
APPLICATION_NAME = 'multistore-prefix'


class ConnectionCounter:
    """Counts the server's connections to one database, in a thread.

    :ivar peak: the most seen at once.
    :ivar peak_filter: the most of the filter's own seen at once.
    """

    def __init__(self, url: str):
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.peak = self.peak_filter = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> tuple[int, int]:
        """(connections, of which the filter's), other than this one."""
        with self.engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT count(*), count(*) FILTER (WHERE application_name "
                "= %(name)s) FROM pg_stat_activity WHERE datname = "
                "current_database() AND pid <> pg_backend_pid()",
                {'name': APPLICATION_NAME}).one()
        return row[0], row[1]

    def _run(self):
        while not self._stop.wait(0.2):
            total, own = self.now()
            self.peak = max(self.peak, total)
            self.peak_filter = max(self.peak_filter, own)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(10)


def load(api, image_ids) -> dict:
    """:data:`REQUESTS` mixed requests from :data:`CLIENTS` clients.

    :returns: {status code: how many}.
    """
    plan = random.Random(19)
    calls = []
    for n in range(REQUESTS):
        image_id = plan.choice(image_ids)
        kind = plan.random()
        if kind < 0.5:
            calls.append(('GET', f'/v2/images/{image_id}', None))
        elif kind < 0.6:
            calls.append(('GET', f'/v2/images/{image_id}/file', None))
        elif kind < 0.8:
            calls.append(('GET', '/v2/images?limit=20', None))
        else:
            # (Not a new property: two saves of one image that add the
            # same one race in Glance itself, filter or not.)
            calls.append(('PATCH', f'/v2/images/{image_id}', [
                {'op': 'replace', 'path': '/name', 'value': f'load-{n}'}]))
    local = threading.local()

    def call(method, path, body):
        session = getattr(local, 'session', None)
        if session is None:
            session = local.session = requests.Session()
        headers = ({'Content-Type':
                    'application/openstack-images-v2.1-json-patch'}
                   if method == 'PATCH' else {})
        return session.request(method, f'{api.url}{path}', json=body,
                               headers=headers,
                               timeout=glance_api_mod.TIMEOUT).status_code
    statuses = {}
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        for status in pool.map(lambda c: call(*c), calls):
            statuses[status] = statuses.get(status, 0) + 1
    return statuses


def run_and_count(api, deployment, image_ids) -> tuple:
    """Start ``api``, load it, stop it.

    :returns: (peak, the filter's peak, (connections, the filter's) open
        after the load, {status: count}).
    """
    deployment.make_legacy(image_ids)
    api.start()
    try:
        with ConnectionCounter(deployment.url) as counter:
            statuses = load(api, image_ids)
            after = counter.now()
        return counter.peak, counter.peak_filter, after, statuses
    finally:
        api.stop()


def test_the_filter_adds_at_most_one_connection_per_process(
        database_server, tmp_path):
    url = database_server.create(prefix='msp_gconn')
    deployment = deployment_mod.Deployment(
        database_server.name, url, tmp_path,
        options={'request_timeout': 10}, processes=PROCESSES,
        threads=THREADS)
    try:
        deployment.filtered.db_sync()
        deployment.plain.start()
        try:
            in_slow = deployment.legacy_images(IMAGES // 2)
            in_fast = deployment.legacy_images(IMAGES // 2, store='fast')
        finally:
            deployment.plain.stop()
        image_ids = in_slow + in_fast
        alone = run_and_count(deployment.plain, deployment, image_ids)
        filtered = run_and_count(deployment.filtered, deployment, image_ids)
        # The filter did its job: every image names the store it is in.
        stores = {image_id: deployment.stores_in_db(image_id)
                  for image_id in image_ids}
    finally:
        deployment.engine.dispose()
    print(f'{REQUESTS} requests from {CLIENTS} clients, {PROCESSES} '
          f'processes x {THREADS} threads: Glance alone peaked at '
          f'{alone[0]} connections ({alone[2][0]} open after); with the '
          f'filter {filtered[0]} ({filtered[1]} of them the filter\'s; '
          f'{filtered[2][0]} open after, {filtered[2][1]} the filter\'s); '
          f'answers {alone[3]} and {filtered[3]}')
    assert set(filtered[3]) == {200}, filtered[3]
    assert alone[1] == 0
    # The filter worked: it had connections of its own ...
    assert filtered[1] >= 1
    # ... at most one per process, at the peak and after the load ...
    assert filtered[1] <= PROCESSES
    assert filtered[2][1] <= PROCESSES
    # ... and Glance's own stayed what they are without it.
    glance_own = max(alone[0], PROCESSES * THREADS)
    assert filtered[0] <= glance_own + PROCESSES
    assert filtered[2][0] <= glance_own + PROCESSES
    assert stores == {**dict.fromkeys(in_slow, ['slow']),
                      **dict.fromkeys(in_fast, ['fast'])}
