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
the same prefix and be reported as a conflict.  Single-store locations,
``cinder://<volume_id>``, name no store and stay unresolved here.

glance_store's cinder module imports os-brick and cinderclient just to
declare its options, so those packages are an extra of this one.
"""

from multistore_prefix.drivers import base


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
