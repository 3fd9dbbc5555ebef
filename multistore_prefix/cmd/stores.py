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

"""``multistore-prefix stores``: the configured stores and their prefixes."""

from cliff import columns
from cliff import lister

from multistore_prefix import urls


class PrefixesColumn(columns.FormattableColumn):
    """A store's prefixes: one a line in a table, a list in json/yaml."""

    def human_readable(self) -> str:
        return '\n'.join(self._value)


class Stores(lister.Lister):
    """List the configured stores and the location URL prefixes each owns.

    One row per store of [DEFAULT]/enabled_backends, sorted by store id:
    its type (the part after the colon) and the location URL prefixes
    computed from its option group.  A prefix owns the URLs below it on a
    path-component boundary; "*" marks a part that matches anything (an rbd
    store without fsid, the http store, a multi-tenant swift store).  Two
    stores that claim the same prefix are reported as a warning on stderr;
    such URLs stay unresolved.  Credentials are never shown.
    """

    def take_action(self, parsed_args):
        stores = self.app.location_map.stores
        rows = []
        for store_id in sorted(stores):
            entry = stores[store_id]
            rows.append((
                store_id,
                entry.store_entry,
                PrefixesColumn([urls.mask_url(str(prefix))
                                for prefix in entry.prefixes])))
        return ('store', 'type', 'prefixes'), rows
