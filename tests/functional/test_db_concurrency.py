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


"""The seed's race and its relatives, on SQLite, PostgreSQL and MariaDB.

Writers here are threads with their own sessions and, on the server
databases, separate processes: each reads the image, changes its own part,
saves.  The distinction layer must keep every change that does not touch
another writer's attribute, and refuse (never overwrite) the ones that do.
"""

import subprocess
import sys
import textwrap
import threading

import pytest

from multistore_prefix.db import exceptions


LEGACY = 'file:///var/lib/glance/images2/legacy-image'


def _image(gateway, **properties):
    factory = gateway.get_image_factory()
    image = factory.new_image(name='seed', disk_format='raw',
                              container_format='bare',
                              extra_properties=properties)
    image.locations.append({'url': LEGACY, 'metadata': {'origin': 'old'},
                            'status': 'active'})
    # Stored without resolving: a legacy image as Glance left it.
    gateway.get_repo().add(image)
    return image.image_id


def _run_threads(count, target):
    """Run ``target(index, barrier)`` in ``count`` threads at once."""
    barrier = threading.Barrier(count, timeout=60)
    results = [None] * count

    def run(index):
        barrier.wait()
        try:
            results[index] = target(index, barrier)
        except Exception as exc:  # collected and checked by the test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


@pytest.mark.parametrize('first', ['foo', 'goo'])
def test_seed_race_keeps_both_changes(db_url, make_gateway, first):
    """{"foo": "bar", "goo": "far"}: one sets foo, the other goo."""
    gateway = make_gateway(db_url, stores=None)
    image_id = _image(gateway, foo='bar', goo='far')
    repo = gateway.get_repo()
    user1 = repo.get(image_id)
    user2 = repo.get(image_id)
    user1.extra_properties['foo'] = 'baz'
    user2.extra_properties['goo'] = 'yuck'
    for user in ((user1, user2) if first == 'foo' else (user2, user1)):
        repo.save(user)
    assert repo.get(image_id).extra_properties == {'foo': 'baz',
                                                   'goo': 'yuck'}


def test_many_writers_and_resolve_on_get_lose_nothing(db_url, make_gateway):
    writers, readers = 12, 4
    setup = make_gateway(db_url)
    image_id = _image(make_gateway(db_url, stores=None),
                      **{f'p{i}': 'old' for i in range(writers)})

    def work(index, barrier):
        gateway = make_gateway(db_url)
        repo = gateway.get_repo()
        if index >= writers:
            # Resolve on GET, racing the writers.
            barrier.wait()
            return repo.get(image_id).locations[0]['metadata']
        image = repo.get(image_id)
        barrier.wait()  # every writer has read before any saves
        image.extra_properties[f'p{index}'] = f'new{index}'
        image.tags.add(f'tag{index}')
        if index == 0:
            image.locations[0]['metadata']['checked'] = 'yes'
        repo.save(image)

    results = _run_threads(writers + readers, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    image = setup.get_repo().get(image_id)
    assert image.extra_properties == {f'p{i}': f'new{i}'
                                      for i in range(writers)}
    assert image.tags == {f'tag{i}' for i in range(writers)}
    assert image.locations[0]['metadata'] == {
        'origin': 'old', 'store': 'slow', 'checked': 'yes'}


_WORKER = textwrap.dedent('''
    import sys
    from oslo_config import cfg
    from multistore_prefix import gateway
    conf_file, image_id, index = sys.argv[1:]
    conf = cfg.ConfigOpts()
    conf(['--config-file', conf_file], project='multistore-prefix',
         default_config_files=[])
    gw = gateway.Gateway(conf)
    repo = gw.get_repo()
    for round in range(5):
        image = repo.get(image_id)
        image.extra_properties[f'proc{index}'] = f'round{round}'
        repo.save(image)
    gw.close()
''')


# Processes share a server database; threads cover SQLite.
@pytest.mark.engines('postgresql', 'mysql')
def test_writer_processes_lose_nothing(database_server, db_url,
                                       make_gateway, make_gateway_conf,
                                       tmp_path):
    processes = 4
    image_id = _image(make_gateway(db_url, stores=None),
                      **{f'proc{i}': 'start' for i in range(processes)})
    conf_file = tmp_path / 'workers.conf'
    conf_file.write_text(textwrap.dedent(f'''
        [DEFAULT]
        enabled_backends = fast:file, slow:file
        [fast]
        filesystem_store_datadir = /var/lib/glance/images
        [slow]
        filesystem_store_datadir = /var/lib/glance/images2
        [database]
        connection = {db_url}
    '''))
    workers = [subprocess.Popen(
        [sys.executable, '-c', _WORKER, str(conf_file), image_id, str(i)],
        stderr=subprocess.PIPE, text=True) for i in range(processes)]
    # Resolve on GET in this process meanwhile.
    repo = make_gateway(db_url).get_repo()
    for _ in range(10):
        repo.get(image_id)
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    image = repo.get(image_id)
    assert image.extra_properties == {f'proc{i}': 'round4'
                                      for i in range(processes)}
    assert image.locations[0]['metadata'] == {'origin': 'old',
                                              'store': 'slow'}


@pytest.mark.parametrize('change', ['name', 'property', 'metadata'])
def test_two_writers_same_attribute_one_wins(db_url, make_gateway, change):
    gateway = make_gateway(db_url, stores=None)
    image_id = _image(gateway, foo='bar', other='keep')

    def work(index, barrier):
        repo = make_gateway(db_url, stores=None).get_repo()
        image = repo.get(image_id)
        barrier.wait()  # both have read before either saves
        if change == 'name':
            image.name = f'writer{index}'
        elif change == 'property':
            image.extra_properties['foo'] = f'writer{index}'
        else:
            image.locations[0]['metadata']['origin'] = f'writer{index}'
        repo.save(image)
        return f'writer{index}'

    results = _run_threads(2, work)
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1, results
    assert len(losers) == 1 and isinstance(losers[0], exceptions.Conflict)
    assert not isinstance(losers[0], exceptions.Duplicate)
    image = gateway.get_repo().get(image_id)
    found = {'name': image.name,
             'property': image.extra_properties['foo'],
             'metadata': image.locations[0]['metadata']['origin']}[change]
    assert found == winners[0]
    assert image.extra_properties['other'] == 'keep'
    if change != 'name':
        assert image.name == 'seed'


def test_sequential_same_attribute_conflict_names_it(db_url, make_gateway):
    repo = make_gateway(db_url, stores=None).get_repo()
    image_id = _image(make_gateway(db_url, stores=None), foo='bar')
    first, second = repo.get(image_id), repo.get(image_id)
    first.extra_properties['foo'] = 'one'
    second.extra_properties['foo'] = 'two'
    second.name = 'renamed'
    repo.save(first)
    with pytest.raises(exceptions.Conflict) as caught:
        repo.save(second)
    assert caught.value.attribute == 'property foo'
    assert (caught.value.expected, caught.value.found) == ('bar', 'one')
    image = repo.get(image_id)
    # All or nothing: the rename in the same save did not land either.
    assert (image.name, image.extra_properties['foo']) == ('seed', 'one')


def test_metadata_keys_merge_with_a_concurrent_writer(db_url, make_gateway):
    """Setting ``store`` never drops a key another writer added."""
    plain = make_gateway(db_url, stores=None).get_repo()
    image_id = _image(make_gateway(db_url, stores=None))
    other = plain.get(image_id)
    resolving = make_gateway(db_url).get_repo()
    other.locations[0]['metadata']['added'] = 'by other'
    # The reader read first; the other writer saves first; the reader then
    # saves the store (as a read-only get leaves it, in memory).
    stale = plain.get(image_id)
    plain.save(other)
    stale.locations[0]['metadata']['store'] = 'slow'
    resolving.save(stale)
    assert stale.locations[0]['metadata'] == {
        'origin': 'old', 'added': 'by other', 'store': 'slow'}
    assert plain.get(image_id).locations[0]['metadata'] == {
        'origin': 'old', 'added': 'by other', 'store': 'slow'}
