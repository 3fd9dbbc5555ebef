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

"""Run the multistore-prefix command as if the cinder extra were missing.

``python no_cinder_extra.py ARGS...`` is ``multistore-prefix ARGS...``
where os-brick and python-cinderclient cannot be imported, as after a plain
``pip install multistore-prefix``: an import blocker on ``sys.meta_path``
answers every import of them with ModuleNotFoundError, however glance_store
reaches them.
"""

import importlib.abc
import sys

BLOCKED = ('os_brick', 'cinderclient')


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in BLOCKED:
            raise ModuleNotFoundError(f'No module named {name!r}', name=name)
        return None


sys.meta_path.insert(0, _Blocker())

if __name__ == '__main__':
    from multistore_prefix.cmd import main
    sys.exit(main.main())
