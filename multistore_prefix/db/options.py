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


"""Where the database is: ``[database]`` options and the embedded default.

The connection comes from ``[database]/connection`` of the operator's
configuration (glance-api.conf has one).  Without it, the embedded default
is a SQLite file, ``multistore-prefix.sqlite``, in the state directory:
``$MSP_STATE_DIR`` if set, else ``./state`` under the current directory.
"""

import os

from oslo_config import cfg
from oslo_db import options as db_options

#: Environment variable that names the state directory.
STATE_DIR_ENV = 'MSP_STATE_DIR'
#: The state directory when the variable is not set, relative to the
#: current directory.
DEFAULT_STATE_DIR = 'state'
#: The embedded database's file name in the state directory.
DATABASE_FILE = 'multistore-prefix.sqlite'


def state_dir() -> str:
    """The state directory, absolute (it may not exist yet)."""
    return os.path.abspath(os.environ.get(STATE_DIR_ENV)
                           or DEFAULT_STATE_DIR)


def default_connection() -> str:
    """The SQLAlchemy URL of the embedded SQLite database."""
    return 'sqlite:///' + os.path.join(state_dir(), DATABASE_FILE)


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register oslo.db's ``[database]`` options with the embedded default.

    Harmless when the caller registered them already (glance does).
    """
    db_options.set_defaults(conf, connection=default_connection())


def engine_options(conf: cfg.ConfigOpts) -> dict:
    """The ``[database]`` values the engine facade takes, from ``conf``."""
    register_opts(conf)
    group = conf.database
    names = ('connection', 'slave_connection', 'sqlite_synchronous',
             'mysql_sql_mode', 'mysql_wsrep_sync_wait',
             'connection_recycle_time', 'connection_debug', 'max_pool_size',
             'max_overflow', 'pool_timeout', 'max_retries', 'retry_interval',
             'connection_trace', 'connection_parameters')
    return {name: group[name] for name in names if name in group}
