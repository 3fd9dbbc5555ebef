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

"""Clients of the stores' backends, for the lookups that need one.

A store driver reads its options and returns its prefixes; a few legacy
URL forms name no store, and only the backend can tell whose they are
(see :class:`multistore_prefix.drivers.base.BackendLookup`).  The clients
those lookups use live here, one module per backend, apart from the
drivers: they talk to the network, the drivers never do.
"""
