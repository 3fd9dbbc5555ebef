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

"""The location map: which configured store owns a location URL.

Built once from the operator's configuration, it indexes every store's
prefixes by their canonical text.  A URL is answered by walking its own
component boundaries from the longest down and looking each one up, so the
cost depends on the URL's depth, not on the number of stores.
"""

import dataclasses
import logging
import posixpath

from oslo_config import cfg

from multistore_prefix import drivers
from multistore_prefix.drivers import base
from multistore_prefix import exceptions
from multistore_prefix import masking
from multistore_prefix import urls

LOG = logging.getLogger(__name__)

# The same definition as glance's, so either may register it first.
ENABLED_BACKENDS_OPT = cfg.DictOpt(
    'enabled_backends',
    help='Key:Value pair of store identifier and store type. In case of '
         'multiple backends should be separated using comma.')

# Reasons a URL has no store, beside those of a driver (Driver.unowned,
# rbd's missing-fsid).
INVALID_URL = 'invalid-url'
UNKNOWN_SCHEME = 'unknown-scheme'
NO_PREFIX = 'no-matching-prefix'
CONFLICT = 'conflicting-stores'
NO_STORE_IN_URL = base.NO_STORE_IN_URL
NOT_INSTALLED = base.NOT_INSTALLED
RESERVED = 'reserved-store'
# glance_store adds these file stores of Glance's own to enabled_backends
# inside glance-api (an operator may not name a store so); import and task
# data pass through them, and a live image's location never gets their name.
RESERVED_STORES = ('os_glance_staging_store', 'os_glance_tasks_store')
# After these, a store's backend lookup may still find the store.
LOOKUP_REASONS = frozenset((NO_PREFIX, NO_STORE_IN_URL))


@dataclasses.dataclass
class StoreEntry:
    """One configured store, as glance's location map holds it."""

    store: drivers.Driver
    store_entry: str
    location_class: type | None
    prefixes: tuple[drivers.Prefix, ...]

    def __getitem__(self, name):
        # glance's map is a dict of dicts; let its readers index this too.
        return getattr(self, name)


@dataclasses.dataclass(frozen=True)
class Unowned:
    """A claim whose URLs get no store, and why.

    Two or more stores claim the same prefix (a conflict), a doubted claim
    is not alone (see :class:`~multistore_prefix.drivers.base.Doubt`), or
    the claim is the directory of a reserved store.

    :ivar stores: the stores that made the claim, sorted.
    """

    stores: tuple[str, ...]
    reason: str
    detail: str

    def __str__(self):
        return ', '.join(self.stores)


def _conflict(prefix, owners) -> Unowned:
    stores = tuple(sorted(map(str, owners)))
    return Unowned(stores, CONFLICT,
                   f'stores {", ".join(stores)} all claim prefix {prefix}')


@dataclasses.dataclass(slots=True)
class _Node:
    """An index entry that needs more than "this prefix is store X".

    :ivar store: the owner of the prefix itself, or ``None``.
    :ivar open_children: (segment prefix, owner) of open prefixes whose
        parent is this key, longest first.
    :ivar choices: (required query pairs, owner): vSphere datastores.
    """

    label: str
    store: object = None
    open_children: list = dataclasses.field(default_factory=list)
    choices: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(slots=True)
class _Wild:
    """A claim on any authority: rbd with no fsid, swift multi-tenant, http."""

    prefix: drivers.Prefix
    owner: object
    authority: str | None
    path: str
    weight: int = 0

    def __post_init__(self):
        # More fixed text, more specific: that claim wins.
        self.weight = (len(self.path) + len(self.prefix.container or '')
                       + (0 if self.prefix.authority is None
                          else 1000 + len(self.prefix.authority)))

    def matches(self, canon: urls.CanonicalURL) -> bool:
        if self.authority is not None and canon.authority != self.authority:
            return False
        path = canon.path
        if self.path and not (path == self.path
                              or path.startswith(self.path + '/')):
            return False
        if self.prefix.container is not None:
            segments = canon.segments
            if len(segments) < 2:
                return False
            return segments[-2].startswith(self.prefix.container + '_')
        return True


class LocationMap:
    """Store id -> :class:`StoreEntry`, and the index that answers URLs.

    :ivar reserved: reserved store name -> its directory's prefix.
    :ivar conflicts: prefixes claimed by more than one store.
    """

    def __init__(self, stores: dict[str, StoreEntry],
                 reserved: dict[str, drivers.Prefix] | None = None):
        self.stores = dict(stores)
        self.reserved = dict(reserved or {})
        self.conflicts: list[Unowned] = []
        self._index: dict[str, object] = {}
        self._wild: dict[str, list[_Wild]] = {}
        self._aliases: dict[str, tuple[str, ...]] = {}
        # scheme -> the drivers of that scheme's type, asked about misses.
        self._drivers: dict[str, list[drivers.Driver]] = {}
        self._build()

    @classmethod
    def from_config(cls, conf: cfg.ConfigOpts) -> 'LocationMap':
        """Build the map from an operator's configuration.

        Registers ``[DEFAULT]/enabled_backends`` and each store's
        glance_store options on ``conf`` (harmless if the caller did
        already), and loads each store's driver.

        :raises NoBackendsConfigured: ``enabled_backends`` is empty.
        :raises StoreConfigError: a store's type or options are bad.
        """
        register_opts(conf)
        backends = conf.enabled_backends or {}
        if not backends:
            raise exceptions.NoBackendsConfigured()
        stores = {}
        for store_id, store_type in backends.items():
            store_id, store_type = store_id.strip(), store_type.strip()
            if store_id in RESERVED_STORES:
                continue  # added by glance_store inside glance-api
            driver = drivers.load_driver(conf, store_id, store_type)
            stores[store_id] = StoreEntry(
                store=driver, store_entry=store_type,
                location_class=driver.location_class,
                prefixes=driver.prefixes)
        return cls(stores, {name: _reserved_prefix(conf, name)
                            for name in RESERVED_STORES})

    def _build(self):
        claims: dict[tuple, list[tuple[str, drivers.Prefix]]] = {}
        for store_id, entry in sorted(self.stores.items()):
            schemes = tuple(s.lower() for s in entry.store.schemes)
            for scheme in schemes:
                self._aliases[scheme] = schemes
                self._drivers.setdefault(scheme, []).append(entry.store)
            for prefix in entry.prefixes:
                claims.setdefault(self._claim_key(prefix), []).append(
                    (store_id, prefix))
        if 'file' in self._aliases:  # else no file URL resolves anyway
            for name, prefix in self.reserved.items():
                claims.setdefault(self._claim_key(prefix), []).append(
                    (name, prefix))
        for key, owners in claims.items():
            store_ids = tuple(sorted({s for s, _ in owners}))
            prefix = owners[0][1]
            if len(store_ids) > 1:
                owner = _conflict(prefix, store_ids)
                self.conflicts.append(owner)
                LOG.warning('Configuration conflict: %s; their URLs stay '
                            'unresolved until one of them changes',
                            owner.detail)
            elif store_ids[0] in self.reserved:
                owner = Unowned(store_ids, RESERVED, (
                    f'under the directory of Glance\'s reserved store '
                    f'{store_ids[0]} (import and task data): no image\'s '
                    f'store; left as it is'))
            else:
                owner = store_ids[0]
                if prefix.doubt is not None:
                    owner = self._doubted(key, owner, prefix.doubt, claims)
            self._add(key, prefix, owner)

    @staticmethod
    def _doubted(key, owner, doubt, claims):
        """``owner``, or an :class:`Unowned` when its claim is not alone."""
        family, _, path = key[:3]
        others = sorted({store_id for other, owners in claims.items()
                         if other[0] == family and other[2] == path
                         and other != key for store_id, _ in owners}
                        - {owner})
        if not others:
            return owner
        doubted = Unowned((owner,), doubt.reason, doubt.detail(others))
        LOG.warning('Configuration: %s; such URLs stay unresolved (%s)',
                    doubted.detail, doubted.reason)
        return doubted

    def _claim_key(self, prefix):
        # What makes two claims the same claim, in canonical form.
        scheme = prefix.scheme.lower()
        family = self._family(scheme)
        authority = prefix.authority
        canon = urls.canonicalize(
            f'{scheme}://{authority or ""}{prefix.path}')
        if authority is not None:
            authority = canon.authority
        return (family, authority, canon.path, prefix.open,
                tuple(sorted(prefix.query)), prefix.container)

    def _family(self, scheme):
        aliases = self._aliases.get(scheme)
        return aliases[0] if aliases else scheme

    def _add(self, key, prefix, owner):
        family, authority, path, is_open, query, container = key
        aliases = self._aliases.get(prefix.scheme.lower(),
                                    (prefix.scheme.lower(),))
        if authority is None or container is not None:
            self._wild.setdefault(family, []).append(
                _Wild(prefix, owner, authority, path))
            self._wild[family].sort(key=lambda w: -w.weight)
            return
        segment = ''
        if is_open:
            path, _, segment = path.rpartition('/')
        for scheme in aliases:
            index_key = f'{scheme}://{authority}{path}'
            if not is_open and not query:
                node = self._index.get(index_key)
                if node is None:
                    self._index[index_key] = owner
                    continue
            node = self._node(index_key)
            if is_open:
                node.open_children.append((segment, owner))
                node.open_children.sort(key=lambda c: -len(c[0]))
            elif query:
                node.choices.append((query, owner))
            else:
                node.store = owner

    def _node(self, index_key):
        current = self._index.get(index_key)
        if isinstance(current, _Node):
            return current
        node = self._index[index_key] = _Node(index_key, current)
        return node

    def resolve(self, url: str) -> str | None:
        """The id of the store that owns ``url``, or ``None``."""
        # Fast path, inlined for speed: walk the URL as it is.  Index keys
        # are canonical, so a hit on one of the URL's own component prefixes
        # proves that the scheme and authority are canonical too.  What
        # could still change the answer lies to the right of the hit:
        # escapes, dot segments, a query or fragment, credentials (s3 and
        # swift keys may hold '/', so the authority can sit right of a
        # slash) and empty segments (the walk stops at two adjacent
        # slashes); they, and every miss, take the full path.
        if (url.__class__ is str and '%' not in url and '/.' not in url
                and '?' not in url and '#' not in url and '@' not in url):
            index = self._index
            pos = len(url)
            while pos > 0:
                key = url[:pos]
                if key in index:
                    found = index[key]
                    if found.__class__ is _Node:
                        found = self._match_node(found, url, pos, None)
                    if found.__class__ is str:
                        return found
                    break
                shorter = url.rfind('/', 0, pos)
                if shorter == pos - 1:
                    break
                pos = shorter
        return self.explain(url).store

    def explain(self, url: str) -> base.Resolution:
        """Like :meth:`resolve`, with the reason when there is no store."""
        try:
            canon = urls.canonicalize(url)
        except urls.InvalidURL as exc:
            return base.Resolution(None, INVALID_URL, str(exc))
        if canon.scheme not in self._aliases:
            return base.Resolution(
                None, UNKNOWN_SCHEME,
                f'no configured store handles scheme {canon.scheme!r}')
        key = canon.key
        found = self._walk(key, len(canon.scheme) + 3 + len(canon.authority),
                           canon)
        if found is _MISS:
            found = self._match_wild(canon)
        if found is _MISS:
            for driver in self._drivers[canon.scheme]:
                unowned = driver.unowned(canon)
                if unowned is not None:
                    return base.Resolution(None, *unowned)
            return base.Resolution(None, NO_PREFIX, f'no store prefix owns '
                                   f'{masking.mask_url(url)}')
        if found.__class__ is str:
            return base.Resolution(found)
        return base.Resolution(None, found.reason, found.detail)

    def _walk(self, key, authority_end, canon):
        # Look key up at each component boundary, longest first.
        index = self._index
        pos = len(key)
        while True:
            found = index.get(key[:pos])
            if found is not None:
                if found.__class__ is not _Node:
                    return found
                found = self._match_node(found, key, pos, canon)
                if found is not _MISS:
                    return found
            if pos <= authority_end:
                return _MISS
            pos = key.rfind('/', authority_end, pos)
            if pos < 0:
                pos = authority_end

    def _match_node(self, node, key, pos, canon):
        if node.open_children and pos < len(key):
            end = key.find('/', pos + 1)
            segment = key[pos + 1:] if end < 0 else key[pos + 1:end]
            for text, owner in node.open_children:
                if segment.startswith(text):
                    return owner
        if node.choices:
            if canon is None:
                canon = urls.canonicalize(key)
            params = canon.query_params()
            owners = {owner for required, owner in node.choices
                      if all(params.get(k) == v for k, v in required)}
            if len(owners) == 1:
                return owners.pop()
            if len(owners) > 1:
                return _conflict(node.label, owners)
        return node.store if node.store is not None else _MISS

    def _match_wild(self, canon):
        claims = self._wild.get(self._family(canon.scheme), ())
        best = None
        for claim in claims:
            if best is not None and claim.weight < best.weight:
                break
            if claim.matches(canon):
                if best is None:
                    best = claim
                elif best.owner != claim.owner:
                    return _conflict(best.prefix, (best.owner, claim.owner))
        return _MISS if best is None else best.owner


_MISS = object()


def _reserved_prefix(conf: cfg.ConfigOpts, name: str) -> drivers.Prefix:
    # A reserved store's directory, as glance_store configures it.
    try:
        conf.register_opt(cfg.StrOpt(
            'filesystem_store_datadir', default=f'/var/lib/glance/{name}',
            help=f'Directory of Glance\'s reserved store {name}.'),
            group=name)
    except cfg.DuplicateOptError:
        pass  # glance_store's own definition, inside glance-api
    path = posixpath.normpath(conf[name].filesystem_store_datadir or '/')
    return drivers.Prefix('file', '', path)


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register ``[DEFAULT]/enabled_backends``, tolerating glance's own."""
    try:
        conf.register_opt(ENABLED_BACKENDS_OPT)
    except cfg.DuplicateOptError:
        pass
