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

"""The cinder store's lookup: whose is a legacy ``cinder://<volume id>``.

The cinder driver (:mod:`multistore_prefix.drivers.cinder`) builds one per
store from its options; it asks Cinder through
:mod:`multistore_prefix.backends.cinder` and turns what Cinder says into
:class:`~multistore_prefix.drivers.base.LookupAnswer` values.
"""

import logging
import re
import threading
import time

from multistore_prefix.backends.cinder import client
from multistore_prefix.drivers import base
from multistore_prefix import urls

LOG = logging.getLogger(__name__)

# Cinder volume ids are UUIDs, written in lower case (as canonical URLs are).
_UUID = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}'
                   r'-[0-9a-f]{12}\Z')


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
    (see :mod:`multistore_prefix.backends.cinder`); a not-found or
    forbidden volume is an answer too, an unavailable Cinder is not.  Once
    Keystone or Cinder refuses the credentials, no more requests are made
    with them.  Safe to call from many threads.

    :ivar store_id: the store identifier from ``enabled_backends``.
    :ivar volume_type: the store's ``cinder_volume_type``; ``None`` for
        Cinder's default type.
    :ivar problem: why the store's options cannot make a lookup (then
        every answer is ``UNAVAILABLE`` with it); ``None`` when they can.
    """

    def __init__(self, store_id: str, volume_type: str | None,
                 connection: client.Connection | None,
                 problem: str | None = None):
        self.store_id = store_id
        self.volume_type = volume_type
        self.problem = problem
        self._connection = connection
        self._warned = threading.Event()

    def wants(self, canon: urls.CanonicalURL) -> bool:
        """A single-store location (see :func:`legacy_volume`), only."""
        return legacy_volume(canon)

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
        except client.NoAnswer as exc:
            reason = (base.FORBIDDEN if isinstance(exc, client.Refused)
                      else base.UNAVAILABLE)
            return base.LookupAnswer(None, reason=reason,
                                     detail=f'{where}: {exc.detail}')
        except Exception as exc:  # a lookup never raises
            LOG.warning('Cinder lookup of %s failed: %s', where,
                        client.describe(exc),
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


def legacy_volume(canon: urls.CanonicalURL) -> bool:
    """Whether ``canon`` is a single-store ``cinder://<volume id>``.

    Only a UUID counts as a volume id (Cinder makes no other), so a
    truncated new-style URL (``cinder://fast``) is not one.
    """
    return (canon.scheme == 'cinder' and not canon.path
            and not canon.query and not canon.has_credentials
            and _UUID.match(canon.authority) is not None)
