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

"""The options of multistore-prefix, for oslo-config-generator.

Each store's own options are glance_store's (its ``glance.multi_store``
namespace); this lists only what the package itself reads besides them.
"""

import copy

from oslo_db import options as db_options

from multistore_prefix import crypt
from multistore_prefix.db import bounds
from multistore_prefix.db import options as msp_db_options
from multistore_prefix import location_map
from multistore_prefix import middleware


def _database_opts():
    """oslo.db's options, ``connection`` showing the embedded default.

    That default depends on ``$MSP_STATE_DIR`` and the working directory,
    so the sample shows where it goes rather than one machine's path.
    """
    opts = copy.deepcopy(db_options.database_opts)
    for opt in opts:
        if opt.name == 'connection':
            # No "$" here: oslo.config would read it as a reference if
            # the line were uncommented.
            opt.sample_default = (
                f'sqlite:///<state directory>/'
                f'{msp_db_options.DATABASE_FILE}')
            opt.help += (
                ' multistore-prefix: Glance\'s database (as in '
                'glance-api.conf); backfill and db sync need it set in '
                'the configuration they are given.  Its own embedded '
                f'SQLite file {msp_db_options.DATABASE_FILE} in the state '
                f'directory (${msp_db_options.STATE_DIR_ENV}, else '
                f'./{msp_db_options.DEFAULT_STATE_DIR}) is only for db '
                'sync without any configuration and for the demo.')
    return opts


def list_opts():
    return [
        ('DEFAULT', [location_map.ENABLED_BACKENDS_OPT, crypt.KEY_OPT]),
        ('database', _database_opts()),
        (bounds.GROUP, bounds.OPTS),
        (middleware.GROUP, middleware.FILTER_OPTS),
    ]
