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

from multistore_prefix.cmd import helptext
from multistore_prefix import urls

#: Formats whose cells are plain text: a list becomes one string there.
TEXT_FORMATS = ('csv', 'value')


class PrefixesColumn(columns.FormattableColumn):
    """A store's prefixes: one a line in a table, a list in json/yaml."""

    def human_readable(self) -> str:
        return '\n'.join(self._value)


def joined(prefixes: list[str]) -> str:
    """The prefixes as one cell of csv or value output, space-separated.

    A URL holds no space of its own; a space in a directory name is
    written ``%20``, so that splitting the cell on spaces is exact.
    """
    return ' '.join(prefix.replace(' ', '%20') for prefix in prefixes)


class Stores(helptext.HelpWithExitCodes, lister.Lister):
    """List the configured stores and the location URL prefixes each owns.

    One row per store of [DEFAULT]/enabled_backends, sorted by store id:
    its type (the part after the colon) and the location URL prefixes
    computed from its option group.  A prefix owns the URLs below it on a
    path-component boundary; "*" marks a part that matches anything (an rbd
    store without fsid, the http store, a multi-tenant swift store).  Two
    stores that claim the same prefix are reported as a warning on stderr;
    such URLs stay unresolved.  Credentials are never shown.

    The prefixes column is one prefix a line in a table, a list in json
    and yaml, and one space-separated string in csv and value (a space
    inside a directory name is written %20).
    """

    def take_action(self, parsed_args):
        stores = self.app.location_map.stores
        as_text = parsed_args.formatter in TEXT_FORMATS
        rows = []
        for store_id in sorted(stores):
            entry = stores[store_id]
            prefixes = [urls.mask_url(str(prefix))
                        for prefix in entry.prefixes]
            rows.append((
                store_id,
                entry.store_entry,
                joined(prefixes) if as_text else PrefixesColumn(prefixes)))
        return ('store', 'type', 'prefixes'), rows
