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

A driver reads its store's option group and returns its prefixes.  Option
registration, the glance_store class, its location class and its schemes
are found here once, from the ``glance_store.drivers`` entry point that
the driver names.
"""

import abc
import dataclasses
import importlib

from glance_store import driver as glance_store_driver
from oslo_config import cfg
from stevedore import driver as sd_driver

from multistore_prefix import exceptions
from multistore_prefix import urls

GLANCE_STORE_NAMESPACE = 'glance_store.drivers'
# glance_store reads an option a store's group leaves unset from here.
SHARED_GROUP = 'backend_defaults'


@dataclasses.dataclass(frozen=True)
class Doubt:
    """Why a claim may be a guess, and when it stops being taken.

    A claim with a doubt (an rbd store whose cluster fsid is unknown claims
    its pool under any fsid) owns a URL only while no other store claims
    the same path under another authority; otherwise the URLs it would
    own stay unresolved with ``reason``, and :meth:`detail` says what the
    store is ``missing``, what it ``shared`` with the others (``pool
    'images'``) and the ``fix``.
    """

    reason: str
    missing: str
    shared: str
    fix: str

    def detail(self, others: list[str]) -> str:
        return (f'{self.missing}, and stores {", ".join(others)} use '
                f'{self.shared} too, so it cannot tell whose this URL is; '
                f'{self.fix}')


@dataclasses.dataclass(frozen=True)
class Prefix:
    """A claim a store makes on location URLs.

    The common claim is a URL prefix that owns every URL below it on a path
    component boundary; a few store types need more, said here rather than
    in special cases elsewhere.

    :ivar scheme: one of the store type's schemes; every alias of it matches.
    :ivar authority: ``host[:port]`` (or rbd fsid, swift reference, cinder
        store id); ``None`` claims any authority.
    :ivar path: the path prefix, from ``/``; ``''`` claims the whole
        authority.
    :ivar open: the last path segment is itself a prefix of the URL's
        segment (swift's ``glance_`` owns container ``glance_0a1``).
    :ivar query: (name, value) pairs that must also match: vSphere's
        ``dcPath`` and ``dsName``.
    :ivar container: with ``authority`` and ``path`` left open, the segment
        before the object must start with ``container + '_'`` (swift
        multi-tenant).
    :ivar doubt: with ``authority`` left open, see :class:`Doubt`.
    """

    scheme: str
    authority: str | None
    path: str = ''
    open: bool = False
    query: tuple[tuple[str, str], ...] = ()
    container: str | None = None
    doubt: Doubt | None = None

    def __str__(self) -> str:
        # The claim as an operator reads it, '*' where it is open.
        authority = '*' if self.authority is None else self.authority
        text = f'{self.scheme}://{authority}{self.path}'
        if self.container is not None:
            text += f'/.../{self.container}_*'
        elif self.open:
            text += '*'
        if self.query:
            text += '?' + '&'.join(f'{k}={v}' for k, v in self.query)
        return text


# Why a backend lookup gives no store: the backend has no such object,
# refused the question, could not be reached in time, or holds it elsewhere.
# A refusal or no reply is no answer (the backend may still own it).
NOT_FOUND = 'backend-not-found'
FORBIDDEN = 'backend-forbidden'
UNAVAILABLE = 'backend-unavailable'
ELSEWHERE = 'backend-elsewhere'
UNANSWERED = frozenset((UNAVAILABLE, FORBIDDEN))
# Driver.unowned's reasons: a single-store form names no store
# (rbd://<image>; cinder://<volume id>, which only the backend can tell
# and was not asked), or the packages to ask the backend are missing.
NO_STORE_IN_URL = 'no-store-in-url'
NOT_INSTALLED = 'backend-not-installed'


@dataclasses.dataclass(frozen=True)
class Resolution:
    """The store of one URL, or why it has none.

    From the location map, or from a store's backend lookup.

    :ivar url: the URL to record instead (a backend's own form, e.g.
        ``cinder://<store id>/<volume id>``); ``None`` keeps it.
    :ivar detail: a sentence for the operator, credentials masked.
    """

    store: str | None
    reason: str | None = None
    detail: str = ''
    url: str | None = None


class Driver(abc.ABC):
    """A store type's driver: the prefixes of one configured store.

    A subclass names its entry point in ``glance_store.drivers`` in
    ``glance_store_entry`` and implements :meth:`compute_prefixes`, reading
    the store's options through :meth:`option`.
    """

    glance_store_entry: str = ''
    # See without_glance_store.
    schemes_without_glance_store: tuple[str, ...] = ()
    # What to install when glance_store's driver module won't import.
    import_fix = 'install the packages that glance_store\'s driver imports'
    # See endpoint.
    endpoint_schemes: tuple[str, str, str] = ('', '', '')

    def __init__(self, conf: cfg.ConfigOpts, store_id: str):
        self.conf = conf
        self.store_id = store_id
        try:
            self.glance_store_class = self._load_glance_store_class()
        except exceptions.StoreConfigError as exc:
            self.glance_store_class = self.without_glance_store(exc)
        if self.glance_store_class is None:
            self.location_class = None
            self.schemes = self.schemes_without_glance_store
        else:
            module = importlib.import_module(
                self.glance_store_class.__module__)
            self.location_class = getattr(module, 'StoreLocation', None)
            self.schemes = tuple(self._schemes(module))
        self.register_opts()
        self.prefixes: tuple[Prefix, ...] = tuple(self.compute_prefixes())

    @abc.abstractmethod
    def compute_prefixes(self) -> list[Prefix]:
        """Return the store's claims; no network, no file writes."""

    def without_glance_store(self, error: exceptions.StoreConfigError):
        """glance_store's driver of the type cannot be loaded.

        Most types need its options to compute their prefixes, so ``error``
        stands.  A driver whose prefixes need none overrides this to note
        ``error`` and return ``None``: the type then has no options, no
        location class and ``schemes_without_glance_store``.
        """
        raise error

    def unowned(self, canon: urls.CanonicalURL) -> tuple[str, str] | None:
        """(reason, sentence) for a URL of this type that no prefix owns.

        For the forms that name no store (glance_store's single-store
        forms); ``None`` for any other URL, which then has no matching
        prefix.  Offline and cheap; the sentence holds no secret.
        """
        return None

    def backend_lookup(self):
        """The store's way to claim URLs no prefix can: it asks its backend.

        ``None`` for most types: their URLs name their store.  Building one
        is offline; its ``wants(canon)`` says (offline, cheaply) whether it
        can answer a URL no prefix owns, and only its ``lookup(canon,
        timeout)`` asks the backend, returning a :class:`Resolution` within
        ``timeout`` seconds and never raising.
        """
        return None

    def register_opts(self) -> None:
        """Register glance_store's options of the type, as it does.

        On the store's group and on ``[backend_defaults]``, where
        glance_store looks for what a store's group leaves unset.  The same
        definitions again are harmless, so a caller that did it is fine.
        """
        options = list(getattr(self.glance_store_class, 'OPTIONS', None)
                       or [])
        self.conf.register_opts(options, group=self.store_id)
        for opt in options:
            try:
                self.conf.register_opt(opt, group=SHARED_GROUP)
            except cfg.DuplicateOptError:
                pass  # another store type shares the name; first one wins

    def option(self, name: str):
        """An option's value as glance_store reads it, a string stripped.

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
            value = getattr(self.conf[group], name)
        except (cfg.ConfigFileValueError, ValueError) as exc:
            where = '' if group == self.store_id else f' (from [{group}])'
            raise self.error(name, f'invalid value{where}: '
                             f'{exceptions.value_reason(exc)}',
                             'correct it in the configuration file') from None
        return value.strip() if isinstance(value, str) else value

    def set_by_operator(self, name: str, group: str | None = None) -> bool:
        location = self.conf.get_location(name, group or self.store_id)
        return (location is not None
                and location.location is not cfg.Locations.opt_default)

    def error(self, option: str | None, reason: str,
              fix: str | None = None) -> exceptions.StoreConfigError:
        return exceptions.StoreConfigError(self.store_id, option, reason,
                                           fix)

    def require(self, name: str, fix: str):
        value = self.option(name)
        if value is None or value == '':
            raise self.error(name, 'is not set', fix)
        return value

    def endpoint(self, option: str, address: str,
                 fix: str) -> tuple[str, urls.CanonicalURL]:
        """An ``http(s)://host[:port]/path`` option as its store's URL.

        ``endpoint_schemes`` names the store scheme for an ``http://``, an
        ``https://`` and a bare address, in that order.

        :returns: (store scheme, canonical URL with that scheme).
        """
        schemes = self.endpoint_schemes
        scheme, rest = schemes[2], address.strip()
        if rest.lower().startswith(('http://', 'https://')):
            secure, rest = rest.split('://', 1)
            scheme = schemes[1] if secure.lower() == 'https' else schemes[0]
        if '://' in rest:
            raise self.error(option, 'is not an http(s) address', fix)
        try:
            canon = urls.canonicalize(f'{scheme}://{rest}')
        except urls.InvalidURL as exc:
            raise self.error(option, f'cannot be part of a location URL '
                             f'({exc.reason})', fix) from None
        if canon.has_credentials:
            raise self.error(option, 'embeds credentials', fix)
        return scheme, canon

    def url_host(self, option: str | None, name: str, scheme: str,
                 fix: str) -> str:
        """``name``, which glance_store writes verbatim as a URL's host.

        A cinder store id, a swift reference.
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
                self.import_fix)
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

    def _schemes(self, module):
        cls = self.glance_store_class
        if not hasattr(cls, 'get_schemes'):
            # swift's "Store" is a factory: the classes it builds declare
            # the schemes.
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
