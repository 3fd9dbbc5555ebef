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

"""Cinder stores: ``cinder://<store_id>/<volume_id>``.

In a multi-store deployment glance_store writes the store identifier as the
URL's authority, so the claim is the store id itself.  Canonical URLs
compare authorities in lower case: stores ``Fast`` and ``fast`` would claim
the same prefix and be reported as a conflict.

Single-store locations, ``cinder://<volume_id>``, name no store.  As Glance
does, a store claims such a volume when Cinder says the volume's type is
the store's ``cinder_volume_type`` (Cinder's default type when that is
unset): see :class:`CinderLookup`.  That asks Cinder's REST API with the
store's own service credentials, so it needs them set; Glance can also use
the requesting user's token, which an offline backfill does not have.
The endpoint comes from ``cinder_endpoint_template`` when it is set, else
from the token's catalog per ``cinder_catalog_info`` and
``cinder_os_region_name`` (glance_store's cinderclient, with service
credentials, looks up ``volumev3`` public in the region: the defaults give
the same endpoint).

glance_store's cinder module imports os-brick and cinderclient just to
declare its options, so those packages are an extra of this one.
"""

import concurrent.futures
import dataclasses
import hashlib
import hmac
import logging
import os
import re
import threading
import time
import weakref

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1.identity import v3 as ks_v3
from keystoneauth1 import session as ks_session

from multistore_prefix.drivers import base
from multistore_prefix import exceptions
from multistore_prefix import urls

LOG = logging.getLogger(__name__)

#: Facts one Cinder connection remembers (volume types, the default type);
#: when full, it forgets them all and starts again.
CACHE_SIZE = 10_000
#: Seconds before the first retry; each retry doubles it, up to MAX_BACKOFF.
BACKOFF = 0.5
MAX_BACKOFF = 8.0

# Cinder volume ids are UUIDs, written in lower case (as canonical URLs are).
_UUID = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}'
                   r'-[0-9a-f]{12}\Z')
# cinder_catalog_info names interfaces the keystone v2 way.
_INTERFACES = {'publicURL': 'public', 'internalURL': 'internal',
               'adminURL': 'admin', 'public': 'public',
               'internal': 'internal', 'admin': 'admin'}
# What cinder_endpoint_template may use: the names of glance's request
# context that the store's own service user gives as well.
_TEMPLATE_KEYS = ('tenant', 'project_id', 'project_name', 'user',
                  'user_id', 'user_name')
_CREDENTIALS_FIX = (
    'lookups of legacy cinder://<volume id> locations ask Cinder as the '
    'store\'s own service user: set cinder_store_auth_address, '
    'cinder_store_user_name, cinder_store_password and '
    'cinder_store_project_name (or cinder_store_application_credential_id '
    'and cinder_store_application_credential_secret) in the store\'s group '
    'or in [backend_defaults]')
# Connections with the same settings share their session and their facts;
# the key is a keyed hash, so no secret is kept in clear outside the
# settings themselves.
_KEY = os.urandom(32)
_CONNECTIONS: 'weakref.WeakValueDictionary[str, _Connection]' = (
    weakref.WeakValueDictionary())
_CONNECTIONS_LOCK = threading.Lock()


class CinderDriver(base.Driver):
    """Claims ``cinder://<store_id>`` for the store it is configured as."""

    glance_store_entry = 'cinder'

    def compute_prefixes(self) -> list[base.Prefix]:
        # glance_store writes the store id verbatim as the URL's host.
        self.url_host(None, self.store_id, 'cinder',
                      'rename the store in [DEFAULT]/enabled_backends using '
                      'letters, digits, "-", "_" and "."')
        return [base.Prefix('cinder', self.store_id)]

    def import_fix(self) -> str:
        return 'pip install "multistore-prefix[cinder]"'

    def backend_lookup(self) -> 'CinderLookup':
        """The store's Cinder lookup, built offline from its options.

        A store whose options cannot make a lookup (no service
        credentials, a bad ``cinder_catalog_info``...) still gets one: it
        wants the same URLs and answers each ``UNAVAILABLE`` with the
        option to set, so the report says why, and logs that once, at the
        first lookup (commands that never look up stay quiet).  Prefix
        resolution never depends on it.
        """
        try:
            settings = self._settings()
            volume_type = (self.option('cinder_volume_type') or '').strip()
        except exceptions.StoreConfigError as exc:
            return CinderLookup(self.store_id, None, None, problem=str(exc))
        return CinderLookup(self.store_id, volume_type or None,
                            _Connection.shared(settings))

    def _settings(self) -> '_Settings':
        """The connection settings from the store's options.

        :raises StoreConfigError: naming the option that is missing or bad.
        """
        def value(name):
            found = self.option(name)
            return found.strip() if isinstance(found, str) else found

        ac_id = value('cinder_store_application_credential_id')
        ac_secret = value('cinder_store_application_credential_secret')
        # As glance_store: application credentials win when both are set.
        needed = ['cinder_store_auth_address']
        if not (ac_id and ac_secret):
            ac_id = ac_secret = None
            needed += ['cinder_store_user_name', 'cinder_store_password',
                       'cinder_store_project_name']
        for name in needed:
            if not value(name):
                raise self.error(name, 'is not set', _CREDENTIALS_FIX)
        template = value('cinder_endpoint_template') or None
        if template:
            self._check_template(template)
        return _Settings(
            auth_url=value('cinder_store_auth_address'),
            user_name=value('cinder_store_user_name'),
            user_domain_name=value('cinder_store_user_domain_name'),
            project_name=value('cinder_store_project_name'),
            project_domain_name=value('cinder_store_project_domain_name'),
            password=None if ac_id else value('cinder_store_password'),
            application_credential_id=ac_id,
            application_credential_secret=ac_secret,
            endpoint_template=template,
            catalog=self._catalog_info(),
            region=value('cinder_os_region_name') or None,
            verify=self._verify(),
            retries=value('cinder_http_retries'))

    def _catalog_info(self) -> tuple[str, str | None, str]:
        info = (self.option('cinder_catalog_info') or '').strip()
        parts = info.split(':')
        fix = ('write <service_type>:<service_name>:<interface>, e.g. '
               'volumev3::publicURL')
        if len(parts) != 3 or not parts[0] or not parts[2]:
            raise self.error('cinder_catalog_info',
                             f'{info!r} is not of the form '
                             f'<service_type>:<service_name>:<interface>',
                             fix)
        service_type, service_name, interface = parts
        if interface not in _INTERFACES:
            raise self.error('cinder_catalog_info',
                             f'unknown interface {interface!r}',
                             'use publicURL, internalURL or adminURL')
        return service_type, service_name or None, _INTERFACES[interface]

    def _check_template(self, template: str) -> None:
        option = 'cinder_endpoint_template'
        if not template.lower().startswith(('http://', 'https://')):
            raise self.error(option, 'is not an http(s) URL',
                             'write e.g. http://cinder.example.com:8776/v3/'
                             '%(project_id)s')
        try:
            template % dict.fromkeys(_TEMPLATE_KEYS, 'x')
        except KeyError as exc:
            raise self.error(option, f'uses %({exc.args[0]})s, which is not '
                             f'known', 'use %(tenant)s or %(project_id)s '
                             'for the project of the store\'s user') from None
        except (TypeError, ValueError) as exc:
            raise self.error(option, f'is not a valid template ({exc})',
                             'write %(project_id)s for the project, and '
                             '%% for a literal %') from None

    def _verify(self) -> bool | str:
        # As glance_store: insecure wins over a CA file.
        if self.option('cinder_api_insecure'):
            return False
        return self.option('cinder_ca_certificates_file') or True


@dataclasses.dataclass(frozen=True)
class _Settings:
    """How to reach one Cinder as one user; secrets stay out of repr."""

    auth_url: str
    user_name: str | None
    user_domain_name: str | None
    project_name: str | None
    project_domain_name: str | None
    password: str | None = dataclasses.field(repr=False)
    application_credential_id: str | None
    application_credential_secret: str | None = dataclasses.field(
        repr=False)
    endpoint_template: str | None
    catalog: tuple[str, str | None, str]
    region: str | None
    verify: bool | str
    retries: int

    def key(self) -> str:
        """A keyed hash of every setting: equal for equal settings."""
        text = repr(dataclasses.astuple(self)).encode()
        return hmac.new(_KEY, text, hashlib.sha256).hexdigest()

    def auth(self):
        """The keystoneauth plugin for these credentials (offline)."""
        if self.application_credential_id:
            return ks_v3.ApplicationCredential(
                auth_url=self.auth_url,
                application_credential_id=self.application_credential_id,
                application_credential_secret=(
                    self.application_credential_secret))
        return ks_v3.Password(
            auth_url=self.auth_url, username=self.user_name,
            password=self.password, user_domain_name=self.user_domain_name,
            project_name=self.project_name,
            project_domain_name=self.project_domain_name)


@dataclasses.dataclass(frozen=True)
class _Fact:
    """What Cinder said about one thing: its HTTP status and the name."""

    status: int
    name: str | None = None


class _NoAnswer(Exception):
    """Cinder could not say: the reason and a sentence with no secret."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class _Connection:
    """One Cinder as one user: a lazy keystoneauth session and its facts.

    Stores configured with the same credentials and endpoint settings share
    one (see :meth:`shared`), so N such stores make one request per volume,
    not N.  Thread-safe: the session is built and authenticated once under
    a lock; keystoneauth sessions serve concurrent requests; a fact asked
    for by several threads at once is fetched once.
    """

    def __init__(self, settings: _Settings):
        self.settings = settings
        self._lock = threading.Lock()  # guards the session and endpoint
        self._session: ks_session.Session | None = None
        self._endpoint: str | None = None
        self._refused: str | None = None  # Keystone or Cinder said no to us
        self._facts_lock = threading.Lock()
        self._facts: dict[tuple, _Fact] = {}
        self._pending: dict[tuple, concurrent.futures.Future] = {}

    @classmethod
    def shared(cls, settings: _Settings) -> '_Connection':
        """The live connection with these settings, or a new one.

        Kept only while a lookup holds it: a new location map (a new run)
        starts with an empty cache.
        """
        key = settings.key()
        with _CONNECTIONS_LOCK:
            connection = _CONNECTIONS.get(key)
            if connection is None:
                connection = _CONNECTIONS[key] = cls(settings)
            return connection

    def volume_type(self, volume_id: str, deadline: float) -> _Fact:
        """``GET /volumes/<id>``: the volume's type name, or the status."""
        return self._remember(('volume', volume_id), deadline,
                              f'/volumes/{volume_id}', 'volume')

    def default_type(self, deadline: float) -> _Fact:
        """``GET /types/default``: Cinder's default volume type name."""
        return self._remember(('default-type',), deadline, '/types/default',
                              'volume_type')

    def _remember(self, key: tuple, deadline: float, path: str,
                  member: str) -> _Fact:
        with self._facts_lock:
            fact = self._facts.get(key)
            if fact is not None:
                return fact
            future = self._pending.get(key)
            leader = future is None
            if leader:
                future = self._pending[key] = concurrent.futures.Future()
        if not leader:
            try:
                return future.result(timeout=_left(deadline))
            except TimeoutError:
                raise _NoAnswer(base.UNAVAILABLE,
                                f'no answer from Cinder at {self.where()} '
                                f'in time') from None
            except _NoAnswer as exc:
                raise _NoAnswer(exc.reason, exc.detail) from None
        try:
            fact = self._fetch(path, member, deadline)
        except BaseException as exc:
            with self._facts_lock:
                del self._pending[key]
            future.set_exception(exc)
            raise
        with self._facts_lock:
            if len(self._facts) >= CACHE_SIZE:
                self._facts.clear()
            self._facts[key] = fact
            del self._pending[key]
        future.set_result(fact)
        return fact

    def _fetch(self, path: str, member: str, deadline: float) -> _Fact:
        response = self._get(path, deadline)
        status = response.status_code
        if status == 401:
            self._refuse(f'Cinder at {self.where()} rejected the store '
                         f'user\'s token (HTTP 401)')
        if status in (403, 404):
            return _Fact(status)
        if status != 200:
            raise _NoAnswer(base.UNAVAILABLE,
                            f'Cinder at {self.where()} answered HTTP '
                            f'{status} to GET {path}')
        try:
            name = response.json()[member]['volume_type' if member == 'volume'
                                           else 'name']
        except (ValueError, KeyError, TypeError):
            raise _NoAnswer(base.UNAVAILABLE,
                            f'Cinder at {self.where()} answered GET {path} '
                            f'with no {member} in the body') from None
        return _Fact(status, name)

    def _get(self, path: str, deadline: float):
        """GET ``path`` below the endpoint, with retries, by ``deadline``.

        Connection failures, 429 and 5xx are retried up to
        ``cinder_http_retries`` times, the wait doubling each time; no
        wait goes past the deadline.
        """
        failure = 'no time left to ask'
        for attempt in range(self.settings.retries + 1):
            if attempt:
                pause = min(BACKOFF * 2 ** (attempt - 1), MAX_BACKOFF)
                if pause >= _left(deadline):
                    break
                time.sleep(pause)
            left = _left(deadline)
            if left <= 0:
                break
            try:
                session, endpoint = self._connect(deadline)
                response = session.get(
                    endpoint + path, raise_exc=False, timeout=left,
                    connect_retries=0,
                    headers={'Accept': 'application/json'})
            except ks_exc.HttpError as exc:
                # With raise_exc=False only the token request raises these.
                status = exc.http_status
                if status in (401, 403):
                    self._refuse(f'Keystone at {self._keystone()} '
                                 f'refused the store user\'s credentials '
                                 f'(HTTP {status})')
                failure = (f'Keystone at {self._keystone()} answered '
                           f'HTTP {status} to the token request')
                if _retried(status):
                    continue
                raise _NoAnswer(base.UNAVAILABLE, failure) from None
            except ks_exc.RetriableConnectionFailure as exc:
                failure = _text(exc)
                continue
            except ks_exc.SSLError as exc:
                raise _NoAnswer(base.UNAVAILABLE,
                                f'{_text(exc)} (see the store\'s '
                                f'cinder_ca_certificates_file and '
                                f'cinder_api_insecure)') from None
            except ks_exc.EndpointNotFound:
                service_type, service_name, interface = self.settings.catalog
                raise _NoAnswer(
                    base.UNAVAILABLE,
                    f'the service catalog of the store\'s user has no '
                    f'{interface} {service_type} endpoint'
                    + (f' named {service_name!r}' if service_name else '')
                    + (f' in region {self.settings.region!r}'
                       if self.settings.region else '')
                    + ' (see the store\'s cinder_catalog_info and '
                      'cinder_os_region_name)') from None
            except ks_exc.ClientException as exc:
                raise _NoAnswer(base.UNAVAILABLE, _text(exc)) from None
            if _retried(response.status_code):
                failure = (f'Cinder at {self.where()} answered HTTP '
                           f'{response.status_code}')
                continue
            return response
        raise _NoAnswer(base.UNAVAILABLE, f'{failure}; gave up')

    def _connect(self, deadline: float) -> tuple[ks_session.Session, str]:
        """The session and the volume endpoint; authenticates once."""
        if not self._lock.acquire(timeout=max(_left(deadline), 0)):
            raise _NoAnswer(base.UNAVAILABLE,
                            f'no token from Keystone at '
                            f'{self._keystone()} in time')
        try:
            if self._refused:
                raise _NoAnswer(base.FORBIDDEN, self._refused)
            if self._session is None:
                self._session = ks_session.Session(
                    auth=self.settings.auth(), verify=self.settings.verify,
                    timeout=max(_left(deadline), 1.0),
                    app_name='multistore-prefix')
            if self._endpoint is None:
                self._endpoint = self._find_endpoint()
            return self._session, self._endpoint
        finally:
            self._lock.release()

    def _find_endpoint(self) -> str:
        access = self._session.auth.get_access(self._session)
        template = self.settings.endpoint_template
        if template:
            found = template % {
                'tenant': access.project_id, 'project_id': access.project_id,
                'project_name': access.project_name,
                'user': access.user_id, 'user_id': access.user_id,
                'user_name': access.username}
        else:
            service_type, service_name, interface = self.settings.catalog
            found = access.service_catalog.url_for(
                service_type=service_type, service_name=service_name,
                interface=interface, region_name=self.settings.region)
        return found.rstrip('/')

    def _refuse(self, detail: str):
        """Stop asking: more tries would only lock the account out."""
        self._refused = detail
        raise _NoAnswer(base.FORBIDDEN, detail)

    def _keystone(self) -> str:
        return urls.mask_url(self.settings.auth_url)

    def where(self) -> str:
        """Cinder's endpoint for messages, once known."""
        return self._endpoint or 'the store\'s endpoint'


class CinderLookup(base.BackendLookup):
    """Whether a legacy ``cinder://<volume_id>`` belongs to one store.

    The store owns the volume when Cinder says its type is the store's
    ``cinder_volume_type``, or Cinder's default type when that is unset;
    the location then becomes ``cinder://<store_id>/<volume_id>``.  Two
    stores that both leave ``cinder_volume_type`` unset both claim the
    default type: telling them apart is the caller's conflict to report.

    Answers: owned (``True``, the new URL); another volume type
    (``False``, ``ELSEWHERE``); Cinder has no such volume for the store's
    user, HTTP 404 (``False``, ``NOT_FOUND``); HTTP 401/403 on the volume
    or the token (``None``, ``FORBIDDEN``); timeouts, connection errors,
    5xx and 429 after ``cinder_http_retries`` retries, anything else
    (``None``, ``UNAVAILABLE``).  Every detail names the store and the
    volume, never a secret.

    Building it is offline.  What Cinder said is cached for the life of
    the lookup and shared with stores of the same credentials and endpoint
    (see :class:`_Connection`); a not-found or forbidden volume is an
    answer too, an unavailable Cinder is not.  Once Keystone or Cinder
    refuses the credentials, no more requests are made with them.  Safe
    to call from many threads.

    :ivar store_id: the store identifier from ``enabled_backends``.
    :ivar volume_type: the store's ``cinder_volume_type``; ``None`` for
        Cinder's default type.
    :ivar problem: why the store's options cannot make a lookup (then
        every answer is ``UNAVAILABLE`` with it); ``None`` when they can.
    """

    def __init__(self, store_id: str, volume_type: str | None,
                 connection: _Connection | None,
                 problem: str | None = None):
        self.store_id = store_id
        self.volume_type = volume_type
        self.problem = problem
        self._connection = connection
        self._warned = threading.Event()

    def wants(self, canon: urls.CanonicalURL) -> bool:
        """A single-store location: ``cinder://<volume id>``, nothing more.

        Only a UUID counts as a volume id (Cinder makes no other), so a
        truncated new-style URL (``cinder://fast``) is never asked about.
        """
        return (canon.scheme == 'cinder' and not canon.path
                and not canon.query and not canon.has_credentials
                and _UUID.match(canon.authority) is not None)

    def lookup(self, canon: urls.CanonicalURL,
               timeout: float) -> base.LookupAnswer:
        volume_id = canon.authority
        where = f'store {self.store_id!r}, volume {volume_id}'
        if self.problem is not None:
            if not self._warned.is_set():
                self._warned.set()
                LOG.warning('No Cinder lookups for store %s: %s',
                            self.store_id, self.problem)
            return base.LookupAnswer(None, reason=base.UNAVAILABLE,
                                     detail=f'{where}: {self.problem}')
        deadline = time.monotonic() + timeout
        try:
            return self._answer(volume_id, where, deadline)
        except _NoAnswer as exc:
            return base.LookupAnswer(None, reason=exc.reason,
                                     detail=f'{where}: {exc.detail}')
        except Exception as exc:  # a lookup never raises
            LOG.warning('Cinder lookup of %s failed: %s', where, _text(exc),
                        exc_info=LOG.isEnabledFor(logging.DEBUG))
            return base.LookupAnswer(None, reason=base.UNAVAILABLE,
                                     detail=f'{where}: unexpected '
                                            f'{type(exc).__name__}')

    def _answer(self, volume_id: str, where: str,
                deadline: float) -> base.LookupAnswer:
        volume = self._connection.volume_type(volume_id, deadline)
        if volume.status == 404:
            return base.LookupAnswer(
                False, reason=base.NOT_FOUND,
                detail=f'{where}: Cinder at {self._connection.where()} has '
                       f'no such volume that the store\'s user can see '
                       f'(HTTP 404)')
        if volume.status == 403:
            return base.LookupAnswer(
                None, reason=base.FORBIDDEN,
                detail=f'{where}: Cinder at {self._connection.where()} '
                       f'refused to show the volume to the store\'s user '
                       f'(HTTP 403)')
        wanted, source = self.volume_type, 'its cinder_volume_type'
        if wanted is None:
            default = self._connection.default_type(deadline)
            if default.status == 403:
                return base.LookupAnswer(
                    None, reason=base.FORBIDDEN,
                    detail=f'{where}: Cinder refused to tell the default '
                           f'volume type (HTTP 403); set the store\'s '
                           f'cinder_volume_type')
            if default.status == 404:
                return base.LookupAnswer(
                    False, reason=base.ELSEWHERE,
                    detail=f'{where}: the store sets no cinder_volume_type '
                           f'and Cinder has no default volume type, so the '
                           f'store claims no volume')
            wanted, source = default.name, 'Cinder\'s default type'
        if volume.name == wanted:
            return base.LookupAnswer(
                True, url=f'cinder://{self.store_id}/{volume_id}',
                detail=f'{where}: volume type {volume.name!r} is {source}')
        return base.LookupAnswer(
            False, reason=base.ELSEWHERE,
            detail=f'{where}: volume type {volume.name!r} is not '
                   f'{wanted!r} ({source})')


def _left(deadline: float) -> float:
    return deadline - time.monotonic()


def _retried(status: int | None) -> bool:
    return status is not None and (status == 429 or status >= 500)


def _text(exc: Exception) -> str:
    """An exception as a sentence, URL credentials masked."""
    return urls.mask_text(str(exc) or type(exc).__name__)
