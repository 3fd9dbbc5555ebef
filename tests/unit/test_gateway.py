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


"""The gateway stacks the layers: multistore_prefix/gateway.py."""

from oslo_config import cfg
from oslo_context import context as oslo_context
import pytest

from multistore_prefix.db import exceptions
from multistore_prefix.db import options
from multistore_prefix.domain import distinction
from multistore_prefix.domain import repo as repo_mod
from multistore_prefix.domain import resolution
from multistore_prefix import gateway as gateway_mod


def test_layers_in_order(db_url, make_gateway):
    gateway = make_gateway(db_url)
    repo = gateway.get_repo()
    assert isinstance(repo, resolution.ImageRepoProxy)
    assert isinstance(repo.base, distinction.ImageRepoProxy)
    assert isinstance(repo.base.base, repo_mod.ImageRepo)
    assert repo.base.base.database is gateway.database
    assert sorted(repo.decider.location_map.stores) == ['fast', 'slow']
    assert isinstance(gateway.get_image_factory(),
                      distinction.ImageFactoryProxy)


def test_no_backends_no_resolution(db_url, make_gateway):
    repo = make_gateway(db_url, stores=None).get_repo()
    assert isinstance(repo, distinction.ImageRepoProxy)


def test_round_trip(db_url, make_gateway):
    gateway = make_gateway(db_url)
    repo = gateway.get_repo()
    image = gateway.get_image_factory().new_image(
        name='rt', extra_properties={'a': 'b'}, tags=['x'])
    image.locations.append({'url': 'file:///var/lib/glance/images/rt',
                            'metadata': {}, 'status': 'active'})
    repo.add(image)
    assert image.locations[0]['id']
    got = repo.get(image.image_id)
    assert (got.name, got.extra_properties, got.tags) == (
        'rt', {'a': 'b'}, {'x'})
    assert got.locations[0]['metadata'] == {'store': 'fast'}
    assert [i.image_id for i in repo.list()] == [image.image_id]
    assert [i.image_id for i in repo.list(filters={'name': 'other'})] == []
    repo.remove(got)
    with pytest.raises(exceptions.NotFound):
        repo.get(image.image_id)


def test_read_only_context_reads_and_resolves_but_never_writes(
        db_url, make_gateway, statement_log):
    gateway = make_gateway(db_url)
    factory = gateway.get_image_factory()
    image = factory.new_image(name='ro')
    image.locations.append({'url': 'file:///var/lib/glance/images2/ro',
                            'metadata': {}, 'status': 'active'})
    make_gateway(db_url, stores=None).get_repo().add(image)
    context = oslo_context.RequestContext(read_only=True)
    repo = gateway.get_repo(context)
    with statement_log(gateway.database.engine) as log:
        got = repo.get(image.image_id)
    assert got.locations[0]['metadata'] == {'store': 'slow'}
    assert log.writes == []
    got.name = 'renamed'
    with pytest.raises(exceptions.Forbidden):
        repo.save(got)
    with pytest.raises(exceptions.Forbidden):
        repo.add(factory.new_image())
    with pytest.raises(exceptions.Forbidden):
        repo.remove(got)


def test_embedded_default_database(monkeypatch, tmp_path):
    monkeypatch.setenv(options.STATE_DIR_ENV, str(tmp_path))
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    gateway = gateway_mod.Gateway(conf)
    try:
        assert gateway.database.connection == (
            f'sqlite:///{tmp_path}/multistore-prefix.sqlite')
        assert gateway.location_map is None
    finally:
        gateway.close()


def test_every_column_round_trips_and_compares(db_url, make_gateway):
    gateway = make_gateway(db_url, stores=None)
    repo = gateway.get_repo()
    image = gateway.get_image_factory().new_image(name='columns')
    repo.add(image)
    values = {'name': 'n', 'status': 'active', 'visibility': 'public',
              'size': 2 ** 40, 'virtual_size': 2 ** 41, 'checksum': 'c' * 32,
              'os_hash_algo': 'sha512', 'os_hash_value': 'h' * 128,
              'disk_format': 'qcow2', 'container_format': 'bare',
              'min_disk': 3, 'min_ram': 512, 'protected': True,
              'os_hidden': True, 'owner': 'project'}
    stale = repo.get(image.image_id)
    got = repo.get(image.image_id)
    for name, value in values.items():
        if name != 'status':
            setattr(got, name, value)
    got.transition('location_added')  # queued -> active, formats set
    assert set(repo.save(got).columns) == set(values)
    again = repo.get(image.image_id)
    assert {name: getattr(again, name) for name in values} == values
    stale.visibility = 'community'
    with pytest.raises(exceptions.Conflict) as caught:
        repo.save(stale)
    assert (caught.value.attribute, caught.value.found) == ('visibility',
                                                            'public')
