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

"""Fixtures for unit tests: real oslo.config files written to tmp_path."""

import textwrap

from oslo_config import cfg
import pytest


@pytest.fixture
def make_conf(tmp_path):
    """Write a glance-api.conf and return a parsed ConfigOpts for it."""
    def make(text: str, name: str = 'glance-api.conf') -> cfg.ConfigOpts:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        conf = cfg.ConfigOpts()
        conf(['--config-file', str(path)], project='multistore-prefix',
             default_config_files=[])
        return conf
    return make
