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

"""Tests on a three-node MariaDB Galera cluster (``tools/galera-tests``).

The cluster is started fresh on loopback for the session (see
:mod:`tests.galera.cluster`); without mariadb-server and galera-4 these
tests skip, or fail when ``MSP_TEST_REQUIRE_GALERA=1``.
"""
