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

"""Cinder's REST API as one store's service user sees it.

The cinder driver's lookup asks two things about a legacy
``cinder://<volume id>`` location: the volume's type and Cinder's default
type.  :class:`Connection` answers them over a keystoneauth session built
from the store's settings (see :mod:`.settings`), with retries, a deadline
per question and a cache of what Cinder said.

Errors are :class:`Unavailable` (Cinder could not say: rerun later) and
:class:`Refused` (Keystone or Cinder said no to the credentials); their
text names the endpoint and never a secret.
"""

import dataclasses
import threading
import time
import weakref

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session

from multistore_prefix.backends.cinder import settings as cinder_settings
from multistore_prefix.backends import facts
from multistore_prefix import urls

#: Facts one Cinder connection remembers (volume types, the default type);
#: when full, it forgets them all and starts again.
CACHE_SIZE = 10_000
#: Seconds before the first retry; each retry doubles it, up to MAX_BACKOFF.
BACKOFF = 0.5
MAX_BACKOFF = 8.0

# Connections with the same settings share their session and their facts.
_CONNECTIONS: 'weakref.WeakValueDictionary[str, Connection]' = (
    weakref.WeakValueDictionary())
_CONNECTIONS_LOCK = threading.Lock()


class NoAnswer(Exception):
    """Cinder could not say; the message is a sentence with no secret.

    :ivar detail: the sentence.
    """

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class Unavailable(NoAnswer):
    """No answer in time: unreachable, 5xx, 429, an odd body, no endpoint."""


class Refused(NoAnswer):
    """Keystone or Cinder refused the credentials or the question."""


@dataclasses.dataclass(frozen=True)
class Fact:
    """What Cinder said about one thing: its HTTP status and the name.

    :ivar status: 200, or 403/404 (an answer too).
    :ivar name: the volume type's name, when 200.
    """

    status: int
    name: str | None = None


class Connection:
    """One Cinder as one user: a lazy keystoneauth session and its facts.

    Stores configured with the same credentials and endpoint settings share
    one (see :meth:`shared`), so N such stores make one request per volume,
    not N.  Thread-safe: the session is built and authenticated once under
    a lock; keystoneauth sessions serve concurrent requests; a fact asked
    for by several threads at once is fetched once (see
    :class:`~multistore_prefix.backends.facts.FactCache`).

    :ivar settings: the
        :class:`~multistore_prefix.backends.cinder.settings.Settings` it
        connects with.
    """

    def __init__(self, settings: cinder_settings.Settings):
        self.settings = settings
        self._lock = threading.Lock()  # guards the session and endpoint
        self._session: ks_session.Session | None = None
        self._endpoint: str | None = None
        self._refused: str | None = None  # Keystone or Cinder said no to us
        self._facts = facts.FactCache(CACHE_SIZE)

    @classmethod
    def shared(cls, settings: cinder_settings.Settings) -> 'Connection':
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

    def volume_type(self, volume_id: str, deadline: float) -> Fact:
        """``GET /volumes/<id>``: the volume's type name, or the status.

        :param deadline: ``time.monotonic()`` by which to answer.
        :raises NoAnswer: :class:`Unavailable` or :class:`Refused`.
        """
        return self._remember(('volume', volume_id), deadline,
                              f'/volumes/{volume_id}', 'volume')

    def default_type(self, deadline: float) -> Fact:
        """``GET /types/default``: Cinder's default volume type name.

        :raises NoAnswer: :class:`Unavailable` or :class:`Refused`.
        """
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
            raise Unavailable(f'no answer from Cinder at {self.where()} '
                              f'in time') from None
        except NoAnswer as exc:
            # A fresh one: threads that waited for the same fact share the
            # exception object, and would share its traceback.
            raise type(exc)(exc.detail) from None

    def _fetch(self, path: str, member: str, deadline: float) -> Fact:
        response = self._get(path, deadline)
        status = response.status_code
        if status == 401:
            self._refuse(f'Cinder at {self.where()} rejected the store '
                         f'user\'s token (HTTP 401)')
        if status in (403, 404):
            return Fact(status)
        if status != 200:
            raise Unavailable(f'Cinder at {self.where()} answered HTTP '
                              f'{status} to GET {path}')
        try:
            name = response.json()[member]['volume_type' if member == 'volume'
                                           else 'name']
        except (ValueError, KeyError, TypeError):
            raise Unavailable(f'Cinder at {self.where()} answered GET {path} '
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
                raise Unavailable(failure) from None
            except ks_exc.RetriableConnectionFailure as exc:
                failure = describe(exc)
                continue
            except ks_exc.SSLError as exc:
                raise Unavailable(f'{describe(exc)} (see the store\'s '
                                  f'cinder_ca_certificates_file and '
                                  f'cinder_api_insecure)') from None
            except ks_exc.EndpointNotFound:
                raise Unavailable(self._no_endpoint()) from None
            except ks_exc.ClientException as exc:
                raise Unavailable(describe(exc)) from None
            if _retried(response.status_code):
                failure = (f'Cinder at {self.where()} answered HTTP '
                           f'{response.status_code}')
                continue
            return response
        raise Unavailable(f'{failure}; gave up')

    def _connect(self, deadline: float) -> tuple[ks_session.Session, str]:
        """The session and the volume endpoint; authenticates once."""
        if not self._lock.acquire(timeout=max(left(deadline), 0)):
            raise Unavailable(f'no token from Keystone at '
                              f'{self._keystone()} in time')
        try:
            if self._refused:
                raise Refused(self._refused)
            if self._session is None:
                self._session = ks_session.Session(
                    auth=self.settings.auth(), verify=self.settings.verify,
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
        raise Refused(detail)

    def _keystone(self) -> str:
        return urls.mask_url(self.settings.auth_url)


def left(deadline: float) -> float:
    """Seconds until ``deadline`` (a ``time.monotonic()`` value)."""
    return deadline - time.monotonic()


def describe(exc: Exception) -> str:
    """An exception as a sentence, URL credentials masked."""
    return urls.mask_text(str(exc) or type(exc).__name__)


def _retried(status: int | None) -> bool:
    return status is not None and (status == 429 or status >= 500)
