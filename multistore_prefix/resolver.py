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
operator renamed it).  A location that names an enabled store is left as it
is, unless the caller asks to fix *certainly wrong* stores (see
:meth:`Resolver.wrong_store`).
"""

import collections.abc
import dataclasses
from typing import Iterable

from multistore_prefix import location_map as lmap
from multistore_prefix import urls

#: Reasons a location is left unchanged, besides the location map's own.
BAD_METADATA = 'bad-metadata'
BAD_LOCATION = 'bad-location'


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
    :ivar fix_wrong_stores: also change a location that names an enabled
        store which certainly does not hold it (:meth:`wrong_store`).
    """

    def __init__(self, location_map: lmap.LocationMap, lookups=None,
                 fix_wrong_stores: bool = False):
        self.location_map = location_map
        self.lookups = lookups or None
        self.fix_wrong_stores = fix_wrong_stores
        # store id -> a map of that store alone (built on first need).
        self._own_maps: dict[str, lmap.LocationMap] = {}

    def needs_store(self, metadata) -> bool:
        """Whether metadata lacks a store, or names one not enabled."""
        store = metadata.get('store')
        return (not isinstance(store, str) or not store
                or store not in self.location_map.stores)

    def wrong_store(self, store: str, url) -> str | None:
        """The store that owns ``url`` when ``store`` certainly does not.

        Glance's first-match rule gives ``.../images2/x`` to the store of
        ``.../images``.  A name is called wrong only when that is certain:
        another store owns the URL and none of the named store's own
        prefixes covers it (nested directories, or a URL no store owns,
        keep their name).

        :returns: the owner, or ``None`` when the name may stand.
        """
        owner = (self.location_map.resolve(url) if isinstance(url, str)
                 else None)
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
        if not isinstance(metadata, collections.abc.Mapping):
            return Unresolved(
                index, urls.mask_url(url), BAD_METADATA,
                f'metadata is {type(metadata).__name__}, not an object')
        if not self.needs_store(metadata):
            if not self.fix_wrong_stores:
                return None
            owner = self.wrong_store(metadata['store'], url)
            return (None if owner is None
                    else LocationChange(index, url, owner, metadata['store']))
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

    def may_change(self, locations: Iterable) -> bool:
        """Whether :meth:`plan` may change one of ``locations``.

        Offline: no backend is asked; a URL that only a backend could
        place counts as one that may change.
        """
        try:
            items = list(locations or ())
        except TypeError:
            return False
        for index, location in enumerate(items):
            result = self.resolve_location(location, index)
            if isinstance(result, LocationChange):
                return True
            if (isinstance(result, Unresolved) and self.lookups is not None
                    and result.reason == lmap.NO_PREFIX
                    and self.lookups.wants(location['url'])):
                return True
        return False

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
        asked = [u for u in plan.unresolved if u.reason == lmap.NO_PREFIX
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
