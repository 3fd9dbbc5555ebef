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

"""``multistore-prefix filter check``, run as an operator runs it."""

import json
import textwrap

import pytest

from tests.functional import command

EXIT_OK, EXIT_CONFIG, EXIT_CHECK_FAILED = 0, 2, 4
DB_PASSWORD = 'db-Pa55word-SECRET'

# Glance 33's own layout: composites per flavor, pipelines keyed by flavor.
PASTE = """\
[composite:glance-api]
paste.composite_factory = glance.api:root_app_factory
/: api
/healthcheck: healthcheck

[composite:glance-api-keystone]
paste.composite_factory = glance.api:root_app_factory
/: api

[composite:glance-api-caching]
paste.composite_factory = glance.api:root_app_factory
/: api

[composite:api]
paste.composite_factory = glance.api:pipeline_factory
default = cors versionnegotiation unauthenticated-context {default} rootapp
keystone = cors versionnegotiation authtoken context rootapp
caching = cors unauthenticated-context cache {caching} rootapp

[filter:unauthenticated-context]
paste.filter_factory = glance.api.middleware.context:UnauthenticatedContextMiddleware.factory

[filter:context]
paste.filter_factory = glance.api.middleware.context:ContextMiddleware.factory

[filter:cache]
paste.filter_factory = glance.api.middleware.cache:CacheFilter.factory

[filter:multistore_prefix]
{declaration}
"""  # noqa: E501

GLANCE_API_CONF = """\
[DEFAULT]
enabled_backends = fast:file, slow:file
[fast]
filesystem_store_datadir = /var/lib/glance/images
[slow]
filesystem_store_datadir = {slow}
[database]
connection = mysql+pymysql://glance:{password}@db.example.com/glance
[paste_deploy]
flavor = {flavor}
[multistore_prefix]
request_timeout = {timeout}
"""

USE = 'use = egg:multistore-prefix#multistore_prefix'


def write(tmp_path, default='multistore_prefix', caching='',
          declaration=USE, flavor='', slow='/var/lib/glance/images2',
          timeout='5', paste=True):
    conf = tmp_path / 'glance-api.conf'
    conf.write_text(GLANCE_API_CONF.format(
        slow=slow, password=DB_PASSWORD, flavor=flavor, timeout=timeout))
    if paste:
        # Beside the configuration, where glance-api looks for it.
        (tmp_path / 'glance-api-paste.ini').write_text(PASTE.format(
            default=default, caching=caching, declaration=declaration))
    return conf


def check(conf, *args):
    result = command.run('--config-file', conf, 'filter', 'check', '-f',
                         'json', *args)
    assert DB_PASSWORD not in result.stdout + result.stderr
    assert 'Traceback' not in result.stderr
    rows = json.loads(result.stdout) if result.stdout else []
    return result.returncode, {row['check']: (row['result'], row['detail'])
                               for row in rows}, result.stderr


@pytest.mark.parametrize('declaration', [
    USE, 'paste.filter_factory = multistore_prefix.middleware:filter_factory',
])
def test_a_filter_in_place_passes(tmp_path, declaration):
    status, rows, _ = check(write(tmp_path, declaration=declaration))
    assert status == EXIT_OK
    assert rows['pipeline'][0] == 'ok'
    assert 'application glance-api:' in rows['pipeline'][1]
    assert 'unauthenticated-context multistore_prefix rootapp' in rows[
        'pipeline'][1]
    assert rows['stores'] == ('ok', 'fast (file), slow (file)')
    assert rows['database'] == (
        'ok', 'mysql+pymysql://glance:***@db.example.com/glance '
              '(not contacted)')
    assert rows['options'][0] == 'ok'
    assert 'request_timeout = 5.0' in rows['options'][1]


@pytest.mark.parametrize('layout, words', [
    # The flavor glance-api uses has no filter, though another has.
    (dict(flavor='keystone'), 'not in [composite:api] keystone'),
    (dict(flavor='caching', default='', caching='multistore_prefix'),
     'after cache in [composite:api] caching'),
    (dict(flavor='nosuch'), 'no [pipeline:glance-api-nosuch] nor '
                            '[composite:glance-api-nosuch]'),
    (dict(paste=False), 'glance-api-paste.ini: not found beside the '
                        'configuration files'),
    (dict(declaration='paste.filter_factory = other:factory'),
     'not in [composite:api] default'),
])
def test_a_filter_out_of_place_fails(tmp_path, layout, words):
    status, rows, _ = check(write(tmp_path, **layout))
    assert status == EXIT_CHECK_FAILED
    result, detail = rows['pipeline']
    assert result == 'FAIL' and words in detail, detail
    # Every other row is still there.
    assert set(rows) == {'pipeline', 'stores', 'database', 'options',
                         'glance'}


def test_the_flavor_and_the_paste_file_can_be_named(tmp_path):
    conf = write(tmp_path, flavor='keystone')
    other = tmp_path / 'other-paste.ini'
    other.write_text(PASTE.format(default='', caching='multistore_prefix',
                                  declaration=USE).replace(
        'authtoken context rootapp', 'authtoken context multistore_prefix '
                                     'rootapp'))
    assert check(conf, '--flavor', '')[0] == EXIT_OK
    status, rows, _ = check(conf, '--paste-file', str(other))
    assert status == EXIT_OK and str(other) in rows['pipeline'][1]


def test_before_the_context_filter_is_a_warning(tmp_path):
    conf = write(tmp_path)
    paste = tmp_path / 'glance-api-paste.ini'
    paste.write_text(paste.read_text().replace(
        'unauthenticated-context multistore_prefix',
        'multistore_prefix unauthenticated-context'))
    status, rows, _ = check(conf)
    assert status == EXIT_OK
    result, detail = rows['pipeline']
    assert result == 'warning' and 'before unauthenticated-context' in detail


@pytest.mark.parametrize('layout, row, words', [
    (dict(slow='relative/dir'), 'stores',
     '[slow]/filesystem_store_datadir'),
    (dict(timeout='soon'), 'options', '[multistore_prefix]/request_timeout'),
])
def test_stores_and_options_that_do_not_build_fail(tmp_path, layout, row,
                                                   words):
    status, rows, _ = check(write(tmp_path, **layout))
    assert status == EXIT_CHECK_FAILED
    assert rows[row][0] == 'FAIL' and words in rows[row][1], rows[row]
    assert rows['pipeline'][0] == 'ok'


def test_no_database_fails(tmp_path):
    conf = write(tmp_path)
    conf.write_text(conf.read_text().replace('connection =', '# connection'))
    status, rows, _ = check(conf)
    assert status == EXIT_CHECK_FAILED
    assert rows['database'][0] == 'FAIL'
    assert '[database]/connection is not set' in rows['database'][1]


def test_an_unreadable_configuration_is_one_line(tmp_path):
    status, rows, stderr = check(tmp_path / 'missing.conf')
    assert status == EXIT_CONFIG and rows == {}
    assert 'missing.conf' in stderr and len(stderr.strip().splitlines()) == 1


def test_a_paste_file_that_does_not_parse_fails(tmp_path):
    conf = write(tmp_path)
    (tmp_path / 'glance-api-paste.ini').write_text(textwrap.dedent("""\
        [composite:glance-api
        /: api
        """))
    status, rows, _ = check(conf)
    assert status == EXIT_CHECK_FAILED
    assert 'cannot parse it' in rows['pipeline'][1]
