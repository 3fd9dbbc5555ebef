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

"""Cinder lookups of legacy locations: the cinder driver's lookup,
multistore_prefix/drivers/cinder.py, and the client it uses,
multistore_prefix/drivers/cinder_client.py.

requests-mock stands in for Keystone and Cinder, with the request and
response shapes of the real services: the v3 token request and its service
catalog, ``GET /v3/{project_id}/volumes/{volume_id}`` and
``GET /v3/{project_id}/types/default``.
"""

import gc
import logging
import textwrap
import threading
import time

import pytest
import requests

from multistore_prefix.drivers import base
from multistore_prefix.drivers import cinder as cinder_lookup
from multistore_prefix.drivers import cinder_client as client
from multistore_prefix import location_map as lmap
from multistore_prefix import urls

VOLUME = '5b1c4f9e-0d3a-4b6e-9f2c-7a8d1e3b5c60'
OTHER_VOLUME = '0f6e2d1c-9b8a-4c7d-8e6f-5a4b3c2d1e0f'
PROJECT_ID = '9d2d5b3c0a6e4e0e8b1f7c3a2d4e6f80'
USER_ID = '4c1e8e4a7b2d4f6a9c3e5b7d1f0a2c46'
AUTH = 'http://keystone.example.com:5000/v3'
TOKEN_URL = f'{AUTH}/auth/tokens'
CINDER = f'http://cinder.example.com:8776/v3/{PROJECT_ID}'
PASSWORD = 'pa55-w0rd-n0t-t0-be-seen'
AC_SECRET = 'app-cred-s3cret-n0t-t0-be-seen'
TOKEN = 'gAAAAABtoken-value-n0t-t0-be-seen'

CREDENTIALS = f"""
    cinder_store_auth_address = {AUTH}
    cinder_store_user_name = glance
    cinder_store_password = {PASSWORD}
    cinder_store_project_name = service
"""

STORES = f"""
    [DEFAULT]
    enabled_backends = fast:cinder, slow:cinder

    [backend_defaults]
    {CREDENTIALS}

    [fast]
    cinder_volume_type = fast-ssd

    [slow]
    cinder_volume_type = slow-hdd
"""


def more(section: str, options: str, text: str = STORES) -> str:
    """``text`` with a ``[section]`` of ``options`` added."""
    added = textwrap.indent(f'[{section}]\n{options}\n', '    ')
    return f'{text}\n{added}'


def endpoint(url, interface='public', region='RegionOne'):
    return {'id': f'{interface}-{region}', 'interface': interface,
            'region': region, 'region_id': region, 'url': url}


def token_body(endpoints=None, service_type='volumev3', methods=None,
               extra=None):
    """A Keystone v3 token response body, as Keystone returns it."""
    domain = {'id': 'default', 'name': 'Default'}
    token = {
        'methods': methods or ['password'],
        'user': {'domain': domain, 'id': USER_ID, 'name': 'glance',
                 'password_expires_at': None},
        'audit_ids': ['pOyUpXVZQDeMsXZ5Yz1cyQ'],
        'expires_at': '2099-01-01T00:00:00.000000Z',
        'issued_at': '2025-01-01T00:00:00.000000Z',
        'project': {'domain': domain, 'id': PROJECT_ID, 'name': 'service'},
        'is_domain': False,
        'roles': [{'id': '8f2c', 'name': 'service'},
                  {'id': '5a1b', 'name': 'reader'}],
        'catalog': [
            {'id': 'c0ffee', 'type': service_type, 'name': 'cinderv3',
             'endpoints': endpoints or [endpoint(CINDER)]},
            {'id': 'beef', 'type': 'identity', 'name': 'keystone',
             'endpoints': [endpoint(AUTH)]},
        ],
    }
    token.update(extra or {})
    return {'token': token}


def volume_body(volume_type='fast-ssd', volume_id=VOLUME):
    """Cinder's ``GET /volumes/{id}`` body (v3, base microversion)."""
    return {'volume': {
        'id': volume_id, 'name': f'image-{volume_id}', 'status': 'available',
        'size': 1, 'volume_type': volume_type, 'attachments': [],
        'availability_zone': 'nova', 'bootable': 'false', 'encrypted': False,
        'multiattach': False, 'metadata': {'readonly': 'True'},
        'created_at': '2023-05-04T10:00:00.000000',
        'updated_at': '2023-05-04T10:00:05.000000',
        'user_id': USER_ID, 'os-vol-tenant-attr:tenant_id': PROJECT_ID,
        'links': [{'rel': 'self',
                   'href': f'{CINDER}/volumes/{volume_id}'}],
    }}


NOT_FOUND = {'itemNotFound': {
    'code': 404, 'message': f'Volume {VOLUME} could not be found.'}}
FORBIDDEN = {'forbidden': {
    'code': 403,
    'message': "Policy doesn't allow volume:get to be performed."}}
UNAUTHORIZED = {'error': {
    'code': 401, 'title': 'Unauthorized',
    'message': 'The request you have made requires authentication.'}}


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """No connection left from another test; retries without waiting."""
    monkeypatch.setattr(client, '_CONNECTIONS', type(client._CONNECTIONS)())
    monkeypatch.setattr(client, 'BACKOFF', 0)


@pytest.fixture
def keystone(requests_mock):
    """Keystone: the token request answers with the service catalog."""
    return requests_mock.post(TOKEN_URL, status_code=201, json=token_body(),
                              headers={'X-Subject-Token': TOKEN})


def volume_url(volume_id=VOLUME, base_url=CINDER):
    return f'{base_url}/volumes/{volume_id}'


@pytest.fixture
def volume(requests_mock, keystone):
    """Cinder: the volume has type fast-ssd."""
    return requests_mock.get(volume_url(), json=volume_body())


@pytest.fixture
def lookups(load_conf):
    """Each store's backend lookup, from a glance-api.conf text."""
    def build(text: str = STORES) -> dict[str, cinder_lookup.CinderLookup]:
        the_map = lmap.LocationMap.from_config(load_conf(text))
        return {store: entry.store.backend_lookup()
                for store, entry in the_map.stores.items()}
    return build


def ask(lookup, url=f'cinder://{VOLUME}', timeout=5.0):
    return lookup.lookup(urls.canonicalize(url), timeout)


def gets(requests_mock, url):
    return [r for r in requests_mock.request_history
            if r.method == 'GET' and r.url == url]


# Building is offline.

def test_no_network_at_init(requests_mock, lookups):
    found = lookups()
    assert set(found) == {'fast', 'slow'}
    assert all(isinstance(x, cinder_lookup.CinderLookup)
               for x in found.values())
    assert requests_mock.call_count == 0


@pytest.mark.parametrize('url, wanted', [
    (f'cinder://{VOLUME}', True),
    (f'CINDER://{VOLUME.upper()}', True),
    (f'cinder://{VOLUME}/', True),
    # the new form names its store: prefixes resolve it, Cinder is not asked
    (f'cinder://fast/{VOLUME}', False),
    (f'cinder://other/{VOLUME}', False),
    # not a volume id: never sent to Cinder
    ('cinder://fast', False),
    ('cinder://not-a-uuid', False),
    (f'cinder://{VOLUME}?x=1', False),
    (f'cinder://{VOLUME}:8776', False),
    (f'rbd://{VOLUME}', False),
    (f'file:///var/lib/glance/{VOLUME}', False),
])
def test_wants_legacy_urls_only(lookups, url, wanted):
    assert lookups()['fast'].wants(urls.canonicalize(url)) is wanted


# What Cinder says, and the answer.

def test_volume_of_the_store_type_is_owned(requests_mock, volume, lookups):
    answer = ask(lookups()['fast'])
    assert answer.store == 'fast'
    assert answer.url == f'cinder://fast/{VOLUME}'
    assert answer.reason is None
    assert "'fast-ssd'" in answer.detail
    # The token request is Keystone's v3 password method, scoped to the
    # store's project.
    token = keystone_request(requests_mock)
    assert token.json() == {'auth': {
        'identity': {'methods': ['password'], 'password': {'user': {
            'name': 'glance', 'password': PASSWORD,
            'domain': {'name': 'Default'}}}},
        'scope': {'project': {'name': 'service',
                              'domain': {'name': 'Default'}}}}}
    [get] = gets(requests_mock, volume_url())
    assert get.headers['X-Auth-Token'] == TOKEN


def keystone_request(requests_mock):
    [token] = [r for r in requests_mock.request_history
               if r.method == 'POST']
    assert token.url == TOKEN_URL
    return token


def test_store_id_is_written_as_configured(requests_mock, keystone,
                                           lookups):
    requests_mock.get(volume_url(), json=volume_body('fast-ssd'))
    found = lookups(STORES.replace('fast', 'Fast').replace('Fast-ssd',
                                                           'fast-ssd'))
    answer = ask(found['Fast'], f'cinder://{VOLUME.upper()}')
    assert answer.url == f'cinder://Fast/{VOLUME}'


def test_volume_of_another_type_is_elsewhere(volume, lookups):
    answer = ask(lookups()['slow'])
    assert (answer.store, answer.reason) == (None, base.ELSEWHERE)
    assert answer.url is None
    assert "store 'slow'" in answer.detail and VOLUME in answer.detail
    assert "'fast-ssd'" in answer.detail and "'slow-hdd'" in answer.detail


def test_missing_volume_is_not_found(requests_mock, keystone, lookups):
    requests_mock.get(volume_url(), status_code=404, json=NOT_FOUND)
    answer = ask(lookups()['fast'])
    assert (answer.store, answer.reason) == (None, base.NOT_FOUND)
    assert "store 'fast'" in answer.detail and VOLUME in answer.detail
    assert '404' in answer.detail and CINDER in answer.detail


def test_volume_forbidden(requests_mock, keystone, lookups):
    requests_mock.get(volume_url(), status_code=403, json=FORBIDDEN)
    answer = ask(lookups()['fast'])
    assert (answer.store, answer.reason) == (None, base.FORBIDDEN)
    assert "store 'fast'" in answer.detail and '403' in answer.detail


def test_refused_credentials_are_forbidden_and_not_tried_again(
        requests_mock, lookups):
    token = requests_mock.post(TOKEN_URL, status_code=401, json=UNAUTHORIZED)
    found = lookups()
    answer = ask(found['fast'])
    assert (answer.store, answer.reason) == (None, base.FORBIDDEN)
    assert AUTH in answer.detail and '401' in answer.detail
    # Asking again would only lock the service user out.
    for lookup in found.values():
        for volume_id in (VOLUME, OTHER_VOLUME):
            again = ask(lookup, f'cinder://{volume_id}')
            assert again.reason == base.FORBIDDEN
    assert token.call_count == 1
    assert requests_mock.call_count == 1


def test_cinder_rejecting_the_token_is_forbidden(requests_mock, keystone,
                                                 lookups):
    get = requests_mock.get(volume_url(), status_code=401,
                            json=UNAUTHORIZED)
    found = lookups()
    answer = ask(found['fast'])
    assert answer.reason == base.FORBIDDEN
    # keystoneauth fetched a new token and tried once more; then we stop.
    assert (keystone.call_count, get.call_count) == (2, 2)
    assert ask(found['slow'], f'cinder://{OTHER_VOLUME}').reason == (
        base.FORBIDDEN)
    assert requests_mock.call_count == 4


@pytest.mark.parametrize('status', [500, 502, 503, 504, 429])
def test_server_errors_are_retried(requests_mock, keystone, lookups, status):
    get = requests_mock.get(volume_url(), [
        {'status_code': status, 'json': {'error': 'busy'}},
        {'status_code': status, 'json': {'error': 'busy'}},
        {'status_code': 200, 'json': volume_body()},
    ])
    answer = ask(lookups()['fast'])
    assert answer.store == 'fast'
    assert get.call_count == 3


def test_server_errors_after_the_retries_are_unavailable(
        requests_mock, keystone, lookups):
    get = requests_mock.get(volume_url(), status_code=503,
                            json={'error': 'down'})
    found = lookups(more('fast', 'cinder_http_retries = 2'))
    answer = ask(found['fast'])
    assert (answer.store, answer.reason) == (None, base.UNAVAILABLE)
    assert '503' in answer.detail and "store 'fast'" in answer.detail
    assert get.call_count == 3  # the first try and two retries
    # An unavailable Cinder is no answer: the next question asks again.
    ask(found['fast'])
    assert get.call_count == 6


@pytest.mark.parametrize('error', [
    requests.exceptions.ConnectTimeout,
    requests.exceptions.ReadTimeout,
    requests.exceptions.ConnectionError,
])
def test_cinder_unreachable_is_unavailable(requests_mock, keystone, lookups,
                                           error):
    get = requests_mock.get(volume_url(), exc=error)
    answer = ask(lookups()['fast'])
    assert (answer.store, answer.reason) == (None, base.UNAVAILABLE)
    assert "store 'fast'" in answer.detail and VOLUME in answer.detail
    assert get.call_count == 4  # cinder_http_retries defaults to 3


def test_connection_error_then_success(requests_mock, keystone, lookups):
    get = requests_mock.get(volume_url(), [
        {'exc': requests.exceptions.ConnectTimeout},
        {'json': volume_body()},
    ])
    assert ask(lookups()['fast']).store == 'fast'
    assert get.call_count == 2


@pytest.mark.parametrize('token', [
    {'exc': requests.exceptions.ConnectionError},
    {'status_code': 503, 'json': {'error': 'down'}},
])
def test_keystone_unreachable_is_unavailable(requests_mock, lookups, token):
    post = requests_mock.post(TOKEN_URL, **token)
    found = lookups(more('fast', 'cinder_http_retries = 1'))
    answer = ask(found['fast'])
    assert (answer.store, answer.reason) == (None, base.UNAVAILABLE)
    assert post.call_count == 2
    # Not a refusal: the next question tries again.
    ask(found['fast'])
    assert post.call_count == 4


def test_no_wait_goes_past_the_timeout(requests_mock, keystone, lookups,
                                       monkeypatch):
    monkeypatch.setattr(client, 'BACKOFF', 30)
    get = requests_mock.get(volume_url(), status_code=503, json={})
    start = time.monotonic()
    answer = ask(lookups()['fast'], timeout=1.0)
    assert time.monotonic() - start < 1.0
    assert answer.reason == base.UNAVAILABLE
    assert get.call_count == 1


def test_no_time_no_request(requests_mock, keystone, lookups):
    answer = ask(lookups()['fast'], timeout=0)
    assert answer.reason == base.UNAVAILABLE
    assert requests_mock.call_count == 0


@pytest.mark.parametrize('body', [
    {'volumes': []},
    {'volume': None},
    'not json',
])
def test_odd_body_is_unavailable(requests_mock, keystone, lookups, body):
    if isinstance(body, str):
        requests_mock.get(volume_url(), text=body)
    else:
        requests_mock.get(volume_url(), json=body)
    answer = ask(lookups()['fast'])
    assert (answer.store, answer.reason) == (None, base.UNAVAILABLE)


def test_unexpected_error_is_unavailable_never_raised(volume, lookups,
                                                      monkeypatch, caplog):
    def boom(*args, **kwargs):
        raise RuntimeError('boom')
    monkeypatch.setattr(client.Connection, '_fetch', boom)
    answer = ask(lookups()['fast'])
    assert (answer.store, answer.reason) == (None, base.UNAVAILABLE)
    assert 'RuntimeError' in answer.detail
    assert 'boom' in caplog.text


# Where Cinder is.

def test_endpoint_template(requests_mock, lookups):
    # A catalog with no volume service: the template is all there is.
    requests_mock.post(TOKEN_URL, status_code=201,
                       json=token_body(service_type='image'),
                       headers={'X-Subject-Token': TOKEN})
    block = 'https://block.example.com/volume/v3'
    get = requests_mock.get(f'{block}/{PROJECT_ID}/volumes/{VOLUME}',
                            json=volume_body())
    found = lookups(more('fast', 'cinder_endpoint_template = '
                         f'{block}/%(tenant)s/'))
    assert ask(found['fast']).store == 'fast'
    assert get.call_count == 1


def test_endpoint_template_with_project_id(requests_mock, keystone, lookups):
    get = requests_mock.get(volume_url(base_url=CINDER.replace(
        'cinder.', 'cinder-int.')), json=volume_body())
    found = lookups(more('fast', 'cinder_endpoint_template = http://'
                         'cinder-int.example.com:8776/v3/%(project_id)s'))
    assert ask(found['fast']).store == 'fast'
    assert get.call_count == 1


def catalog_with_regions_and_interfaces():
    urls_ = {}
    endpoints = []
    for region in ('RegionOne', 'RegionTwo'):
        for interface in ('public', 'internal', 'admin'):
            url = (f'http://{interface}.{region.lower()}.example.com:8776'
                   f'/v3/{PROJECT_ID}')
            urls_[region, interface] = url
            endpoints.append(endpoint(url, interface, region))
    return urls_, endpoints


@pytest.mark.parametrize('options, region, interface', [
    ('', 'RegionOne', 'public'),
    ('cinder_os_region_name = RegionTwo', 'RegionTwo', 'public'),
    ('cinder_catalog_info = volumev3::internalURL', 'RegionOne', 'internal'),
    ('cinder_catalog_info = volumev3:cinderv3:adminURL\n'
     'cinder_os_region_name = RegionTwo', 'RegionTwo', 'admin'),
    ('cinder_catalog_info = volumev3::internal\n'
     'os_region_name = RegionTwo', 'RegionTwo', 'internal'),
])
def test_catalog_info_and_region(requests_mock, lookups, options, region,
                                 interface):
    found_urls, endpoints = catalog_with_regions_and_interfaces()
    requests_mock.post(TOKEN_URL, status_code=201,
                       json=token_body(endpoints),
                       headers={'X-Subject-Token': TOKEN})
    for url in found_urls.values():
        requests_mock.get(volume_url(base_url=url), json=volume_body())
    found = lookups(more('fast', options))
    assert ask(found['fast']).store == 'fast'
    [get] = [r for r in requests_mock.request_history if r.method == 'GET']
    assert get.url == volume_url(base_url=found_urls[region, interface])


@pytest.mark.parametrize('options, named', [
    ('cinder_os_region_name = RegionNine', "region 'RegionNine'"),
    ('cinder_catalog_info = object-store::publicURL', 'object-store'),
    ('cinder_catalog_info = volumev3:cinder-other:publicURL',
     "'cinder-other'"),
])
def test_no_endpoint_in_the_catalog(requests_mock, keystone, lookups,
                                    options, named):
    found = lookups(more('fast', options))
    answer = ask(found['fast'])
    assert (answer.store, answer.reason) == (None, base.UNAVAILABLE)
    assert named in answer.detail
    assert 'cinder_catalog_info' in answer.detail
    assert requests_mock.call_count == 1  # the token, nothing else


def test_application_credentials(requests_mock, lookups):
    requests_mock.post(
        TOKEN_URL, status_code=201, headers={'X-Subject-Token': TOKEN},
        json=token_body(methods=['application_credential'], extra={
            'application_credential': {'id': 'ac-1', 'name': 'glance-ac',
                                       'restricted': True}}))
    requests_mock.get(volume_url(), json=volume_body())
    found = lookups(f"""
        [DEFAULT]
        enabled_backends = fast:cinder

        [fast]
        cinder_volume_type = fast-ssd
        cinder_store_auth_address = {AUTH}
        cinder_store_application_credential_id = ac-1
        cinder_store_application_credential_secret = {AC_SECRET}
    """)
    assert ask(found['fast']).store == 'fast'
    token = keystone_request(requests_mock)
    assert token.json() == {'auth': {'identity': {
        'methods': ['application_credential'],
        'application_credential': {'id': 'ac-1', 'secret': AC_SECRET}}}}


def test_half_an_application_credential_falls_back_to_the_password(
        requests_mock, volume, lookups):
    found = lookups(more('fast',
                         'cinder_store_application_credential_id = ac-1'))
    assert ask(found['fast']).store == 'fast'
    methods = keystone_request(requests_mock).json()['auth']['identity']
    assert methods['methods'] == ['password']


@pytest.mark.parametrize('options, verify', [
    ('', True),
    ('cinder_api_insecure = true', False),
    ('cinder_ca_certificates_file = /etc/ssl/cinder-ca.pem',
     '/etc/ssl/cinder-ca.pem'),
    # as glance_store: insecure wins
    ('cinder_ca_certificates_file = /etc/ssl/cinder-ca.pem\n'
     'cinder_api_insecure = true', False),
])
def test_tls_verification(requests_mock, volume, lookups, options, verify,
                          monkeypatch):
    # requests would put these in place of verify=True
    monkeypatch.delenv('REQUESTS_CA_BUNDLE', raising=False)
    monkeypatch.delenv('CURL_CA_BUNDLE', raising=False)
    found = lookups(more('fast', options))
    assert ask(found['fast']).store == 'fast'
    assert {r.verify for r in requests_mock.request_history} == {verify}


# Cinder's default volume type.

DEFAULT_TYPE = {'volume_type': {
    'id': '7f3a1c2e-5d4b-4a6f-9e8d-1c2b3a4d5e6f', 'name': '__DEFAULT__',
    'description': 'Default Volume Type', 'is_public': True,
    'extra_specs': {}, 'qos_specs_id': None,
    'os-volume-type-access:is_public': True}}

DEFAULT_STORE = f"""
    [DEFAULT]
    enabled_backends = plain:cinder, fast:cinder

    [backend_defaults]
    {CREDENTIALS}

    [fast]
    cinder_volume_type = fast-ssd
"""


def test_default_type_when_the_store_sets_none(requests_mock, keystone,
                                               lookups):
    default = requests_mock.get(f'{CINDER}/types/default',
                                json=DEFAULT_TYPE)
    requests_mock.get(volume_url(), json=volume_body('__DEFAULT__'))
    requests_mock.get(volume_url(OTHER_VOLUME),
                      json=volume_body('fast-ssd', OTHER_VOLUME))
    found = lookups(DEFAULT_STORE)
    answer = ask(found['plain'])
    assert answer.store == 'plain'
    assert answer.url == f'cinder://plain/{VOLUME}'
    assert 'default' in answer.detail
    other = ask(found['plain'], f'cinder://{OTHER_VOLUME}')
    assert (other.store, other.reason) == (None, base.ELSEWHERE)
    assert "'__DEFAULT__'" in other.detail
    assert ask(found['fast'], f'cinder://{OTHER_VOLUME}').store == 'fast'
    # the default type is asked for once, and only by the store that uses it
    assert default.call_count == 1


def test_no_default_type_claims_nothing(requests_mock, keystone, lookups):
    requests_mock.get(f'{CINDER}/types/default', status_code=404, json={
        'itemNotFound': {'code': 404,
                         'message': 'Default volume type can not be found.'}})
    requests_mock.get(volume_url(), json=volume_body('__DEFAULT__'))
    answer = ask(lookups(DEFAULT_STORE)['plain'])
    assert (answer.store, answer.reason) == (None, base.ELSEWHERE)
    assert 'no default volume type' in answer.detail


def test_default_type_forbidden(requests_mock, keystone, lookups):
    requests_mock.get(f'{CINDER}/types/default', status_code=403,
                      json=FORBIDDEN)
    requests_mock.get(volume_url(), json=volume_body('__DEFAULT__'))
    answer = ask(lookups(DEFAULT_STORE)['plain'])
    assert (answer.store, answer.reason) == (None, base.FORBIDDEN)
    assert 'cinder_volume_type' in answer.detail


# Caching.

def test_answers_are_cached(requests_mock, volume, lookups):
    missing = requests_mock.get(volume_url(OTHER_VOLUME), status_code=404,
                                json=NOT_FOUND)
    found = lookups()
    first = ask(found['fast'])
    ask(found['fast'], f'cinder://{OTHER_VOLUME}')
    calls = requests_mock.call_count
    assert ask(found['fast']) == first
    assert ask(found['fast'], f'cinder://{OTHER_VOLUME}').reason == (
        base.NOT_FOUND)
    assert requests_mock.call_count == calls
    assert (volume.call_count, missing.call_count) == (1, 1)


def test_cache_is_bounded(requests_mock, volume, lookups, monkeypatch):
    monkeypatch.setattr(client, 'CACHE_SIZE', 2)
    requests_mock.get(volume_url(OTHER_VOLUME),
                      json=volume_body('fast-ssd', OTHER_VOLUME))
    found = lookups()
    ask(found['fast'])
    ask(found['fast'], f'cinder://{OTHER_VOLUME}')
    ask(found['fast'])  # still cached
    assert volume.call_count == 1
    third = '11111111-2222-4333-8444-555555555555'
    requests_mock.get(volume_url(third), json=volume_body('x', third))
    ask(found['fast'], f'cinder://{third}')  # full: forgets, then keeps it
    ask(found['fast'])
    assert volume.call_count == 2


def test_stores_with_the_same_credentials_share_one_get(requests_mock,
                                                        volume, lookups):
    found = lookups()
    assert ask(found['fast']).store == 'fast'
    assert ask(found['slow']).reason == base.ELSEWHERE
    assert volume.call_count == 1
    assert len([r for r in requests_mock.request_history
                if r.method == 'POST']) == 1


def test_stores_with_other_credentials_ask_for_themselves(
        requests_mock, volume, lookups):
    found = lookups(more('slow', 'cinder_store_user_name = glance2'))
    ask(found['fast'])
    ask(found['slow'])
    assert volume.call_count == 2


def test_a_new_map_asks_again(requests_mock, volume, lookups):
    ask(lookups()['fast'])
    gc.collect()  # the first map's lookups are gone: so is their cache
    ask(lookups()['fast'])
    assert volume.call_count == 2


def test_concurrent_lookups_make_one_request(requests_mock, keystone,
                                             lookups):
    entered, release = threading.Event(), threading.Event()

    def slow_volume(request, context):
        entered.set()
        release.wait(5)
        return volume_body()

    get = requests_mock.get(volume_url(), json=slow_volume)
    found = lookups()
    answers = []

    def run(store):
        answers.append(ask(found[store]))

    threads = [threading.Thread(target=run, args=('fast',))]
    threads[0].start()
    assert entered.wait(5)
    threads += [threading.Thread(target=run, args=(store,))
                for store in ('fast', 'slow') * 4]
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.05)
    release.set()
    for thread in threads:
        thread.join(5)
    assert get.call_count == 1
    assert keystone.call_count == 1
    assert sorted(a.store or '' for a in answers) == [''] * 4 + ['fast'] * 5


def test_concurrent_waiter_times_out(requests_mock, keystone, lookups):
    entered, release = threading.Event(), threading.Event()

    def slow_volume(request, context):
        entered.set()
        release.wait(5)
        return volume_body()

    requests_mock.get(volume_url(), json=slow_volume)
    found = lookups()
    leader = threading.Thread(target=ask, args=(found['fast'],))
    leader.start()
    try:
        assert entered.wait(5)
        answer = ask(found['slow'], timeout=0.1)
        assert answer.reason == base.UNAVAILABLE
    finally:
        release.set()
        leader.join(5)


# Secrets.

def test_secrets_never_in_details_or_logs(requests_mock, lookups, caplog):
    caplog.set_level(logging.DEBUG)
    requests_mock.post(TOKEN_URL, [
        {'status_code': 201, 'json': token_body(),
         'headers': {'X-Subject-Token': TOKEN}},
    ])
    requests_mock.get(volume_url(), json=volume_body())
    requests_mock.get(volume_url(OTHER_VOLUME), status_code=503,
                      json={'error': 'down'})
    found = lookups()
    answers = [ask(found['fast']), ask(found['slow']),
               ask(found['fast'], f'cinder://{OTHER_VOLUME}')]
    # keystoneauth logged its requests (the token hashed), so the check
    # below means something; it never logs the token request itself.
    assert f'REQ: curl -g -i -X GET {volume_url()}' in caplog.text
    assert 'X-Auth-Token: {SHA256}' in caplog.text
    assert 'Making authentication request' in caplog.text
    text = caplog.text + repr(answers) + repr(found)
    for secret in (PASSWORD, TOKEN):
        assert secret not in text


def test_refused_secrets_never_in_details_or_logs(requests_mock, lookups,
                                                  caplog):
    caplog.set_level(logging.DEBUG)
    requests_mock.post(TOKEN_URL, status_code=401, json=UNAUTHORIZED)
    found = lookups(f"""
        [DEFAULT]
        enabled_backends = fast:cinder

        [fast]
        cinder_store_auth_address = {AUTH}
        cinder_store_application_credential_id = ac-1
        cinder_store_application_credential_secret = {AC_SECRET}
    """)
    answer = ask(found['fast'])
    assert answer.reason == base.FORBIDDEN
    text = caplog.text + repr(answer) + repr(found)
    assert AC_SECRET not in text
    assert AC_SECRET not in repr(found['fast']._connection.settings)


# A store whose options cannot make a lookup.

@pytest.mark.parametrize('missing', [
    'cinder_store_auth_address', 'cinder_store_user_name',
    'cinder_store_password', 'cinder_store_project_name'])
def test_missing_credentials_leave_prefixes_alone(requests_mock, load_conf,
                                                  claims, caplog, missing):
    text = STORES.replace(f'    {missing} =', f'    # {missing} =')
    the_map = lmap.LocationMap.from_config(load_conf(text))
    assert claims(the_map, 'fast') == ['cinder://fast']
    assert the_map.resolve(f'cinder://fast/{VOLUME}') == 'fast'
    lookup = the_map.stores['fast'].store.backend_lookup()
    legacy = urls.canonicalize(f'cinder://{VOLUME}')
    assert lookup.wants(legacy)
    with caplog.at_level(logging.WARNING):
        answers = [lookup.lookup(legacy, 5.0) for _ in range(3)]
    assert {(a.store, a.reason) for a in answers} == {(None,
                                                       base.UNAVAILABLE)}
    assert answers[0].detail.startswith(f"store 'fast', volume {VOLUME}: "
                                        f"[fast]/{missing}: is not set")
    assert 'cinder_store_auth_address' in answers[0].detail
    assert caplog.text.count('No Cinder lookups for store fast') == 1
    assert requests_mock.call_count == 0


@pytest.mark.parametrize('options, option', [
    ('cinder_catalog_info = volumev3', 'cinder_catalog_info'),
    ('cinder_catalog_info = :cinderv3:publicURL', 'cinder_catalog_info'),
    ('cinder_catalog_info = volumev3::privateURL', 'cinder_catalog_info'),
    ('cinder_endpoint_template = http://c.example.com/v3/%(domain)s',
     'cinder_endpoint_template'),
    ('cinder_endpoint_template = http://c.example.com/v3/%(tenant)',
     'cinder_endpoint_template'),
    ('cinder_endpoint_template = c.example.com/v3/%(tenant)s',
     'cinder_endpoint_template'),
    ('cinder_http_retries = many', 'cinder_http_retries'),
    ('cinder_http_retries = -1', 'cinder_http_retries'),
])
def test_bad_options_name_themselves(requests_mock, lookups, options,
                                     option):
    found = lookups(more('fast', options))
    answer = ask(found['fast'])
    assert (answer.store, answer.reason) == (None, base.UNAVAILABLE)
    assert f'[fast]/{option}:' in answer.detail
    assert requests_mock.call_count == 0
    # the other store is fine
    assert found['slow'].problem is None
