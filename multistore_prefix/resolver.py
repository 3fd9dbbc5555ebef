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

"""The resolver's rules about a location's ``store`` value.

A location needs a store when its metadata has no ``store`` key, or names
a store that is not enabled any more (an operator renamed it).  A
``store`` that is not a name at all (a number, a list, ``null``, ``""``)
is someone's data, not a legacy location: it is reported and left alone,
unless the caller asks to replace such values.  A location that names an
enabled store is left as it is, unless the caller asks to fix *certainly
wrong* stores (see :meth:`Resolver.wrong_store`).  The row rules that
apply them, for every entrance, are :mod:`multistore_prefix.deciding`'s.
"""

from multistore_prefix import location_map as lmap
from multistore_prefix import metadata as metadata_text

#: Reasons a location is left unchanged, besides the location map's own.
BAD_METADATA = 'bad-metadata'
BAD_LOCATION = 'bad-location'
INVALID_STORE = 'invalid-store-value'
#: Train's key for the store, which Glance's data migration renames.
BACKEND_KEY = 'backend-key'
BACKEND_KEY_DETAIL = (
    'meta_data has Train\'s "backend" key and no "store": run Glance\'s '
    'data migration ("glance-manage db migrate" renames it to "store"), '
    'then this again; left as it is')

#: What a location's ``store`` says.
MISSING = 'missing'
STALE = 'stale'
INVALID = 'invalid'
ENABLED = 'enabled'


def store_state(store, enabled) -> str:
    """What a ``store`` value read from metadata means.

    ``store`` may be :data:`multistore_prefix.metadata.MISSING`;
    :data:`INVALID` is a value that is not a non-empty string.
    """
    if store is metadata_text.MISSING:
        return MISSING
    if store.__class__ is not str or not store:
        return INVALID
    return ENABLED if store in enabled else STALE


def glance_replaces(store) -> bool:
    """Whether Glance's own rule writes a store over this ``store`` value.

    Glance (``update_store_in_locations``) replaces a value that is false
    or not among ``enabled_backends``; one it cannot look up there (a
    non-empty list or object) fails its request instead.
    """
    if not store:
        return True
    try:
        hash(store)
    except TypeError:
        return False
    return True


def invalid_store_detail(store, glance_rules: bool = False) -> str:
    """Why an invalid ``store`` value is left as it is."""
    if glance_rules:
        return (f'store is {_json_kind(store)}, not a store name, and '
                f'Glance\'s own rule fails on it too: left as it is')
    return (f'store is {_json_kind(store)}, not a store name: left as it '
            f'is (someone\'s data); --replace-invalid-stores gives it the '
            f'store that owns the URL')


def _json_kind(value) -> str:
    if value is None:
        return 'null'
    if value == '' and isinstance(value, str):
        return 'an empty string'
    kinds = {bool: 'a boolean', int: 'a number', float: 'a number',
             list: 'a list', dict: 'an object'}
    return kinds.get(type(value), type(value).__name__)


class Resolver:
    """The store rules for one set of stores.

    ``replace_invalid_stores``: give a store also to locations whose
    ``store`` is not a name (see :func:`store_state`).
    """

    def __init__(self, location_map: lmap.LocationMap, *,
                 replace_invalid_stores: bool = False):
        self.location_map = location_map
        self.replace_invalid_stores = replace_invalid_stores
        # store id -> a map of that store alone (built on first need).
        self._own_maps: dict[str, lmap.LocationMap] = {}

    def wrong_store(self, store: str, url) -> str | None:
        """The store that owns ``url`` when ``store`` certainly does not.

        Glance's first-match rule gives ``.../images2/x`` to the store of
        ``.../images``.  A name is called wrong only when that is certain:
        another store owns the URL and none of the named store's own
        prefixes covers it (nested directories, or a URL no store owns,
        keep their name).

        :returns: the owner, or ``None`` when the name may stand.
        """
        if url.__class__ is not str:
            return None
        owner = self.location_map.resolve(url)
        if owner is None or owner == store or self._covers(store, url):
            return None
        return owner

    def _covers(self, store: str, url: str) -> bool:
        own = self._own_maps.get(store)
        if own is None:
            own = self._own_maps[store] = lmap.LocationMap(
                {store: self.location_map.stores[store]})
        return own.resolve(url) == store
