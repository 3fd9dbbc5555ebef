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


"""The gateway: the one place that stacks the layers, top to bottom::

    resolution.ImageRepoProxy     stores for legacy locations on get
      distinction.ImageRepoProxy  snapshot on read, save the difference
        repo.ImageRepo            rows of Glance's tables, compare-and-swap
"""

from typing import Any

from oslo_config import cfg

from multistore_prefix import crypt
from multistore_prefix.db import engine as db_engine
from multistore_prefix import deciding
from multistore_prefix.domain import distinction
from multistore_prefix.domain import image as image_mod
from multistore_prefix.domain import repo as repo_mod
from multistore_prefix.domain import resolution
from multistore_prefix import location_map as lmap
from multistore_prefix import lookups as lookups_mod
from multistore_prefix import resolver as resolver_mod


class Gateway:
    """Hands out image repositories and factories for one configuration.

    ``conf`` is the operator's: ``[database]`` and, for resolve on GET,
    ``[DEFAULT]/enabled_backends`` with each store's group.
    """

    def __init__(self, conf: cfg.ConfigOpts,
                 location_map: lmap.LocationMap | None = None,
                 database: db_engine.Database | None = None,
                 backend_lookups: bool = True,
                 fix_wrong_stores: bool = False, *,
                 lookup_timeout: float | None = None,
                 one_connection: bool = False):
        """Set up the layers' shared parts.

        :param location_map: by default built from ``conf`` when it enables
            backends, else there is no resolve on GET.
        :param backend_lookups: let stores whose backend can tell (cinder)
            resolve the legacy URLs no prefix owns; ``False``: prefixes
            only, no network.
        :param fix_wrong_stores: on get, also correct locations that name
            an enabled store which certainly does not hold them
            (:meth:`~multistore_prefix.resolver.Resolver.wrong_store`).
        :param one_connection: a pool of one database connection, no
            overflow (inside glance-api, beside Glance's own pool).
        """
        self.conf = conf
        self.database = database or db_engine.Database.from_config(
            conf, **(db_engine.ONE_CONNECTION if one_connection else {}))
        if location_map is None:
            lmap.register_opts(conf)
            if conf.enabled_backends:
                location_map = lmap.LocationMap.from_config(conf)
        self.location_map = location_map
        self.fix_wrong_stores = fix_wrong_stores
        self.lookups = None
        if location_map is not None and backend_lookups:
            self.lookups = lookups_mod.BackendLookups.from_location_map(
                location_map)
            if lookup_timeout is not None:
                self.lookups.timeout = lookup_timeout
        self._deciders: dict[tuple, deciding.Decider] = {}

    def get_repo(self, context: Any = None):
        """The image repository: db, distinction layer, resolver."""
        repo = repo_mod.ImageRepo(self.database, context)
        repo = distinction.ImageRepoProxy(repo)
        if self.location_map is not None:
            repo = resolution.ImageRepoProxy(repo, self.get_decider())
        return repo

    def get_decider(self, glance_rules: bool = False,
                    strip_s3_credentials: bool = False) -> deciding.Decider:
        """The backfill's row rules for these stores, built once per flags.

        The flags are :class:`~multistore_prefix.deciding.Decider`'s.
        """
        key = (glance_rules, strip_s3_credentials)
        decider = self._deciders.get(key)
        if decider is None:
            decider = self._deciders[key] = deciding.Decider(
                resolver_mod.Resolver(self.location_map),
                fix_wrong_stores=self.fix_wrong_stores,
                lookups=self.lookups,
                text_limit=repo_mod.ImageRepo(self.database).metadata_limit,
                glance_rules=glance_rules,
                strip_s3_credentials=strip_s3_credentials,
                cipher=crypt.from_config(self.conf))
        return decider

    def get_image_factory(self, context: Any = None):
        return distinction.ImageFactoryProxy(image_mod.ImageFactory())

    def close(self) -> None:
        self.database.dispose()
