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

"""Swift stores, single-tenant and multi-tenant.

Single-tenant locations live under the auth address of the account that
``default_swift_reference`` names in ``swift_store_config_file`` (or, with
no file, the deprecated ``swift_store_auth_address``):
``swift+https://<auth host>/<auth path>/<container>/<image>``, and
``swift+config://<reference>/<container>/<image>`` when the file is used.
With ``swift_store_multiple_containers_seed`` the containers are
``<container>_<first characters of the image id>``; images stored before
the seed was set stay in ``<container>``, so both are claimed.

Multi-tenant locations live in each tenant's account on the storage
endpoint, in container ``<container>_<image id>``: the claim is on the
container name, under ``swift_store_endpoint``'s host when it is set and
under any host otherwise.

The accounts file is parsed here, not through glance_store's SwiftParams,
whose parser is process-global and merges every file it ever read.  Only
``auth_address`` is read from it: user names and keys never reach this
module, and errors about the file quote line numbers, never lines.
"""

import configparser
import os

from multistore_prefix.drivers import base
from multistore_prefix import urls


class SwiftDriver(base.Driver):
    glance_store_entry = 'swift'
    endpoint_schemes = ('swift+http', 'swift+https', 'swift+https')

    def compute_prefixes(self) -> list[base.Prefix]:
        container = self.require(
            'swift_store_container',
            'set it to the container (or container prefix) of the images')
        container = container.strip('/')
        if not container or '/' in container:
            raise self.error('swift_store_container',
                             f'{container!r} is not a container name',
                             'set it to the container name alone')
        if self.option('swift_store_multi_tenant'):
            return self._multi_tenant(container)
        seeded = self.option('swift_store_multiple_containers_seed') > 0
        names = [(container, False)] + ([(container + '_', True)]
                                        if seeded else [])
        reference = self.require(
            'default_swift_reference',
            'set it to the section of swift_store_config_file that holds '
            'the account of the images')
        scheme, canon, from_file = self._auth_url(reference)
        prefixes = [base.Prefix(scheme, canon.authority,
                                f'{canon.path}/{name}', open=is_open)
                    for name, is_open in names]
        if from_file:
            # glance_store writes swift+config:// references only then.
            self.url_host('default_swift_reference', reference,
                          'swift+config', 'name the section with letters, '
                          'digits, "-", "_" and "."')
            prefixes += [base.Prefix('swift+config', reference, f'/{name}',
                                     open=is_open)
                         for name, is_open in names]
        return prefixes

    def _multi_tenant(self, container: str) -> list[base.Prefix]:
        if self.option('swift_store_config_file'):
            raise self.error(
                'swift_store_multi_tenant',
                'cannot be used with swift_store_config_file (glance_store '
                'refuses the pair)', 'unset one of them')
        endpoint = self.option('swift_store_endpoint')
        if not endpoint:
            return [base.Prefix('swift+https', None, '', container=container)]
        scheme, canon = self.endpoint(
            'swift_store_endpoint', endpoint,
            'set it to http(s)://<host>[:<port>]/<path>')
        return [base.Prefix(scheme, canon.authority, '', container=container)]

    def _auth_url(self, reference: str
                  ) -> tuple[str, urls.CanonicalURL, bool]:
        # (scheme, canonical auth URL, whether it came from the file)
        config_file = self.option('swift_store_config_file')
        if not config_file:
            address = self.require(
                'swift_store_auth_address',
                'set swift_store_config_file and default_swift_reference '
                '(or the deprecated swift_store_auth_address)')
            return *self.endpoint(
                'swift_store_auth_address', address,
                'set it to http(s)://<host>[:<port>]/<path>'), False
        option = 'swift_store_config_file'
        parser = self._read_accounts(config_file)
        if not parser.has_section(reference):
            raise self.error(
                'default_swift_reference',
                f'{reference!r} is not a section of {config_file}',
                f'set it to one of: {", ".join(parser.sections()) or "-"}')
        fix = (f'set auth_address in [{reference}] of {config_file} to '
               f'http(s)://<host>[:<port>]/<path>')
        address = parser.get(reference, 'auth_address', fallback='').strip()
        if address[:1] in ('"', "'"):
            # glance_store's SwiftConfigParser drops one pair of quotes.
            if len(address) < 2 or address[-1] != address[0]:
                raise self.error(option, f'auth_address of [{reference}] '
                                 f'has an unclosed quote', fix)
            address = address[1:-1].strip()
        if not address:
            raise self.error(option, f'[{reference}] has no auth_address',
                             fix)
        return *self.endpoint(option, address, fix), True

    def _read_accounts(self, config_file: str) -> configparser.RawConfigParser:
        # The accounts file, found where glance_store looks for it.
        option = 'swift_store_config_file'
        path = self.conf.find_file(config_file)
        if path is None and os.path.isabs(config_file):
            path = config_file
        if path is None or not os.path.isfile(path):
            raise self.error(
                option, f'{config_file} not found',
                'give its absolute path, or put it beside the configuration '
                'files (oslo.config also looks in ~/.glance, ~, /etc/glance '
                'and /etc)')
        parser = configparser.RawConfigParser()
        try:
            with open(path) as accounts:
                parser.read_file(accounts)
        except OSError as exc:
            raise self.error(option, f'{path} cannot be read: '
                             f'{exc.strerror}', 'check its permissions'
                             ) from None
        except configparser.Error as exc:
            # The offending line may hold a key: name only its number.
            raise self.error(option, f'{path}: {type(exc).__name__} at line '
                             f'{_line_number(exc)}',
                             'write "name = value" lines under [reference] '
                             'sections') from None
        return parser


def _line_number(exc: configparser.Error):
    if getattr(exc, 'lineno', None):
        return exc.lineno
    errors = getattr(exc, 'errors', None)
    return errors[0][0] if errors else '?'
