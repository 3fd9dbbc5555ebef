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

"""Locations Glance adds later, in two s3 stores of one S3 server.

An S3-compatible server on loopback (moto's, from PyPI) holds the buckets
``glance`` and ``glance-new``; glance-api under uWSGI has one s3 store on
each (``old`` and ``new``).  glance_store's prefix of ``old`` is
``s3://127.0.0.1:PORT/glance``, with no trailing slash, so Glance's own
first-match rule gives every location of ``glance-new`` to ``old``, even
over the store a client sent.  Locations are added as clients add them:
PATCH of ``/locations`` (with no store, and with the right one) and the
Location API (``POST /v2/images/{id}/locations``, a background task).
Each is done on both glance-api of the deployment: Glance alone shows its
wrong label (the fixture reproduces the fault), the filter's is right.

Needs glance, uWSGI, boto3 and moto's server in the running Python
(``tools/glance-compat``).
"""

import contextlib
import os
import subprocess
import time
import uuid

import pytest
import requests
import sqlalchemy as sa

from multistore_prefix import middleware
from tests.glance_compat import deployment as deployment_mod
from tests.glance_compat import glance_api as glance_api_mod

glance_api_mod.require('uwsgi')
if not middleware.glance_strips_s3_credentials():
    # Before 2026.2 the s3 driver signs with the keys in the URL: the
    # keyless locations here are not that Glance's (tools/glance-compat
    # runs this module on the newest release).
    pytest.skip('this Glance keeps the keys in S3 URLs',
                allow_module_level=True)
glance_api_mod.require('moto_server')
import boto3  # noqa: E402  (beside glance-api and moto: after the check)
from glance.api.v2 import images as images_api  # noqa: E402

ACCESS_KEY = 'msp-access'
SECRET_KEY = 'msp-Secret/Key'
BUCKETS = {'old': 'glance', 'new': 'glance-new'}
S3_STORE = """\
[{store}]
s3_store_host = http://127.0.0.1:{port}
s3_store_access_key = {key}
s3_store_secret_key = {secret}
s3_store_bucket = {bucket}
s3_store_bucket_url_format = path
s3_store_create_bucket_on_put = true
"""
#: Identity headers the trusted context filter takes (no Keystone here).
SERVICE = {'X-Identity-Status': 'Confirmed', 'X-Roles': 'admin,service',
           'X-Service-Roles': 'service', 'X-User-Id': 'u1',
           'X-Project-Id': 'p1'}
#: Seconds the Location API's task has to add its location.
TASK_TIMEOUT = 60


@pytest.fixture(scope='module')
def s3_port():
    """moto's S3 server on a free loopback port, with both buckets."""
    port = glance_api_mod.free_port()
    server = subprocess.Popen(
        [glance_api_mod.glance_bin('moto_server'), '-H', '127.0.0.1',
         '-p', str(port)], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(requests.RequestException):
                requests.get(f'http://127.0.0.1:{port}/', timeout=2)
                break
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError('moto_server did not start')
            time.sleep(0.2)
        client = s3_client(port)
        for bucket in BUCKETS.values():
            client.create_bucket(Bucket=bucket)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def s3_client(port):
    return boto3.client(
        's3', endpoint_url=f'http://127.0.0.1:{port}',
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name='us-east-1')


@pytest.fixture(scope='module')
def deployment(database_server, tmp_path_factory, s3_port):
    """Both glance-api on a fresh Glance database, two s3 stores."""
    stores = '\n'.join(
        S3_STORE.format(store=store, port=s3_port, key=ACCESS_KEY,
                        secret=SECRET_KEY, bucket=bucket)
        for store, bucket in BUCKETS.items())
    stores_conf = ('[DEFAULT]\nenabled_backends = old:s3, new:s3\n'
                   '[glance_store]\ndefault_backend = old\n' + stores)
    url = database_server.create(prefix='msp_gs3')
    deployed = deployment_mod.Deployment(
        database_server.name, url,
        tmp_path_factory.mktemp(f'glance-s3-{database_server.name}'),
        stores_conf=stores_conf.replace('{', '{{').replace('}', '}}'),
        flavor='keystone')
    deployed.port = s3_port
    for api in deployed.apis().values():
        api.session.headers.update(SERVICE)
    with deployed.running():
        yield deployed


def new_object(deployment) -> str:
    """An object in the ``glance-new`` bucket; its location URL."""
    key = str(uuid.uuid4())
    s3_client(deployment.port).put_object(
        Bucket=BUCKETS['new'], Key=key, Body=os.urandom(1024))
    return f's3://127.0.0.1:{deployment.port}/{BUCKETS["new"]}/{key}'


def queued_image(api) -> str:
    created = api.request('POST', '/v2/images', headers=SERVICE, json={
        'name': 'added-later', 'disk_format': 'raw',
        'container_format': 'bare'})
    created.raise_for_status()
    return created.json()['id']


def add_by_patch(api, image_id, url, metadata) -> None:
    answer = api.request(
        'PATCH', f'/v2/images/{image_id}', headers={
            **SERVICE, 'Content-Type':
            'application/openstack-images-v2.1-json-patch'},
        json=[{'op': 'add', 'path': '/locations/-',
               'value': {'url': url, 'metadata': metadata}}])
    assert answer.status_code == 200, answer.text


def add_by_location_api(api, image_id, url) -> None:
    answer = api.request('POST', f'/v2/images/{image_id}/locations',
                         headers=SERVICE, json={'url': url})
    assert answer.status_code == 202, answer.text


def stored(deployment, image_id) -> list:
    """The ``store`` of each live location of the image, in the database."""
    return deployment.stores_in_db(image_id)


def wait_for_location(deployment, image_id) -> None:
    deadline = time.monotonic() + TASK_TIMEOUT
    while not stored(deployment, image_id):
        assert time.monotonic() < deadline, 'the task added no location'
        time.sleep(0.2)


def show_until(api, deployment, image_id, stores, seconds) -> list:
    """GET the image until its stores are ``stores``, for ``seconds``.

    The task goes on saving the image after it added the location, and
    a request that finds the rows held passes through: a later one
    corrects them.  Returns the stores found last.
    """
    deadline = time.monotonic() + seconds
    while True:
        shown = api.request('GET', f'/v2/images/{image_id}')
        assert shown.status_code == 200
        found = stored(deployment, image_id)
        if found == stores or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.mark.parametrize('metadata', [{}, {'store': 'new'}],
                         ids=['no-store', 'right-store'])
def test_a_location_added_by_patch_gets_its_owner(deployment, metadata):
    stores = {}
    for mode, api in deployment.apis().items():
        image_id = queued_image(api)
        add_by_patch(api, image_id, new_object(deployment), metadata)
        stores[mode] = stored(deployment, image_id)
        # What a client reads next.
        shown = api.request('GET', f'/v2/images/{image_id}', headers=SERVICE)
        stores[mode + '-shown'] = shown.json()['stores']
    # Glance alone: the first prefix the URL starts with, over the client.
    assert stores['glance'] == ['old']
    assert stores['filter'] == ['new'] and stores['filter-shown'] == 'new'


@pytest.mark.skipif(
    not hasattr(images_api.ImagesController, 'add_location'),
    reason='this Glance has no Location API')
def test_a_location_added_by_the_location_api_gets_its_owner(deployment):
    stores = {}
    for mode, api in deployment.apis().items():
        image_id = queued_image(api)
        add_by_location_api(api, image_id, new_object(deployment))
        wait_for_location(deployment, image_id)
        stores[mode] = stored(deployment, image_id)
        # The task wrote it after the answer; a request naming the image
        # corrects it (Glance alone never does: as long, to show it).
        stores[mode + '-next'] = show_until(api, deployment, image_id,
                                            ['new'], 20)
    assert stores['glance'] == stores['glance-next'] == ['old']
    assert stores['filter-next'] == ['new']


def test_the_secret_key_never_reaches_the_filters_log(deployment):
    lines = deployment.filtered.log_lines('multistore_prefix')
    # The filter did log (it is on, with both stores).
    assert any('filter: on in process' in line for line in lines)
    assert not [line for line in lines if SECRET_KEY in line]


def credential_images(deployment, api, count) -> list[str]:
    """Images whose one location carries the keys, its store set.

    As rows written before Glance 33 hold them (timestamps in the past).
    """
    ids = []
    for _ in range(count):
        image_id = queued_image(api)
        key = str(uuid.uuid4())
        s3_client(deployment.port).put_object(Bucket=BUCKETS['old'],
                                              Key=key, Body=b'x' * 512)
        add_by_patch(api, image_id, f's3://127.0.0.1:{deployment.port}/'
                     f'{BUCKETS["old"]}/{key}', {})
        ids.append(image_id)
    locations = deployment_mod.LOCATIONS
    with deployment.engine.begin() as conn:
        for location_id, url in conn.execute(
                sa.select(locations.c.id, locations.c.value)
                .where(locations.c.image_id.in_(ids))).all():
            conn.execute(sa.update(locations).where(
                locations.c.id == location_id).values(
                value=url.replace('s3://',
                                  f's3://{ACCESS_KEY}:{SECRET_KEY}@'),
                meta_data='{"store": "old"}',
                updated_at=deployment_mod.PAST))
        conn.execute(sa.update(deployment_mod.IMAGES).where(
            deployment_mod.IMAGES.c.id.in_(ids)).values(
            updated_at=deployment_mod.PAST))
    return ids


def image_saved(deployment, image_id) -> bool:
    """Whether Glance saved the image row since it was made legacy."""
    images = sa.table('images', sa.column('id'),
                      sa.column('updated_at', sa.DateTime))
    with deployment.engine.connect() as conn:
        updated = conn.execute(sa.select(images.c.updated_at).where(
            images.c.id == image_id)).scalar_one()
    return updated != deployment_mod.PAST


def urls_in_db(deployment, image_id) -> list[str]:
    locations = deployment_mod.LOCATIONS
    with deployment.engine.connect() as conn:
        return conn.execute(sa.select(locations.c.value).where(
            locations.c.image_id == image_id)).scalars().all()


def test_credentials_go_without_a_whole_image_save(deployment):
    saved, urls = {}, {}
    for mode, api in deployment.apis().items():
        ids = credential_images(deployment, api, 5)
        for image_id in ids:
            assert api.request('GET', f'/v2/images/{image_id}',
                               headers=SERVICE).status_code == 200
        saved[mode] = sum(image_saved(deployment, i) for i in ids)
        urls[mode] = [u for i in ids for u in urls_in_db(deployment, i)]
    # Glance alone takes the keys out by saving every such image whole.
    assert saved['glance'] == 5
    # The filter takes them out first, by compare-and-swap of the row.
    assert saved['filter'] == 0
    for mode in urls:
        assert len(urls[mode]) == 5
        assert not [u for u in urls[mode] if '@' in u], urls[mode]


def test_a_patch_racing_a_get_of_such_an_image_is_never_lost(deployment):
    ids = credential_images(deployment, deployment.filtered, 10)
    landed, failed = deployment_mod.race_gets_and_patch(
        deployment.filtered, ids, 2)
    assert failed == 0 and landed
    lost = [i for i in landed if not deployment.has_property(i, 'raced')]
    assert lost == []


def test_the_rewrite_is_glances_own():
    from glance.common import store_utils

    from multistore_prefix import urls
    for url in ['s3://k:s@h:9000/b/o', 's3+https://k:s/x@h/b/o?q=1#f',
                's3://h/b/o', 's3://h/b/o?x=a@b', 's3+http://a@b@h/b/o',
                'swift://k:s@h/c/o', 'S3://k:s@h/b/o', 's3://@h/b/o']:
        location = {'url': url, 'metadata': {}}
        # Glance's rule asks it of the URLs of these schemes only.
        changed = (url.startswith(('s3://', 's3+http://', 's3+https://'))
                   and store_utils._update_s3_location_credentials(location))
        assert urls.s3_without_credentials(url) == (
            location['url'] if changed else None), url
