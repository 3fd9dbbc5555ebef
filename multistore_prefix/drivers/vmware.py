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

"""VMware datastore stores: ``vsphere://<host>/folder/<image dir>/<image>``.

Every datastore of ``vmware_datastores`` is a claim of its own: the same
folder on the same vCenter, told apart by the ``dcPath`` and ``dsName``
query parameters glance_store writes (url-encoded, compared decoded), so
two stores that share a vCenter and a folder each get their own images.

glance_store's own ``url_prefix`` for this store drops ``/folder`` when
``vmware_store_image_dir`` is absolute, as its default is (``os.path.join``
discards what comes before an absolute path), so Glance's prefix match
never finds those locations; the prefix here is the one the locations are
written with.  IPv6 hosts are written in brackets.
"""

import ipaddress

from multistore_prefix.drivers import base
from multistore_prefix import urls

# The fixed first path segment of every vSphere datastore location.
DS_URL_PREFIX = '/folder'


class VMwareDriver(base.Driver):
    glance_store_entry = 'vmware'

    def compute_prefixes(self) -> list[base.Prefix]:
        host = self.require('vmware_server_host',
                            'set it to the vCenter or ESXi address')
        datastores = [d for d in self.option('vmware_datastores') or []
                      if d.strip()]
        if not datastores:
            raise self.error('vmware_datastores', 'is not set',
                             'add a line vmware_datastores = '
                             '<datacenter_path>:<datastore_name>[:<weight>] '
                             'for each datastore')
        image_dir = (self.option('vmware_store_image_dir') or '').strip('/')
        canon = self._base_url(host, image_dir)
        pairs = []
        for item in datastores:
            pair = self._datastore(item)
            if pair not in pairs:
                pairs.append(pair)
        return [base.Prefix('vsphere', canon.authority, canon.path,
                            query=(('dcPath', dc), ('dsName', ds)))
                for dc, ds in pairs]

    def _base_url(self, host: str, image_dir: str) -> urls.CanonicalURL:
        try:
            ipaddress.IPv6Address(host)
            authority = f'[{host}]'
        except ValueError:
            authority = host
        try:
            urls.canonicalize(f'vsphere://{authority}')
        except urls.InvalidURL as exc:
            raise self.error('vmware_server_host',
                             f'{host!r} cannot be written in a URL: '
                             f'{exc.reason}',
                             'set it to a host name or an IP address'
                             ) from None
        try:
            return urls.canonicalize(
                f'vsphere://{authority}{DS_URL_PREFIX}/{image_dir}')
        except urls.InvalidURL as exc:
            raise self.error('vmware_store_image_dir',
                             f'{image_dir!r} is not a valid path: '
                             f'{exc.reason}',
                             'set it to a directory of the datastore'
                             ) from None

    def _datastore(self, item: str) -> tuple[str, str]:
        # (datacenter path, datastore name), the way glance_store reads it.
        fix = ('write it as <datacenter_path>:<datastore_name>[:<weight>], '
               'e.g. dc1:datastore1:100')
        parts = [part.strip() for part in item.rsplit(':', 2)]
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise self.error('vmware_datastores',
                             f'{item!r} names no datacenter and datastore',
                             fix)
        if len(parts) == 3 and parts[2]:
            try:
                int(parts[2])
            except ValueError:
                raise self.error('vmware_datastores',
                                 f'bad weight {parts[2]!r} in {item!r}',
                                 fix) from None
        return parts[0], parts[1]
