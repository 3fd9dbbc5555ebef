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

"""The store driver interface and the prefix a driver claims.

A driver is short: it reads its store's option group and returns its
prefixes.  Option registration, the glance_store class, its location class
and its scheme list are found here once, from the ``glance_store.drivers``
entry point that the driver names.
"""

import abc
import dataclasses
import importlib
import logging

from glance_store import driver as glance_store_driver
from oslo_config import cfg
from stevedore import driver as sd_driver

from multistore_prefix import exceptions
from multistore_prefix import urls

LOG = logging.getLogger(__name__)

GLANCE_STORE_NAMESPACE = 'glance_store.drivers'
# glance_store reads an option a store's group leaves unset from here.
SHARED_GROUP = 'backend_defaults'


@dataclasses.dataclass(frozen=True)
class Doubt:
    """Why a claim may be a guess, and when it stops being taken.

    A claim with a doubt (an rbd store whose cluster fsid is unknown claims
    its pool under any fsid) owns a URL only while no other store claims
    the same path under another authority; otherwise the URLs it would
    own stay unresolved with ``reason``.

    :ivar reason: the reason code of those URLs.
    :ivar missing: what the store lacks, a sentence naming the store and
        where it was looked for.
    :ivar shared: what the other stores share with it (``pool 'images'``).
    :ivar fix: what the operator should do.
    """

    reason: str
    missing: str
    shared: str
    fix: str

    def detail(self, others: list[str]) -> str:
        """The reason's sentence, given the other stores' ids."""
        return (f'{self.missing}, and stores {", ".join(others)} use '
                f'{self.shared} too, so it cannot tell whose this URL is; '
                f'{self.fix}')


@dataclasses.dataclass(frozen=True)
class Prefix:
    """A claim a store makes on location URLs.

    The common claim is a URL prefix that owns every URL below it on a path
    component boundary.  A few store types need more, and say so here rather
    than in special cases elsewhere.

    :ivar scheme: one of the store type's schemes; every alias of it matches.
    :ivar authority: ``host[:port]`` (or rbd fsid, swift reference, cinder
        store id); ``None`` claims any authority.
    :ivar path: the path prefix, from ``/``; ``''`` claims the whole
        authority.
    :ivar open: the last path segment is itself a prefix of the URL's
        segment (swift's ``glance_`` owns container ``glance_0a1``).
    :ivar query: query parameters that must also match, as (name, value)
        pairs: vSphere's ``dcPath`` and ``dsName``.
    :ivar container: with ``authority`` and ``path`` left open, the
        container segment (the one before the object) must start with
        ``container + '_'``: swift multi-tenant stores.
    :ivar doubt: with ``authority`` left open, the claim stands only where
        no other store claims ``path`` (see :class:`Doubt`).
    """

    scheme: str
    authority: str | None
    path: str = ''
    open: bool = False
    query: tuple[tuple[str, str], ...] = ()
    container: str | None = None
    doubt: Doubt | None = None

    def __str__(self) -> str:
        """The claim as an operator reads it, ``*`` where it is open."""
        authority = '*' if self.authority is None else self.authority
        text = f'{self.scheme}://{authority}{self.path}'
        if self.container is not None:
            text += f'/.../{self.container}_*'
        elif self.open:
            text += '*'
        if self.query:
            text += '?' + '&'.join(f'{k}={v}' for k, v in self.query)
        return text


#: LookupAnswer reasons: the backend has no such object, refused the
#: question, could not be reached in time, or holds it elsewhere.
NOT_FOUND = 'backend-not-found'
FORBIDDEN = 'backend-forbidden'
UNAVAILABLE = 'backend-unavailable'
ELSEWHERE = 'backend-elsewhere'
#: Reasons a driver gives for a URL form of its type that names no store
#: (see :meth:`Driver.unowned`): glance_store's single-store forms
#: (``rbd://<image>``; ``cinder://<volume id>``, which only the backend
#: can tell and was not asked); or only the store's backend could tell,
#: and the packages to ask it are not installed.
NO_STORE_IN_URL = 'no-store-in-url'
NOT_INSTALLED = 'backend-not-installed'


@dataclasses.dataclass(frozen=True)
class LookupAnswer:
    """What a store's backend says about one URL.

    :ivar owned: ``True`` the store holds it, ``False`` it does not,
        ``None`` the backend could not tell (see ``reason``).
    :ivar url: when owned, the URL to record instead (the store's own
        form, e.g. ``cinder://<store id>/<volume id>``); ``None`` keeps it.
    :ivar reason: when not owned: one of ``NOT_FOUND``, ``FORBIDDEN``,
        ``UNAVAILABLE``, ``ELSEWHERE``.
    :ivar detail: a sentence for the operator, with no secret in it.
    """

    owned: bool | None
    url: str | None = None
    reason: str | None = None
    detail: str = ''


class BackendLookup(abc.ABC):
    """A store's way to claim URLs no prefix can: it asks its backend.

    Building one is offline; only :meth:`lookup` talks to the backend.
    Resolution by prefix never uses it: the resolver asks a lookup only
    for a URL that no prefix owns and that :meth:`wants`.
    """

    @abc.abstractmethod
    def wants(self, canon: urls.CanonicalURL) -> bool:
        """Whether this lookup can answer ``canon`` (cheap, offline)."""

    @abc.abstractmethod
    def lookup(self, canon: urls.CanonicalURL,
               timeout: float) -> LookupAnswer:
        """Ask the backend about ``canon``; never raises.

        :param timeout: seconds for the whole answer, retries included.
        """


class Driver(abc.ABC):
    """A store type's driver: the prefixes of one configured store.

    A subclass names its glance_store entry point in ``glance_store_entry``
    and implements :meth:`compute_prefixes`, reading ``self.store_conf``.

    :ivar conf: the operator's ``ConfigOpts``.
    :ivar store_id: the store identifier from ``enabled_backends``.
    :ivar store_entry: the store type (``file``, ``rbd``...).
    :ivar glance_store_class: glance_store's ``Store`` class of the type.
    :ivar location_class: glance_store's ``StoreLocation`` class.
    :ivar schemes: the URL schemes of the type, from glance_store.
    :ivar prefixes: the claims computed at init.
    """

    #: name of the type's entry point in ``glance_store.drivers``.
    glance_store_entry: str = ''
    #: the type's URL schemes, for a driver that can work without
    #: glance_store's driver module (see :meth:`without_glance_store`).
    schemes_without_glance_store: tuple[str, ...] = ()

    def __init__(self, conf: cfg.ConfigOpts, store_id: str,
                 store_entry: str | None = None):
        self.conf = conf
        self.store_id = store_id
        self.store_entry = store_entry or self.glance_store_entry
        try:
            self.glance_store_class = self._load_glance_store_class()
        except exceptions.StoreConfigError as exc:
            self.glance_store_class = self.without_glance_store(exc)
        self.location_class = self._location_class()
        self.schemes = tuple(self._schemes())
        self.register_opts()
        self.prefixes: tuple[Prefix, ...] = tuple(self.compute_prefixes())

    @property
    def store_conf(self):
        """The store's option group (``conf[store_id]``)."""
        return self.conf[self.store_id]

    @abc.abstractmethod
    def compute_prefixes(self) -> list[Prefix]:
        """Return the store's claims; no network, no file writes."""

    def without_glance_store(self, error: exceptions.StoreConfigError):
        """glance_store's driver of the type cannot be loaded: go on or not.

        Most types need its options to compute their prefixes, so the
        error stands.  A driver whose prefixes need none of them overrides
        this to note ``error`` and return ``None``: the type then has no
        options, no location class and ``schemes_without_glance_store``.

        :raises StoreConfigError: ``error``, unless overridden.
        """
        raise error

    def unowned(self, canon: urls.CanonicalURL) -> tuple[str, str] | None:
        """Why no store owns ``canon``, a URL of this type no prefix owns.

        For the forms of the type's URLs that name no store
        (glance_store's single-store forms), a reason code and a sentence
        for the operator, with no secret in it; ``None`` for any other
        URL, which then has no matching prefix.  Offline and cheap.
        """
        return None

    def backend_lookup(self) -> BackendLookup | None:
        """The store's backend-assisted lookup, if its type has one.

        Most store types need none: their URLs name their store.  Called
        once, when the location map is built; it must not touch the
        network.
        """
        return None

    def options(self) -> list[cfg.Opt]:
        """glance_store's own option definitions for this store type."""
        return list(getattr(self.glance_store_class, 'OPTIONS', None) or [])

    def register_opts(self) -> None:
        """Register the type's options on the store's group.

        This is what glance_store's ``register_store_opts`` does for each
        ``enabled_backends`` item, plus ``[backend_defaults]``, where
        glance_store looks for what a store's group leaves unset.
        Registering the same definitions again is harmless, so a caller
        that did it already is fine.
        """
        self.conf.register_opts(self.options(), group=self.store_id)
        for opt in self.options():
            try:
                self.conf.register_opt(opt, group=SHARED_GROUP)
            except cfg.DuplicateOptError:
                pass  # another store type shares the name; first one wins

    def option(self, name: str):
        """The value of one of the store's options, as glance_store reads it.

        The store's own group first, then ``[backend_defaults]``, then the
        option's default.

        :raises StoreConfigError: the value in the file is not valid.
        """
        group = self.store_id
        try:
            # get_location parses the value too, so it may raise as well.
            if (not self.set_by_operator(name)
                    and self.set_by_operator(name, SHARED_GROUP)):
                group = SHARED_GROUP
            return getattr(self.conf[group], name)
        except (cfg.ConfigFileValueError, ValueError) as exc:
            where = '' if group == self.store_id else f' (from [{group}])'
            raise self.error(name, f'invalid value{where}: '
                             f'{_value_error(exc)}',
                             'correct it in the configuration file') from None

    def set_by_operator(self, name: str, group: str | None = None) -> bool:
        """Whether a configuration file or the command line sets ``name``."""
        location = self.conf.get_location(name, group or self.store_id)
        return (location is not None
                and location.location is not cfg.Locations.opt_default)

    def canonical(self, option: str, url: str,
                  fix: str) -> urls.CanonicalURL:
        """``url``, built from ``option``, in canonical form.

        :raises StoreConfigError: naming ``option``, when the value cannot
            be part of a location URL.
        """
        try:
            return urls.canonicalize(url)
        except urls.InvalidURL as exc:
            raise self.error(option, f'cannot be part of a location URL '
                             f'({exc.reason})', fix) from None

    def error(self, option: str | None, reason: str,
              fix: str | None = None) -> exceptions.StoreConfigError:
        """A configuration error naming this store and the option."""
        return exceptions.StoreConfigError(self.store_id, option, reason,
                                           fix)

    def require(self, name: str, fix: str):
        """The value of an option that must be set, or a clear error."""
        value = self.option(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise self.error(name, 'is not set', fix)
        return value

    def endpoint(self, option: str, address: str, fix: str,
                 schemes: tuple[str, str, str]
                 ) -> tuple[str, urls.CanonicalURL]:
        """An ``http(s)://host[:port]/path`` option as its store's URL.

        :param schemes: the store scheme for an ``http://``, an
            ``https://`` and a bare address, in that order.
        :returns: (store scheme, canonical URL with that scheme).
        :raises StoreConfigError: naming ``option``: not an http(s)
            address, or it embeds credentials.
        """
        scheme, rest = schemes[2], address.strip()
        if rest.lower().startswith(('http://', 'https://')):
            secure, rest = rest.split('://', 1)
            scheme = schemes[1] if secure.lower() == 'https' else schemes[0]
        if '://' in rest:
            raise self.error(option, 'is not an http(s) address', fix)
        canon = self.canonical(option, f'{scheme}://{rest}', fix)
        if canon.has_credentials:
            raise self.error(option, 'embeds credentials', fix)
        return scheme, canon

    def url_host(self, option: str | None, name: str, scheme: str,
                 fix: str) -> str:
        """``name`` as the host part of a ``scheme://`` URL, or an error.

        glance_store writes some names (a cinder store id, a swift
        reference) verbatim where a URL has its host.
        """
        try:
            valid = (urls.canonicalize(f'{scheme}://{name}').authority
                     == name.lower())
        except urls.InvalidURL:
            valid = False
        if not valid:
            raise self.error(option, f'{name!r} cannot be the host part of '
                             f'a {scheme}:// location', fix)
        return name

    def _load_glance_store_class(self):
        def on_failure(manager, entry_point, exc):
            raise self.error(
                None,
                f'glance_store\'s {self.glance_store_entry!r} driver '
                f'({entry_point.value}) cannot be imported: {exc}',
                self.import_fix())
        try:
            manager = sd_driver.DriverManager(
                GLANCE_STORE_NAMESPACE, self.glance_store_entry,
                invoke_on_load=False,
                on_load_failure_callback=on_failure)
        except exceptions.StoreConfigError:
            raise
        except Exception as exc:
            raise self.error(
                None,
                f'no glance_store driver {self.glance_store_entry!r}: {exc}',
                'install glance_store') from exc
        return manager.driver

    def import_fix(self) -> str:
        """What to install when glance_store's driver module won't import."""
        return 'install the packages that glance_store\'s driver imports'

    def _location_class(self):
        if self.glance_store_class is None:
            return None
        module = importlib.import_module(self.glance_store_class.__module__)
        return getattr(module, 'StoreLocation', None)

    def _schemes(self):
        cls = self.glance_store_class
        if cls is None:
            return self.schemes_without_glance_store
        if not hasattr(cls, 'get_schemes'):
            # swift's "Store" is a factory: the classes it builds declare
            # the schemes.
            module = importlib.import_module(cls.__module__)
            cls = next((c for c in vars(module).values()
                        if isinstance(c, type) and hasattr(c, 'get_schemes')
                        and issubclass(c, glance_store_driver.Store)), None)
            if cls is None:
                raise self.error(None, f'glance_store\'s '
                                 f'{self.glance_store_entry!r} driver '
                                 f'declares no URL schemes')
        # glance_store declares get_schemes as a method that reads nothing
        # from the instance (s3 makes it a staticmethod).
        try:
            return cls.get_schemes()
        except TypeError:
            return cls.get_schemes(None)


def _value_error(exc: Exception) -> str:
    """oslo.config's message without its LocationInfo noise."""
    text = str(exc)
    marker = 'is not valid: '
    return text.split(marker, 1)[1] if marker in text else text
