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

"""HTTP stores: read-only, they own the http(s) URLs nobody else owns.

glance_store's http store serves any ``http://`` or ``https://`` location
(images registered with ``--location`` or web-download), so its claim is
open on the authority and the path: the location map tries such claims only
after every exact prefix has missed.
"""

from multistore_prefix.drivers import base


class HttpDriver(base.Driver):
    glance_store_entry = 'http'

    def compute_prefixes(self) -> list[base.Prefix]:
        return [base.Prefix('http', None)]
