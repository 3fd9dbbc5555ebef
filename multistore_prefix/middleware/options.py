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

"""The options of the glance-api filter: ``[multistore_prefix]``.

Other options of the group belong to the modules that read them.
"""

from oslo_config import cfg
from oslo_db import options as db_options

GROUP = 'multistore_prefix'

FILTER_OPTS = [
    cfg.BoolOpt(
        'fix_wrong_stores', default=True,
        help='glance-api filter: also correct a location that names an '
             'enabled store whose own directories or prefixes do not hold '
             'its URL while another store\'s do (Glance\'s first-match '
             'rule gives ".../images2/x" to the store of ".../images", and '
             'labels so every location added later), as "multistore-prefix '
             'backfill --fix-wrong-stores" does, on every request naming '
             'the image and again after a request that may add locations.  '
             'On by default: a wrong label makes "DELETE /v2/stores/'
             '{store}/{image}" delete the data of the location that only '
             'carries it.  A name is called wrong only when that is '
             'certain: nested directories and URLs that no store owns keep '
             'their name.'),
    cfg.BoolOpt(
        'backend_lookups', default=True,
        help='glance-api filter: ask the store\'s backend about legacy URLs '
             'that no prefix owns (cinder://<volume id>: Cinder says the '
             'volume type, as Glance itself does on GET).  False: resolve '
             'by prefix only, never touch the network.'),
    cfg.FloatOpt(
        'backend_lookup_timeout', default=3.0, min=0.1,
        help='glance-api filter: seconds a store\'s backend has to answer '
             'about one URL, retries included.  Keep it below '
             'request_timeout.'),
    cfg.FloatOpt(
        'request_timeout', default=5.0, min=0.1,
        help='glance-api filter: seconds it may spend on one request before '
             'it hands the request to Glance unchanged (one warning line '
             'says so); the work it gave up on then writes nothing '
             '(unless its write was already waiting for a lock), and '
             'Glance\'s own rule runs for that request.  At most a few '
             'resolutions run at once per process; requests beyond them '
             'pass through untouched.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(FILTER_OPTS, group=GROUP)


def register_database_opts(conf: cfg.ConfigOpts) -> None:
    """oslo.db's ``[database]`` options, as Glance registers them.

    Never the command's embedded default: the filter writes Glance's rows.
    """
    conf.register_opts(db_options.database_opts, group='database')


def list_opts():
    return [(GROUP, FILTER_OPTS)]
