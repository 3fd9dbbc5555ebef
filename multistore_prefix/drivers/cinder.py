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

"""Cinder stores: ``cinder://<store_id>/<volume_id>``, and their lookup.

In a multi-store deployment glance_store writes the store identifier as the
URL's authority, so the claim is the store id itself.  Canonical URLs
compare authorities in lower case: stores ``Fast`` and ``fast`` would claim
the same prefix and be reported as a conflict.

Single-store locations, ``cinder://<volume_id>``, name no store.  As Glance
does, a store claims such a volume when Cinder says the volume's type is
the store's ``cinder_volume_type`` (Cinder's default type when that is
unset).  :class:`CinderLookup` asks Cinder's REST API with the store's own
service credentials (:mod:`.cinder_client`), so it needs them set; Glance
can also use the requesting user's token, which an offline backfill does
not have.  The endpoint comes from ``cinder_endpoint_template`` when it is
set, else from the token's catalog per ``cinder_catalog_info`` and
``cinder_os_region_name`` (the defaults give the endpoint glance_store's
cinderclient finds: ``volumev3`` public in the region).

glance_store's cinder module imports os-brick and cinderclient just to
declare its options, so those packages are an extra of this one.  Without
them the prefix still works (it needs no option); only the lookup, which
needs the options, is off, and legacy locations say what to install.
"""

import logging
import re
import threading
import time

from multistore_prefix.drivers import base
from multistore_prefix.drivers import cinder_client as client
from multistore_prefix import exceptions
from multistore_prefix import urls

LOG = logging.getLogger(__name__)

_CREDENTIALS_FIX = (
    'lookups of legacy cinder://<volume id> locations ask Cinder as the '
    'store\'s own service user: set cinder_store_auth_address, '
    'cinder_store_user_name, cinder_store_password and '
    'cinder_store_project_name (or cinder_store_application_credential_id '
    'and cinder_store_application_credential_secret) in the store\'s group '
    'or in [backend_defaults]')
# keystoneauth's Password arguments, from the store's options.
_PASSWORD_OPTIONS = {
    'username': 'cinder_store_user_name',
    'password': 'cinder_store_password',
    'user_domain_name': 'cinder_store_user_domain_name',
    'project_name': 'cinder_store_project_name',
    'project_domain_name': 'cinder_store_project_domain_name'}
INSTALL = "pip install 'multistore-prefix[cinder]'"
# Cinder volume ids are UUIDs, written in lower case (as canonical URLs are).
_UUID = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}'
                   r'-[0-9a-f]{12}\Z')


class CinderDriver(base.Driver):
    """Claims ``cinder://<store_id>`` for the store it is configured as."""

    glance_store_entry = 'cinder'
    schemes_without_glance_store = ('cinder',)
    import_fix = INSTALL
    #: why glance_store's cinder driver cannot be loaded (``None``: it can).
    missing: str | None = None

    def compute_prefixes(self) -> list[base.Prefix]:
        # glance_store writes the store id verbatim as the URL's host.
        self.url_host(None, self.store_id, 'cinder',
                      'rename the store in [DEFAULT]/enabled_backends using '
                      'letters, digits, "-", "_" and "."')
        return [base.Prefix('cinder', self.store_id)]

    def without_glance_store(self, error: exceptions.StoreConfigError):
        """Prefixes need no cinder option: only the lookups are off."""
        self.missing = error.reason
        LOG.warning('Store %s: %s; its cinder://%s/<volume id> locations '
                    'resolve, legacy cinder://<volume id> ones stay '
                    'unresolved (they need a Cinder lookup); %s',
                    self.store_id, error.reason, self.store_id, INSTALL)
        return None

    def unowned(self, canon: urls.CanonicalURL) -> tuple[str, str] | None:
        if not legacy_volume(canon):
            return None
        if self.missing is None:
            return (base.NO_STORE_IN_URL,
                    'a cinder://<volume id> location names no store; only '
                    'Cinder can tell, by the volume\'s type, and it was not '
                    'asked: backfill asks it unless run with '
                    '--no-backend-lookups')
        return (base.NOT_INSTALLED,
                'a cinder://<volume id> location names no store, and the '
                'Cinder lookup that could tell needs glance_store\'s cinder '
                f'options, which need os-brick and python-cinderclient: '
                f'{INSTALL}')

    def backend_lookup(self) -> 'CinderLookup | None':
        """The store's Cinder lookup, built offline from its options.

        A store whose options cannot make a lookup (no service
        credentials, a bad ``cinder_catalog_info``...) still gets one that
        answers each URL ``UNAVAILABLE`` with the option to set, and logs
        it once, at the first lookup (commands that never look up stay
        quiet).  Without the ``cinder`` extra there is none.
        """
        if self.missing is not None:
            return None
        try:
            settings = self._settings()
            volume_type = self.option('cinder_volume_type')
        except exceptions.StoreConfigError as exc:
            return CinderLookup(self.store_id, None, None, problem=str(exc))
        return CinderLookup(self.store_id, volume_type or None,
                            client.Connection.shared(settings))

    def _settings(self) -> client.Settings:
        """:raises StoreConfigError: naming the option missing or bad."""
        # As glance_store: application credentials win when both are set.
        plugin = 'ApplicationCredential'
        options = {name: self.option(f'cinder_store_{name}') for name in (
            'application_credential_id', 'application_credential_secret')}
        needed = ['cinder_store_auth_address']
        if not all(options.values()):
            plugin = 'Password'
            needed += ['cinder_store_user_name', 'cinder_store_password',
                       'cinder_store_project_name']
            options = {argument: self.option(name) for argument, name in
                       _PASSWORD_OPTIONS.items()}
        for name in needed:
            if not self.option(name):
                raise self.error(name, 'is not set', _CREDENTIALS_FIX)
        template = self.option('cinder_endpoint_template') or None
        if template:
            self._check_template(template)
        return client.Settings(
            auth_url=self.option('cinder_store_auth_address'),
            auth=(plugin, tuple(sorted(options.items()))),
            endpoint_template=template,
            catalog=self._catalog_info(),
            region=self.option('cinder_os_region_name') or None,
            verify=self._verify(),
            retries=self.option('cinder_http_retries'))

    def _catalog_info(self) -> tuple[str, str | None, str]:
        info = self.option('cinder_catalog_info') or ''
        parts = info.split(':')
        fix = ('write <service_type>:<service_name>:<interface>, e.g. '
               'volumev3::publicURL')
        if len(parts) != 3 or not parts[0] or not parts[2]:
            raise self.error('cinder_catalog_info',
                             f'{info!r} is not of the form '
                             f'<service_type>:<service_name>:<interface>',
                             fix)
        service_type, service_name, interface = parts
        # It names interfaces the keystone v2 way (publicURL).
        interface = interface.removesuffix('URL')
        if interface not in ('public', 'internal', 'admin'):
            raise self.error('cinder_catalog_info',
                             f'unknown interface {parts[2]!r}',
                             'use publicURL, internalURL or adminURL')
        return service_type, service_name or None, interface

    def _check_template(self, template: str) -> None:
        option = 'cinder_endpoint_template'
        if not template.lower().startswith(('http://', 'https://')):
            raise self.error(option, 'is not an http(s) URL',
                             'write e.g. http://cinder.example.com:8776/v3/'
                             '%(project_id)s')
        try:
            template % dict.fromkeys(client.TEMPLATE_KEYS, 'x')
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


class CinderLookup:
    """Whether a legacy ``cinder://<volume_id>`` belongs to one store.

    By the rule of the module (``volume_type`` ``None``: Cinder's default
    type); an owned location becomes ``cinder://<store_id>/<volume_id>``.
    Two stores that both leave ``cinder_volume_type`` unset both claim the
    default type: a conflict for the caller.

    Answers: the store; another volume type (``ELSEWHERE``); HTTP 404
    (``NOT_FOUND``); HTTP 401/403 on the volume or the token
    (``FORBIDDEN``); timeouts, connection errors, 5xx and 429 after
    ``cinder_http_retries`` retries, anything else (``UNAVAILABLE``, also
    every answer when ``problem`` says why the options make no lookup).
    Every detail names the store and the volume, never a secret.  A
    not-found or forbidden volume is an answer, cached like a type; an
    unavailable Cinder is not.  Once Keystone or Cinder refuses the
    credentials, no more requests are made with them.  Thread-safe.
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
        return legacy_volume(canon)

    def lookup(self, canon: urls.CanonicalURL,
               timeout: float) -> base.Resolution:
        volume_id = canon.authority
        where = f'store {self.store_id!r}, volume {volume_id}'
        if self.problem is not None:
            if not self._warned.is_set():
                self._warned.set()
                LOG.warning('No Cinder lookups for store %s: %s',
                            self.store_id, self.problem)
            return base.Resolution(None, base.UNAVAILABLE,
                                   f'{where}: {self.problem}')
        deadline = time.monotonic() + timeout
        try:
            return self._answer(volume_id, where, deadline)
        except client.NoAnswer as exc:
            return base.Resolution(None, exc.reason, f'{where}: {exc.detail}')
        except Exception as exc:  # a lookup never raises
            LOG.warning('Cinder lookup of %s failed: %s', where,
                        client.describe(exc),
                        exc_info=LOG.isEnabledFor(logging.DEBUG))
            return base.Resolution(None, base.UNAVAILABLE, f'{where}: '
                                   f'unexpected {type(exc).__name__}')

    def _answer(self, volume_id: str, where: str,
                deadline: float) -> base.Resolution:
        volume = self._connection.volume_type(volume_id, deadline)
        if volume.status == 404:
            return base.Resolution(
                None, base.NOT_FOUND,
                detail=f'{where}: Cinder at {self._connection.where()} has '
                       f'no such volume that the store\'s user can see '
                       f'(HTTP 404)')
        if volume.status == 403:
            return base.Resolution(
                None, base.FORBIDDEN,
                detail=f'{where}: Cinder at {self._connection.where()} '
                       f'refused to show the volume to the store\'s user '
                       f'(HTTP 403)')
        wanted, source = self.volume_type, 'its cinder_volume_type'
        if wanted is None:
            default = self._connection.default_type(deadline)
            if default.status == 403:
                return base.Resolution(
                    None, base.FORBIDDEN,
                    detail=f'{where}: Cinder refused to tell the default '
                           f'volume type (HTTP 403); set the store\'s '
                           f'cinder_volume_type')
            if default.status == 404:
                return base.Resolution(
                    None, base.ELSEWHERE,
                    detail=f'{where}: the store sets no cinder_volume_type '
                           f'and Cinder has no default volume type, so the '
                           f'store claims no volume')
            wanted, source = default.name, 'Cinder\'s default type'
        if volume.name == wanted:
            return base.Resolution(
                self.store_id, url=f'cinder://{self.store_id}/{volume_id}',
                detail=f'{where}: volume type {volume.name!r} is {source}')
        return base.Resolution(
            None, base.ELSEWHERE,
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
