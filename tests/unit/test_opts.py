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

"""The options listed for oslo-config-generator."""

from oslo_db import options as db_options

from multistore_prefix.db import options as msp_db_options
from multistore_prefix import opts


def test_groups_and_options():
    listed = dict(opts.list_opts())
    assert [o.name for o in listed['DEFAULT']] == ['enabled_backends']
    names = {o.name for o in listed['database']}
    assert {'connection', 'max_retries', 'retry_interval'} <= names
    # The glance-api filter's own, in glance-api.conf.
    assert {'fix_wrong_stores', 'backend_lookups', 'backend_lookup_timeout',
            'request_timeout'} <= {o.name for o in
                                   listed['multistore_prefix']}


def test_the_sample_shows_the_embedded_default_without_changing_oslo_db():
    connection = {o.name: o for o in dict(opts.list_opts())['database']}[
        'connection']
    assert connection.sample_default == (
        'sqlite:///<state directory>/' + msp_db_options.DATABASE_FILE)
    # No "$": uncommented, oslo.config would take it for a reference.
    assert '$' not in connection.sample_default
    assert msp_db_options.STATE_DIR_ENV in connection.help
    original = {o.name: o for o in db_options.database_opts}['connection']
    assert original.sample_default is None
    assert msp_db_options.STATE_DIR_ENV not in original.help
