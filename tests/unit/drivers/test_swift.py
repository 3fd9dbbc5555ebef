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

"""Swift stores: multistore_prefix/drivers/swift.py."""

import logging

from glance_store._drivers.swift import store as swift_store
import pytest

from multistore_prefix.drivers import base
from multistore_prefix import exceptions
from multistore_prefix import location_map as lmap

IMAGE = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d'
KEY = 'Sup3rS3cretK3y'
KEY2 = '0therS3cret'

ACCOUNTS = f"""
    [ref1]
    user = tenant:glance
    key = {KEY}
    auth_address = https://Auth.Example.com:5000/v3/

    [ref2]
    user = other:glance
    key = {KEY2}
    auth_address = "http://auth2.example.com/identity/v3"
"""


@pytest.fixture
def accounts(write):
    return write('glance-swift.conf', ACCOUNTS)


def single_tenant(accounts, reference='ref1', container='glance',
                  extra=''):
    return f"""
[DEFAULT]
enabled_backends = sw:swift
[sw]
swift_store_config_file = {accounts}
default_swift_reference = {reference}
swift_store_container = {container}
{extra}
"""


def glance_location(conf, store, auth, container, user=None, key=None,
                    scheme='swift+https'):
    """A location as glance_store's swift StoreLocation writes it."""
    return swift_store.StoreLocation(
        {'scheme': scheme, 'container': container, 'obj': IMAGE,
         'auth_or_store_url': auth, 'user': user, 'key': key},
        conf, backend_group=store)


def test_config_reference_gives_auth_and_swift_config_prefixes(
        build_map, claims, accounts):
    the_map = build_map(single_tenant(accounts))
    assert claims(the_map, 'sw') == [
        'swift+https://auth.example.com:5000/v3/glance',
        'swift+config://ref1/glance']
    entry = the_map.stores['sw']
    assert entry.location_class is swift_store.StoreLocation
    assert set(entry.store.schemes) == {
        'swift', 'swift+http', 'swift+https', 'swift+config'}


def test_locations_glance_store_writes_resolve(load_conf, accounts):
    conf = load_conf(single_tenant(accounts))
    the_map = lmap.LocationMap.from_config(conf)
    location = glance_location(conf, 'sw', 'https://auth.example.com:5000/v3',
                               'glance', 'tenant:glance', KEY)
    with_credentials = location.get_uri()
    assert KEY in with_credentials
    assert the_map.resolve(with_credentials) == 'sw'
    swift_config = location.get_uri(credentials_included=False)
    assert swift_config == f'swift+config://ref1/glance/{IMAGE}'
    assert the_map.resolve(swift_config) == 'sw'


@pytest.mark.parametrize('url, store', [
    (f'swift+https://auth.example.com:5000/v3/glance/{IMAGE}', 'sw'),
    (f'swift+https://tenant:glance:{KEY}@auth.example.com:5000/v3/glance/'
     f'{IMAGE}', 'sw'),
    (f'swift://tenant%3Aglance:{KEY}@AUTH.example.com:5000/v3/glance/{IMAGE}',
     'sw'),
    (f'swift+http://auth.example.com:5000/v3//glance/{IMAGE}', 'sw'),
    (f'swift+config://REF1/glance/{IMAGE}', 'sw'),
    (f'swift+config://ref1/glance/../glance/{IMAGE}', 'sw'),
    # another container, account, auth path or reference
    (f'swift+https://auth.example.com:5000/v3/glance2/{IMAGE}', None),
    (f'swift+https://auth.example.com:5000/v2.0/glance/{IMAGE}', None),
    (f'swift+https://auth.example.com/v3/glance/{IMAGE}', None),
    (f'swift+config://ref2/glance/{IMAGE}', None),
    (f'swift+config://ref1/glance_0a1/{IMAGE}', None),
])
def test_single_tenant_resolution(build_map, accounts, url, store):
    assert build_map(single_tenant(accounts)).resolve(url) == store


def test_config_file_is_found_next_to_glance_api_conf(build_map, claims,
                                                      accounts):
    the_map = build_map(single_tenant('glance-swift.conf', 'ref2',
                                      'images'))
    assert claims(the_map, 'sw') == [
        'swift+http://auth2.example.com/identity/v3/images',
        'swift+config://ref2/images']
    assert the_map.resolve(
        'swift+http://auth2.example.com:80/identity/v3/images/x') == 'sw'


def test_two_stores_on_two_references_of_one_file(load_conf, accounts):
    conf = load_conf(f"""
        [DEFAULT]
        enabled_backends = one:swift, two:swift
        [one]
        swift_store_config_file = {accounts}
        default_swift_reference = ref1
        [two]
        swift_store_config_file = {accounts}
        default_swift_reference = ref2
    """)
    the_map = lmap.LocationMap.from_config(conf)
    assert the_map.conflicts == []
    one = glance_location(conf, 'one', 'https://auth.example.com:5000/v3',
                          'glance', 'tenant:glance', KEY)
    two = glance_location(conf, 'two', 'http://auth2.example.com/identity/v3',
                          'glance', 'other:glance', KEY2,
                          scheme='swift+http')
    assert the_map.resolve(one.get_uri()) == 'one'
    assert the_map.resolve(one.get_uri(credentials_included=False)) == 'one'
    assert the_map.resolve(two.get_uri()) == 'two'
    assert the_map.resolve(two.get_uri(credentials_included=False)) == 'two'


def test_two_stores_on_one_reference_and_container_conflict(
        build_map, accounts, caplog):
    with caplog.at_level(logging.WARNING):
        the_map = build_map(f"""
            [DEFAULT]
            enabled_backends = one:swift, two:swift
            [one]
            swift_store_config_file = {accounts}
            [two]
            swift_store_config_file = {accounts}
        """)
    assert sorted(c.stores for c in the_map.conflicts) == [
        ('one', 'two'), ('one', 'two')]
    assert 'one, two' in caplog.text
    for url in (f'swift+config://ref1/glance/{IMAGE}',
                f'swift+https://auth.example.com:5000/v3/glance/{IMAGE}'):
        assert the_map.resolve(url) is None
        assert the_map.explain(url).reason == lmap.CONFLICT


def test_deprecated_auth_options_without_a_config_file(build_map, claims):
    the_map = build_map(f"""
        [DEFAULT]
        enabled_backends = sw:swift
        [sw]
        swift_store_auth_address = http://keystone.example.com:5000/v3
        swift_store_user = tenant:glance
        swift_store_key = {KEY}
    """)
    # glance_store writes credentials into such locations, never
    # swift+config references, so none is claimed.
    assert claims(the_map, 'sw') == [
        'swift+http://keystone.example.com:5000/v3/glance']
    assert the_map.resolve(
        f'swift+http://tenant:glance:{KEY}@keystone.example.com:5000/v3/'
        f'glance/{IMAGE}') == 'sw'
    assert the_map.resolve(f'swift+config://ref1/glance/{IMAGE}') is None


def test_multiple_containers_seed(build_map, claims, accounts):
    the_map = build_map(single_tenant(
        accounts, extra='swift_store_multiple_containers_seed = 3'))
    assert claims(the_map, 'sw') == [
        'swift+https://auth.example.com:5000/v3/glance',
        'swift+https://auth.example.com:5000/v3/glance_*',
        'swift+config://ref1/glance',
        'swift+config://ref1/glance_*']
    auth = 'swift+https://auth.example.com:5000/v3'
    assert the_map.resolve(f'{auth}/glance_0a1/{IMAGE}') == 'sw'
    assert the_map.resolve(f'swift+config://ref1/glance_0a1/{IMAGE}') == 'sw'
    # images stored before the seed was set
    assert the_map.resolve(f'{auth}/glance/{IMAGE}') == 'sw'
    assert the_map.resolve(f'{auth}/glancier/{IMAGE}') is None
    assert the_map.resolve(f'{auth}/other_0a1/{IMAGE}') is None


def multi_tenant(extra=''):
    return f"""
[DEFAULT]
enabled_backends = mt:swift
[mt]
swift_store_multi_tenant = True
{extra}
"""


def test_multi_tenant_with_endpoint(load_conf, claims):
    conf = load_conf(multi_tenant(
        'swift_store_endpoint = https://Swift.Example.com:443/v1'))
    the_map = lmap.LocationMap.from_config(conf)
    assert claims(the_map, 'mt') == [
        'swift+https://swift.example.com/.../glance_*']
    location = glance_location(conf, 'mt',
                               'https://swift.example.com/v1/AUTH_tenant1',
                               f'glance_{IMAGE}')
    assert the_map.resolve(location.get_uri()) == 'mt'
    assert the_map.resolve(
        f'swift://swift.example.com/v1/AUTH_tenant2/glance_{IMAGE}/{IMAGE}'
    ) == 'mt'
    assert the_map.resolve(
        f'swift+https://other.example.com/v1/AUTH_t/glance_{IMAGE}/{IMAGE}'
    ) is None
    assert the_map.resolve(
        f'swift+https://swift.example.com/v1/AUTH_t/images_{IMAGE}/{IMAGE}'
    ) is None


def test_multi_tenant_without_endpoint_claims_any_host(build_map, claims):
    the_map = build_map(multi_tenant('swift_store_container = images'))
    assert claims(the_map, 'mt') == ['swift+https://*/.../images_*']
    for host in ('swift.region1.example.com', 'swift.region2.example.com'):
        assert the_map.resolve(
            f'swift+https://{host}/v1/AUTH_t/images_{IMAGE}/{IMAGE}') == 'mt'
    assert the_map.resolve(
        f'swift+https://swift.example.com/v1/AUTH_t/images/{IMAGE}') is None


def test_single_tenant_beats_multi_tenant_on_its_own_account(build_map,
                                                             accounts):
    the_map = build_map(f"""
        [DEFAULT]
        enabled_backends = sw:swift, mt:swift
        [sw]
        swift_store_config_file = {accounts}
        swift_store_multiple_containers_seed = 1
        [mt]
        swift_store_multi_tenant = True
    """)
    assert the_map.resolve(
        f'swift+https://auth.example.com:5000/v3/glance_0/{IMAGE}') == 'sw'
    assert the_map.resolve(
        f'swift+https://swift.example.com/v1/AUTH_t/glance_{IMAGE}/{IMAGE}'
    ) == 'mt'


BAD_ACCOUNTS = f"""
    [ref1]
    user = tenant:glance
    key {KEY}
    auth_address = https://auth.example.com/v3
"""


@pytest.mark.parametrize('options, option, words', [
    ('swift_store_config_file = /nonexistent/swift.conf',
     'swift_store_config_file', 'not found'),
    ('swift_store_config_file = {accounts}\ndefault_swift_reference = ref9',
     'default_swift_reference', 'one of: ref1, ref2'),
    ('swift_store_config_file = {noauth}',
     'swift_store_config_file', 'has no auth_address'),
    ('swift_store_config_file = {quote}',
     'swift_store_config_file', 'unclosed quote'),
    ('swift_store_config_file = {bad}',
     'swift_store_config_file', 'ParsingError at line 4'),
    ('swift_store_config_file = {space}\ndefault_swift_reference = my ref',
     'default_swift_reference', 'swift+config://'),
    ('swift_store_user = u\nswift_store_key = k',
     'swift_store_auth_address', 'is not set'),
    ('swift_store_auth_address = ftp://auth.example.com/v3',
     'swift_store_auth_address', 'not an http(s) address'),
    ('swift_store_auth_address = https://auth.example.com:x/v3',
     'swift_store_auth_address', 'bad port'),
    ('swift_store_auth_address = https://a/v3\nswift_store_container =',
     'swift_store_container', 'is not set'),
    ('swift_store_auth_address = https://a/v3\nswift_store_container = a/b',
     'swift_store_container', 'not a container name'),
    ('swift_store_auth_address = https://a/v3\nswift_store_container = //',
     'swift_store_container', 'not a container name'),
    ('swift_store_multi_tenant = True\nswift_store_config_file = {accounts}',
     'swift_store_multi_tenant', 'swift_store_config_file'),
    ('swift_store_multi_tenant = True\n'
     'swift_store_endpoint = https://swift:x/v1',
     'swift_store_endpoint', 'bad port'),
])
def test_bad_options_name_the_store_and_option(config_error, write, accounts,
                                               options, option, words):
    files = {
        'accounts': accounts,
        'noauth': write('noauth.conf', f'[ref1]\nuser = u\nkey = {KEY}\n'),
        'quote': write('quote.conf', '[ref1]\nauth_address = "https://a\n'),
        'bad': write('bad.conf', BAD_ACCOUNTS),
        'space': write('space.conf', '[my ref]\nauth_address = https://a\n'),
    }
    message = config_error(f"""
[DEFAULT]
enabled_backends = sw:swift
[sw]
{options.format(**files)}
""", 'sw', option)
    assert words in message
    assert KEY not in message


def test_keys_never_reach_prefixes_errors_or_logs(build_map, write, accounts,
                                                  caplog, capsys):
    urls = [
        f'swift+https://tenant:glance:{KEY}@auth.example.com:5000/v3/glance/x',
        f'swift://tenant:glance:{KEY}@auth.example.com:bad/v3/glance/x',
        f'swift+https://tenant:glance:{KEY}@elsewhere.example.com/glance/x',
    ]
    with caplog.at_level(logging.DEBUG):
        the_map = build_map(single_tenant(accounts))
        explained = [the_map.explain(url) for url in urls]
        with pytest.raises(exceptions.StoreConfigError) as error:
            build_map(single_tenant(write('bad.conf', BAD_ACCOUNTS)))
    assert [r.store for r in explained] == ['sw', None, None]
    seen = ' '.join([caplog.text, *capsys.readouterr(), str(error.value),
                     *(r.detail for r in explained),
                     *(str(p) for p in the_map.stores['sw'].prefixes)])
    assert KEY not in seen
    assert KEY2 not in seen


def test_swift_scheme_drops_the_https_port(build_map):
    the_map = build_map("""
        [DEFAULT]
        enabled_backends = sw:swift
        [sw]
        swift_store_auth_address = https://auth.example.com/v3
    """)
    assert the_map.resolve(
        f'swift://u:k@auth.example.com:443/v3/glance/{IMAGE}') == 'sw'


def test_base_driver_handles_a_factory_store(load_conf):
    class Minimal(base.Driver):
        glance_store_entry = 'swift'

        def compute_prefixes(self):
            return []

    conf = load_conf(multi_tenant())
    assert 'swift+config' in Minimal(conf, 'mt').schemes


def test_invalid_option_value_names_store_and_option(build_map, accounts):
    with pytest.raises(exceptions.StoreConfigError) as error:
        build_map(single_tenant(
            accounts, extra='swift_store_multiple_containers_seed = 40'))
    assert str(error.value).startswith(
        '[sw]/swift_store_multiple_containers_seed:')
