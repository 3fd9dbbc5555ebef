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

"""Glance's own rule, for comparison: the first ``startswith`` wins.

glance/common/store_utils.py parses the URL's scheme, walks that scheme's
stores in configuration order and takes the first whose ``url_prefix`` the
URL starts with.  glance_store gives each store one ``url_prefix``: a file
store's is its highest-priority directory only.  The demo and the
benchmarks run this beside :class:`~multistore_prefix.location_map.
LocationMap` to count what it gets wrong; nothing else uses it.
"""

import urllib.parse

from multistore_prefix import location_map as lmap


class GlanceFirstMatch:
    """Glance's store-from-URL rule over the stores of a location map."""

    def __init__(self, location_map: lmap.LocationMap):
        # scheme -> {store id: url_prefix}, in configuration order
        self.by_scheme: dict[str, dict[str, str]] = {}
        for store_id, entry in location_map.stores.items():
            if not entry.prefixes:
                continue
            url_prefix = str(entry.prefixes[0])
            if entry.store_entry == 'file':
                best = entry.store.datadirs(by_priority=True)[0]
                url_prefix = f'file://{best}'
            for scheme in entry.store.schemes:
                self.by_scheme.setdefault(scheme, {})[store_id] = url_prefix

    def resolve(self, uri: str) -> str | None:
        """The store glance would record for ``uri``, or ``None``."""
        stores = self.by_scheme.get(urllib.parse.urlparse(uri).scheme)
        for store_id, url_prefix in (stores or {}).items():
            if uri.startswith(url_prefix):
                return store_id
        return None
