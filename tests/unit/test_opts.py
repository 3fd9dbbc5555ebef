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

from oslo_config import cfg
from oslo_db import options as db_options

from multistore_prefix.db import options as msp_db_options
from multistore_prefix import opts


def test_groups_and_options():
    listed = dict(opts.list_opts())
    assert [o.name for o in listed['DEFAULT']] == [
        'enabled_backends', 'metadata_encryption_key']
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


def test_a_database_group_registered_by_glance_is_left_alone(tmp_path):
    # The filter runs inside glance-api: Glance registered [database]
    # itself, and the tool's embedded default must not become Glance's.
    glance = cfg.ConfigOpts()
    db_options.set_defaults(glance)
    glance([], default_config_files=[])
    msp_db_options.register_opts(glance)
    assert glance.database.connection is None
    assert msp_db_options.configured_connection(glance) is None
    # The tool's own configuration gets the embedded default.
    own = cfg.ConfigOpts()
    msp_db_options.register_opts(own)
    own([], default_config_files=[])
    assert own.database.connection == msp_db_options.default_connection()
