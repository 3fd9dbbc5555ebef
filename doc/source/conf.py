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

"""Sphinx configuration of multistore-prefix's documentation.

The references are generated from the code: the options
(oslo_config.sphinxext, and the sample file by sphinxconfiggen), the
command line (cliff.sphinxext), the store drivers (stevedore.sphinxext)
and the release notes (reno.sphinxext).  The status machines are drawn
from ``multistore-prefix status-machine --dot`` at every build.
"""

import importlib.metadata
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATED = os.path.join(HERE, '_generated')

extensions = [
    'sphinx.ext.graphviz',
    'oslo_config.sphinxext',
    'oslo_config.sphinxconfiggen',
    'cliff.sphinxext',
    'stevedore.sphinxext',
    'reno.sphinxext',
]

project = 'multistore-prefix'
copyright = 'multistore-prefix developers'
master_doc = 'index'
exclude_patterns = ['_generated']

version = release = importlib.metadata.version('multistore-prefix')
# Sphinx's own theme: openstackdocstheme brands pages as docs.openstack.org
# (its search and analytics scripts), where this project is not published.
html_theme = 'alabaster'

# oslo_config.sphinxconfiggen: _generated/multistore-prefix.conf.sample
config_generator_config_file = os.path.join(
    HERE, '..', '..', 'etc', 'oslo-config-generator',
    'multistore-prefix.conf')
sample_config_basename = '_generated/multistore-prefix'

# cliff.sphinxext
autoprogram_cliff_application = 'multistore-prefix'

graphviz_output_format = 'svg'

#: (machine, file) drawn by status-machine --dot at every build.
MACHINES = (('image', 'image-status.dot'),
            ('location', 'location-status.dot'))


def draw_status_machines(app):
    os.makedirs(GENERATED, exist_ok=True)
    for machine, name in MACHINES:
        subprocess.run(
            [sys.executable, '-m', 'multistore_prefix.cmd.main',
             'status-machine', '--machine', machine, '--dot',
             os.path.join(GENERATED, name), '-f', 'value'],
            check=True, stdout=subprocess.DEVNULL)


def setup(app):
    app.connect('builder-inited', draw_status_machines)
