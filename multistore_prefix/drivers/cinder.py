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
unset): see :mod:`multistore_prefix.drivers.cinder_lookup`.  That asks
Cinder's REST API with the store's own service credentials, so it needs
them set; Glance can also use the requesting user's token, which an
offline backfill does not have.
The endpoint comes from ``cinder_endpoint_template`` when it is set, else
from the token's catalog per ``cinder_catalog_info`` and
``cinder_os_region_name`` (glance_store's cinderclient, with service
credentials, looks up ``volumev3`` public in the region: the defaults give
the same endpoint).

glance_store's cinder module imports os-brick and cinderclient just to
declare its options, so those packages are an extra of this one.  Without
them the prefix still works (it needs no option); only the lookup, which
needs the options, is off, and legacy locations say what to install.
"""

import logging

from multistore_prefix.backends.cinder import client
from multistore_prefix.backends.cinder import settings as cinder_settings
from multistore_prefix.drivers import base
from multistore_prefix.drivers import cinder_lookup
from multistore_prefix import exceptions
from multistore_prefix import urls

LOG = logging.getLogger(__name__)

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
INSTALL = "pip install 'multistore-prefix[cinder]'"


class CinderDriver(base.Driver):
    """Claims ``cinder://<store_id>`` for the store it is configured as."""

    glance_store_entry = 'cinder'
    schemes_without_glance_store = ('cinder',)
    #: why glance_store's cinder driver cannot be loaded (``None``: it can).
    missing: str | None = None

    def compute_prefixes(self) -> list[base.Prefix]:
        # glance_store writes the store id verbatim as the URL's host.
        self.url_host(None, self.store_id, 'cinder',
                      'rename the store in [DEFAULT]/enabled_backends using '
                      'letters, digits, "-", "_" and "."')
        return [base.Prefix('cinder', self.store_id)]

    def import_fix(self) -> str:
        return INSTALL

    def without_glance_store(self, error: exceptions.StoreConfigError):
        """Prefixes need no cinder option: only the lookups are off."""
        self.missing = error.reason
        LOG.warning('Store %s: %s; its cinder://%s/<volume id> locations '
                    'resolve, legacy cinder://<volume id> ones stay '
                    'unresolved (they need a Cinder lookup); %s',
                    self.store_id, error.reason, self.store_id, INSTALL)
        return None

    def unowned(self, canon: urls.CanonicalURL) -> tuple[str, str] | None:
        """A legacy ``cinder://<volume id>`` names no store."""
        if not cinder_lookup.legacy_volume(canon):
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

    def backend_lookup(self) -> cinder_lookup.CinderLookup | None:
        """The store's Cinder lookup, built offline from its options.

        A store whose options cannot make a lookup (no service
        credentials, a bad ``cinder_catalog_info``...) still gets one: it
        wants the same URLs and answers each ``UNAVAILABLE`` with the
        option to set, so the report says why, and logs that once, at the
        first lookup (commands that never look up stay quiet).  Prefix
        resolution never depends on it.  Without the ``cinder`` extra there
        is none (see :meth:`unowned`).
        """
        if self.missing is not None:
            return None
        try:
            settings = self._settings()
            volume_type = (self.option('cinder_volume_type') or '').strip()
        except exceptions.StoreConfigError as exc:
            return cinder_lookup.CinderLookup(self.store_id, None, None,
                                              problem=str(exc))
        return cinder_lookup.CinderLookup(
            self.store_id, volume_type or None,
            client.Connection.shared(settings))

    def _settings(self) -> cinder_settings.Settings:
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
        return cinder_settings.Settings(
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
