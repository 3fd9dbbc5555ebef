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

"""Cinder's REST API as one cinder store's service user sees it.

The cinder driver's lookup asks two things about a legacy
``cinder://<volume id>``: the volume's type and Cinder's default type.  It
speaks through keystoneauth (a dependency of glance_store), not
cinderclient, with retries, a deadline per question and a cache of what
Cinder said.  Errors are :class:`NoAnswer`; their text names the endpoint
and never a secret.
"""

import concurrent.futures
import dataclasses
import threading
import time
from typing import Callable, Hashable
import weakref

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1.identity import v3 as ks_v3
from keystoneauth1 import session as ks_session

from multistore_prefix.drivers import base
from multistore_prefix import masking

#: Facts one Cinder connection remembers (volume types, the default type).
CACHE_SIZE = 10_000
#: Seconds before the first retry; each retry doubles it, up to MAX_BACKOFF.
BACKOFF = 0.5
MAX_BACKOFF = 8.0

# What cinder_endpoint_template may use: the names of glance's request
# context that the store's own service user gives as well (keystoneauth's
# AccessInfo attribute of each).
TEMPLATE_KEYS = {'tenant': 'project_id', 'project_id': 'project_id',
                 'project_name': 'project_name', 'user': 'user_id',
                 'user_id': 'user_id', 'user_name': 'username'}

# Connections with the same settings share their session and their facts.
_CONNECTIONS: 'weakref.WeakValueDictionary[Settings, Connection]' = (
    weakref.WeakValueDictionary())
_CONNECTIONS_LOCK = threading.Lock()


class NoAnswer(Exception):
    """Cinder could not say; ``detail`` is a sentence with no secret.

    ``reason`` is ``UNAVAILABLE`` (rerun later: unreachable, 5xx, 429, an
    odd body, no endpoint) or ``FORBIDDEN`` (Keystone or Cinder refused
    the credentials).
    """

    def __init__(self, detail: str, reason: str = base.UNAVAILABLE):
        super().__init__(detail)
        self.detail = detail
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Settings:
    """How to reach one Cinder as one user; secrets stay out of repr.

    :ivar auth: the keystoneauth v3 plugin (``Password`` or
        ``ApplicationCredential``) and its arguments beside ``auth_url``.
    :ivar catalog: (service type, service name or ``None``, interface) to
        find the endpoint in the token's catalog, unless
        ``endpoint_template`` is set.
    :ivar verify: ``False``, ``True`` or a CA bundle path.
    """

    auth_url: str
    auth: tuple[str, tuple[tuple[str, str | None], ...]] = (
        dataclasses.field(repr=False))
    endpoint_template: str | None
    catalog: tuple[str, str | None, str]
    region: str | None
    verify: bool | str
    retries: int


class FactCache:
    """A bounded, thread-safe cache whose misses are fetched once.

    A backfill asks from several threads at once, and many locations (or
    stores) need the same fact: the first thread to miss fetches it, the
    others wait for that answer instead of asking again.  When full it
    forgets everything: a backfill reads locations in id order, so old
    facts are rarely wanted again, and a clear is cheaper than tracking
    an order of use.
    """

    def __init__(self, size: int):
        self.size = size
        self._lock = threading.Lock()
        self._facts: dict[Hashable, concurrent.futures.Future] = {}

    def get(self, key: Hashable, fetch: Callable[[], object],
            timeout: float):
        """The fact for ``key``: remembered, or ``fetch()``-ed now.

        A fetch that raises is not remembered, and every thread waiting
        for it gets the exception.

        :raises TimeoutError: a waiting thread ran out of ``timeout``.
        """
        with self._lock:
            future = self._facts.get(key)
            leader = future is None
            if leader:
                if len(self._facts) >= self.size:
                    # Fetches in flight stay: their waiters need them.
                    self._facts = {k: f for k, f in self._facts.items()
                                   if not f.done()}
                future = self._facts[key] = concurrent.futures.Future()
        if not leader:
            return future.result(timeout=timeout)
        try:
            fact = fetch()
        except BaseException as exc:
            with self._lock:
                del self._facts[key]
            future.set_exception(exc)
            raise
        future.set_result(fact)
        return fact


@dataclasses.dataclass(frozen=True)
class Fact:
    """What Cinder said: 200 and the type's name, or 403/404 (an answer)."""

    status: int
    name: str | None = None


class Connection:
    """One Cinder as one user: a lazy keystoneauth session and its facts.

    Stores with the same settings share one (see :meth:`shared`), so N
    such stores make one request per volume, not N.  Thread-safe: the
    session is built and authenticated once under a lock; keystoneauth
    sessions serve concurrent requests.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()  # guards the session and endpoint
        self._session: ks_session.Session | None = None
        self._endpoint: str | None = None
        self._refused: str | None = None  # Keystone or Cinder said no to us
        self._facts = FactCache(CACHE_SIZE)

    @classmethod
    def shared(cls, settings: Settings) -> 'Connection':
        """The live connection with these settings, or a new one.

        Kept only while a lookup holds it: a new location map (a new run)
        starts with an empty cache.
        """
        with _CONNECTIONS_LOCK:
            connection = _CONNECTIONS.get(settings)
            if connection is None:
                connection = _CONNECTIONS[settings] = cls(settings)
            return connection

    def volume_type(self, volume_id: str, deadline: float) -> Fact:
        """``GET /volumes/<id>`` by ``deadline`` (``time.monotonic()``).

        :raises NoAnswer:
        """
        return self._remember(('volume', volume_id), deadline,
                              f'/volumes/{volume_id}', 'volume')

    def default_type(self, deadline: float) -> Fact:
        """``GET /types/default``; raises as :meth:`volume_type`."""
        return self._remember(('default-type',), deadline, '/types/default',
                              'volume_type')

    def where(self) -> str:
        """Cinder's endpoint for messages, once known."""
        return self._endpoint or 'the store\'s endpoint'

    def _remember(self, key: tuple, deadline: float, path: str,
                  member: str) -> Fact:
        try:
            return self._facts.get(
                key, lambda: self._fetch(path, member, deadline),
                timeout=left(deadline))
        except TimeoutError:
            raise NoAnswer(f'no answer from Cinder at {self.where()} '
                           f'in time') from None
        except NoAnswer as exc:
            # A fresh one: threads that waited for the same fact share the
            # exception object, and would share its traceback.
            raise NoAnswer(exc.detail, exc.reason) from None

    def _fetch(self, path: str, member: str, deadline: float) -> Fact:
        response = self._get(path, deadline)
        status = response.status_code
        if status == 401:
            self._refuse(f'Cinder at {self.where()} rejected the store '
                         f'user\'s token (HTTP 401)')
        if status in (403, 404):
            return Fact(status)
        if status != 200:
            raise NoAnswer(f'Cinder at {self.where()} answered HTTP '
                           f'{status} to GET {path}')
        try:
            name = response.json()[member]['volume_type' if member == 'volume'
                                           else 'name']
        except (ValueError, KeyError, TypeError):
            raise NoAnswer(f'Cinder at {self.where()} answered GET {path} '
                           f'with no {member} in the body') from None
        return Fact(status, name)

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
                if pause >= left(deadline):
                    break
                time.sleep(pause)
            remaining = left(deadline)
            if remaining <= 0:
                break
            try:
                session, endpoint = self._connect(deadline)
                response = session.get(
                    endpoint + path, raise_exc=False, timeout=remaining,
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
                raise NoAnswer(failure) from None
            except ks_exc.RetriableConnectionFailure as exc:
                failure = describe(exc)
                continue
            except ks_exc.SSLError as exc:
                raise NoAnswer(f'{describe(exc)} (see the store\'s '
                               f'cinder_ca_certificates_file and '
                               f'cinder_api_insecure)') from None
            except ks_exc.EndpointNotFound:
                raise NoAnswer(self._no_endpoint()) from None
            except ks_exc.ClientException as exc:
                raise NoAnswer(describe(exc)) from None
            if _retried(response.status_code):
                failure = (f'Cinder at {self.where()} answered HTTP '
                           f'{response.status_code}')
                continue
            return response
        raise NoAnswer(f'{failure}; gave up')

    def _connect(self, deadline: float) -> tuple[ks_session.Session, str]:
        """The session and the volume endpoint; authenticates once."""
        if not self._lock.acquire(timeout=max(left(deadline), 0)):
            raise NoAnswer(f'no token from Keystone at '
                           f'{self._keystone()} in time')
        try:
            if self._refused:
                raise NoAnswer(self._refused, base.FORBIDDEN)
            if self._session is None:
                plugin, options = self.settings.auth
                self._session = ks_session.Session(
                    auth=getattr(ks_v3, plugin)(
                        auth_url=self.settings.auth_url, **dict(options)),
                    verify=self.settings.verify,
                    timeout=max(left(deadline), 1.0),
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
            found = template % {key: getattr(access, attribute)
                                for key, attribute in TEMPLATE_KEYS.items()}
        else:
            service_type, service_name, interface = self.settings.catalog
            found = access.service_catalog.url_for(
                service_type=service_type, service_name=service_name,
                interface=interface, region_name=self.settings.region)
        return found.rstrip('/')

    def _no_endpoint(self) -> str:
        service_type, service_name, interface = self.settings.catalog
        return (f'the service catalog of the store\'s user has no '
                f'{interface} {service_type} endpoint'
                + (f' named {service_name!r}' if service_name else '')
                + (f' in region {self.settings.region!r}'
                   if self.settings.region else '')
                + ' (see the store\'s cinder_catalog_info and '
                  'cinder_os_region_name)')

    def _refuse(self, detail: str):
        """Stop asking: more tries would only lock the account out."""
        self._refused = detail
        raise NoAnswer(detail, base.FORBIDDEN)

    def _keystone(self) -> str:
        return masking.mask_url(self.settings.auth_url)


def left(deadline: float) -> float:
    """Seconds until ``deadline`` (a ``time.monotonic()`` value)."""
    return deadline - time.monotonic()


def describe(exc: Exception) -> str:
    """An exception as a sentence, URL credentials masked."""
    return masking.mask_text(str(exc) or type(exc).__name__)


def _retried(status: int | None) -> bool:
    return status is not None and (status == 429 or status >= 500)
