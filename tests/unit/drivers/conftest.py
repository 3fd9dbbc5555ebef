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

"""Fixtures for the driver tests: real files in tmp_path, real ConfigOpts."""

import textwrap

from glance_store import driver as glance_store_driver
from oslo_config import cfg
import pytest

from multistore_prefix import exceptions
from multistore_prefix import location_map


@pytest.fixture
def write(tmp_path):
    """Write ``text`` (dedented) to ``tmp_path/name``; return the path."""
    def write(name: str, text: str, dedent: bool = True) -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if dedent else text)
        return str(path)
    return write


@pytest.fixture
def load_conf(write):
    """Parse a glance-api.conf the way glance-api does."""
    def load(text: str, name: str = 'glance-api.conf') -> cfg.ConfigOpts:
        conf = cfg.ConfigOpts()
        conf(['--config-file', write(name, text)], project='glance',
             default_config_files=[])
        return conf
    return load


@pytest.fixture
def build_map(load_conf):
    """``LocationMap.from_config`` on a glance-api.conf text."""
    def build(text: str) -> location_map.LocationMap:
        return location_map.LocationMap.from_config(load_conf(text))
    return build


@pytest.fixture
def config_error(build_map):
    """The message of the StoreConfigError a configuration fails with.

    It checks that the message opens with ``[store]/option`` (or names the
    store when no single option is at fault).
    """
    def fail(text: str, store: str, option: str | None) -> str:
        with pytest.raises(exceptions.StoreConfigError) as info:
            build_map(text)
        message = str(info.value)
        where = f'[{store}]/{option}:' if option else f'store {store!r}:'
        assert message.startswith(where), message
        assert info.value.store_id == store
        assert info.value.option == option
        return message
    return fail


@pytest.fixture
def glance_store_conf(monkeypatch):
    """Let glance_store's own Store objects use ``conf`` for everything.

    Its BackendGroupConfiguration registers options on the global
    ``cfg.CONF``; pointing that at the test's conf keeps the process clean.
    Build the location map first: a glance_store Store resets the store
    group's defaults to ``None`` on the conf it is given.
    """
    def use(conf: cfg.ConfigOpts) -> cfg.ConfigOpts:
        monkeypatch.setattr(glance_store_driver, 'CONF', conf)
        return conf
    return use


def prefixes(the_map: location_map.LocationMap, store: str) -> list[str]:
    """A store's claims as an operator reads them."""
    return [str(p) for p in the_map.stores[store].prefixes]


@pytest.fixture
def claims():
    return prefixes
