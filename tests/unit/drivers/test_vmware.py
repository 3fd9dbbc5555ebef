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

"""VMware datastore stores: multistore_prefix/drivers/vmware.py."""

import logging

from glance_store._drivers import vmware_datastore
import pytest

from multistore_prefix import location_map as lmap

IMAGE = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d'


def vmware_store(host, datastores=('dc1:ds1',), store='vc', extra=''):
    lines = '\n'.join(f'vmware_datastores = {d}' for d in datastores)
    return f"""
[DEFAULT]
enabled_backends = {store}:vmware
[{store}]
vmware_server_host = {host}
vmware_server_username = admin
vmware_server_password = secret
{lines}
{extra}
"""


def glance_location(host, dc, ds, image_dir='/openstack_glance'):
    """A location as glance_store's vmware StoreLocation writes it."""
    return vmware_datastore.StoreLocation(
        {'scheme': 'vsphere', 'server_host': host, 'image_dir': image_dir,
         'image_id': IMAGE, 'datacenter_path': dc, 'datastore_name': ds},
        None).get_uri()


def test_one_claim_per_datastore(build_map, claims):
    the_map = build_map(vmware_store(
        'vcenter.example.com', ('dc1:ds1', 'dc1:ds2:100', 'folder/dc2:ds3:',
                                'dc1:ds1:50')))
    assert claims(the_map, 'vc') == [
        'vsphere://vcenter.example.com/folder/openstack_glance'
        '?dcPath=dc1&dsName=ds1',
        'vsphere://vcenter.example.com/folder/openstack_glance'
        '?dcPath=dc1&dsName=ds2',
        'vsphere://vcenter.example.com/folder/openstack_glance'
        '?dcPath=folder/dc2&dsName=ds3']
    entry = the_map.stores['vc']
    assert entry.location_class is vmware_datastore.StoreLocation


@pytest.mark.parametrize('url, store', [
    (glance_location('vcenter.example.com', 'dc1', 'ds1'), 'vc'),
    (glance_location('vcenter.example.com', 'folder/dc2', 'ds3'), 'vc'),
    (f'VSPHERE://VCenter.example.com:443/folder/openstack_glance/{IMAGE}'
     f'?dsName=ds1&dcPath=dc1', 'vc'),
    (f'vsphere://vcenter.example.com/folder/openstack_glance/{IMAGE}'
     f'?dcPath=folder/dc2&dsName=ds3', 'vc'),
    # datastore, datacenter or folder not configured, or no query at all
    (glance_location('vcenter.example.com', 'dc1', 'ds9'), None),
    (glance_location('vcenter.example.com', 'dc2', 'ds1'), None),
    (glance_location('vcenter.example.com', 'dc1', 'ds1', 'other'), None),
    (f'vsphere://vcenter.example.com/folder/openstack_glance/{IMAGE}', None),
    (glance_location('vcenter2.example.com', 'dc1', 'ds1'), None),
])
def test_resolution_uses_dcpath_and_dsname(build_map, url, store):
    the_map = build_map(vmware_store(
        'vcenter.example.com', ('dc1:ds1', 'folder/dc2:ds3:10')))
    assert the_map.resolve(url) == store


@pytest.mark.parametrize('host, authority', [
    ('fe80::1', '[fe80::1]'),
    ('2001:DB8::10', '[2001:db8::10]'),
    ('192.0.2.10', '192.0.2.10'),
])
def test_ipv6_hosts_are_bracketed(build_map, claims, host, authority):
    the_map = build_map(vmware_store(host))
    assert claims(the_map, 'vc') == [
        f'vsphere://{authority}/folder/openstack_glance?dcPath=dc1&dsName=ds1']
    url = glance_location(host, 'dc1', 'ds1')
    written = f'[{host}]' if ':' in host else host
    assert url.startswith(f'vsphere://{written}/folder/')
    assert the_map.resolve(url) == 'vc'
    assert the_map.resolve(url.replace(host, host.upper())) == 'vc'


def test_glance_store_url_prefix_misses_its_own_locations(
        load_conf, glance_store_conf):
    conf = load_conf(vmware_store('vc.example.com'))
    the_map = lmap.LocationMap.from_config(conf)
    glance_store_conf(conf)
    store = vmware_datastore.Store(conf, backend='vc')
    # What configure() and configure_add() set before _set_url_prefix();
    # they also log in to vCenter, which is why they are not called.
    store.scheme = 'vsphere'
    store.server_host = store._option_get('vmware_server_host')
    store.store_image_dir = store.store_conf.vmware_store_image_dir
    store._set_url_prefix()
    url = glance_location('vc.example.com', 'dc1', 'ds1')

    assert store.url_prefix == 'vsphere://vc.example.com/openstack_glance'
    assert not url.startswith(store.url_prefix)
    assert the_map.resolve(url) == 'vc'


def test_image_dir(build_map, claims):
    the_map = build_map(vmware_store(
        'vc.example.com', extra='vmware_store_image_dir = /glance/images/'))
    assert claims(the_map, 'vc') == [
        'vsphere://vc.example.com/folder/glance/images?dcPath=dc1&dsName=ds1']
    assert the_map.resolve(glance_location(
        'vc.example.com', 'dc1', 'ds1', '/glance/images/')) == 'vc'
    assert the_map.resolve(glance_location(
        'vc.example.com', 'dc1', 'ds1', '/glance')) is None


def test_two_stores_on_one_vcenter_and_folder(build_map):
    the_map = build_map("""
        [DEFAULT]
        enabled_backends = gold:vmware, silver:vmware
        [gold]
        vmware_server_host = fe80::1
        vmware_datastores = dc1:ssd1
        vmware_datastores = dc1:ssd2:10
        [silver]
        vmware_server_host = FE80::1
        vmware_datastores = dc1:hdd1
    """)
    assert the_map.conflicts == []
    for ds, store in (('ssd1', 'gold'), ('ssd2', 'gold'), ('hdd1', 'silver'),
                      ('tape', None)):
        url = glance_location('fe80::1', 'dc1', ds)
        assert the_map.resolve(url) == store, url


def test_one_datastore_in_two_stores_conflicts(build_map, caplog):
    with caplog.at_level(logging.WARNING):
        the_map = build_map("""
            [DEFAULT]
            enabled_backends = gold:vmware, silver:vmware
            [gold]
            vmware_server_host = vc.example.com
            vmware_datastores = dc1:ssd1
            vmware_datastores = dc1:shared
            [silver]
            vmware_server_host = vc.example.com
            vmware_datastores = dc1:shared:5
        """)
    assert [c.stores for c in the_map.conflicts] == [('gold', 'silver')]
    assert 'gold, silver' in caplog.text
    shared = glance_location('vc.example.com', 'dc1', 'shared')
    assert the_map.resolve(shared) is None
    assert the_map.explain(shared).reason == lmap.CONFLICT
    assert the_map.resolve(
        glance_location('vc.example.com', 'dc1', 'ssd1')) == 'gold'


@pytest.mark.parametrize('options, option, words', [
    ('vmware_datastores = dc1:ds1', 'vmware_server_host', 'is not set'),
    ('vmware_server_host = vc.example.com', 'vmware_datastores',
     'is not set'),
    ('vmware_server_host = vc.example.com\nvmware_datastores = ds1',
     'vmware_datastores', "'ds1' names no datacenter"),
    ('vmware_server_host = vc.example.com\nvmware_datastores = :ds1',
     'vmware_datastores', 'names no datacenter'),
    ('vmware_server_host = vc.example.com\nvmware_datastores = dc:ds:high',
     'vmware_datastores', "bad weight 'high'"),
    ('vmware_server_host = vc.example.com\nvmware_datastores = dc:ds\n'
     'vmware_store_image_dir = a/%zz', 'vmware_store_image_dir',
     'malformed percent'),
])
def test_bad_options_name_the_store_and_option(config_error, options, option,
                                               words):
    message = config_error(f"""
[DEFAULT]
enabled_backends = vc:vmware
[vc]
{options}
""", 'vc', option)
    assert words in message
