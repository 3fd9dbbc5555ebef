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
