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

"""The resolver: which legacy locations get which store.

Pure: it reads locations and returns the changes to make; it never writes
and never raises on bad input.  A location needs a store when its metadata
has no ``store`` key, or names a store that is not enabled any more (an
operator renamed it).  A ``store`` that is not a name at all (a number, a
list, ``null``, ``""``) is someone's data, not a legacy location: it is
reported and left alone, unless the caller asks to replace such values.  A
location that names an enabled store is left as it is, unless the caller
asks to fix *certainly wrong* stores (see :meth:`Resolver.wrong_store`).

Just past 300 lines: each rule above is a few lines of one class, and the
three entrances (``repo.get``, the glance-api filter, ``backfill``) rely
on them together.
"""

import collections.abc
import dataclasses
from typing import Iterable

from multistore_prefix import location_map as lmap
from multistore_prefix import metadata as metadata_text
from multistore_prefix import urls

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

#: What a location's ``store`` says (see :func:`store_state`).
MISSING = 'missing'
STALE = 'stale'
INVALID = 'invalid'
ENABLED = 'enabled'


def store_state(store, enabled) -> str:
    """What a ``store`` value read from metadata means.

    :param store: the value, or :data:`multistore_prefix.metadata.MISSING`.
    :param enabled: the enabled store ids (a container).
    :returns: :data:`MISSING` (a legacy location), :data:`STALE` (a name
        no longer enabled), :data:`INVALID` (not a non-empty string) or
        :data:`ENABLED`.
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


@dataclasses.dataclass(frozen=True)
class LocationChange:
    """Give one location its store.

    :ivar index: the location's position in the image's location list.
    :ivar url: the location URL, as stored (mask it before printing).
    :ivar store: the store to record in its metadata.
    :ivar previous_store: the stale ``store`` it had, if any.
    :ivar new_url: the URL to record instead, when the store's backend
        gave one (``cinder://<volume>`` -> ``cinder://<store>/<volume>``).
    """

    index: int
    url: str
    store: str
    previous_store: str | None = None
    new_url: str | None = None

    @property
    def metadata_update(self) -> dict:
        """The keys to set in the location's metadata; nothing else."""
        return {'store': self.store}


@dataclasses.dataclass(frozen=True)
class Unresolved:
    """A location that needs a store and cannot get one.

    :ivar index: the location's position in the image's location list.
    :ivar url: the location URL with credentials masked.
    :ivar reason: a short code (``no-matching-prefix``, ``invalid-url``...).
    :ivar detail: a sentence for the operator.
    """

    index: int
    url: str
    reason: str
    detail: str


@dataclasses.dataclass
class Plan:
    """What the resolver found for a list of locations.

    :ivar changes: locations to give a store.
    :ivar unresolved: locations that need one and cannot get one.
    :ivar already_set: how many already name an enabled store.
    """

    changes: list[LocationChange] = dataclasses.field(default_factory=list)
    unresolved: list[Unresolved] = dataclasses.field(default_factory=list)
    already_set: int = 0


class Resolver:
    """Attaches store ids to legacy locations using a location map.

    :ivar location_map: the :class:`~multistore_prefix.location_map.
        LocationMap` that answers URLs.
    :ivar lookups: the stores' backend lookups, asked about URLs that no
        prefix owns, or ``None`` (prefixes only: no network at all).
    :ivar replace_invalid_stores: give a store also to locations whose
        ``store`` is not a name (see :func:`store_state`).
    :ivar fix_wrong_stores: also change a location that names an enabled
        store which certainly does not hold it (:meth:`wrong_store`).
    """

    def __init__(self, location_map: lmap.LocationMap, lookups=None, *,
                 replace_invalid_stores: bool = False,
                 fix_wrong_stores: bool = False):
        self.location_map = location_map
        self.lookups = lookups or None
        self.replace_invalid_stores = replace_invalid_stores
        self.fix_wrong_stores = fix_wrong_stores
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
        """Whether one of ``store``'s own prefixes covers ``url``."""
        own = self._own_maps.get(store)
        if own is None:
            own = self._own_maps[store] = lmap.LocationMap(
                {store: self.location_map.stores[store]})
        return own.resolve(url) == store

    def state(self, metadata) -> str:
        """:func:`store_state` of a metadata mapping."""
        return store_state(metadata.get('store', metadata_text.MISSING),
                           self.location_map.stores)

    def needs_store(self, metadata) -> bool:
        """Whether a store is to be given: none, or one not enabled."""
        state = self.state(metadata)
        return state in (MISSING, STALE) or (
            state == INVALID and self.replace_invalid_stores)

    def resolve_location(self, location,
                         index: int = 0) -> LocationChange | Unresolved | None:
        """The change for one location, why it has none, or ``None``.

        ``None`` means the location already names an enabled store (the
        right one, with ``fix_wrong_stores``).
        """
        if not isinstance(location, collections.abc.Mapping):
            return Unresolved(index, urls.mask_url(location), BAD_LOCATION,
                              'location is not a mapping')
        url = location.get('url')
        metadata = location.get('metadata')
        if isinstance(metadata, metadata_text.Bad):
            return Unresolved(index, urls.mask_url(url), BAD_METADATA,
                              str(metadata))
        if not isinstance(metadata, collections.abc.Mapping):
            return Unresolved(
                index, urls.mask_url(url), BAD_METADATA,
                f'metadata is {type(metadata).__name__}, not an object')
        state = self.state(metadata)
        if state == ENABLED:
            if not self.fix_wrong_stores:
                return None
            owner = self.wrong_store(metadata['store'], url)
            return (None if owner is None
                    else LocationChange(index, url, owner, metadata['store']))
        if state == INVALID and not self.replace_invalid_stores:
            return Unresolved(index, urls.mask_url(url), INVALID_STORE,
                              invalid_store_detail(metadata['store']))
        if state == MISSING and 'backend' in metadata:
            return Unresolved(index, urls.mask_url(url), BACKEND_KEY,
                              BACKEND_KEY_DETAIL)
        if isinstance(url, bytes):
            return Unresolved(index, urls.mask_url(url), BAD_LOCATION,
                              'the URL is not valid UTF-8')
        if not isinstance(url, str):
            return Unresolved(index, urls.mask_url(url), BAD_LOCATION,
                              'location has no URL string')
        store = self.location_map.resolve(url)
        if store is None:
            why = self.location_map.explain(url)
            return Unresolved(index, urls.mask_url(url),
                              why.reason or lmap.NO_PREFIX, why.detail)
        previous = metadata.get('store')
        return LocationChange(index, url, store,
                              previous if isinstance(previous, str)
                              and previous else None)

    def plan(self, locations: Iterable) -> Plan:
        """Resolve every location of an image."""
        plan = Plan()
        try:
            items = list(locations or ())
        except TypeError:
            plan.unresolved.append(Unresolved(
                0, urls.mask_url(locations), BAD_LOCATION,
                'locations is not a list'))
            return plan
        for index, location in enumerate(items):
            result = self.resolve_location(location, index)
            if result is None:
                plan.already_set += 1
            elif isinstance(result, LocationChange):
                plan.changes.append(result)
            else:
                plan.unresolved.append(result)
        if self.lookups is not None and plan.unresolved:
            self._ask_backends(items, plan)
        return plan

    def _ask_backends(self, items, plan: Plan) -> None:
        """Let the stores' backends answer what no prefix owns."""
        asked = [u for u in plan.unresolved
                 if u.reason in lmap.LOOKUP_REASONS
                 and self.lookups.wants(items[u.index]['url'])]
        if not asked:
            return
        answers = self.lookups.resolve_many(
            items[u.index]['url'] for u in asked)
        for unresolved in asked:
            location = items[unresolved.index]
            answer = answers[location['url']]
            plan.unresolved.remove(unresolved)
            if answer.store is None:
                plan.unresolved.append(Unresolved(
                    unresolved.index, unresolved.url, answer.reason,
                    answer.detail))
                continue
            previous = location['metadata'].get('store')
            plan.changes.append(LocationChange(
                unresolved.index, location['url'], answer.store,
                previous if isinstance(previous, str) and previous
                else None, new_url=answer.url))
        plan.changes.sort(key=lambda c: c.index)
        plan.unresolved.sort(key=lambda u: u.index)
