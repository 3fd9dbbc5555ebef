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

"""Filesystem stores: one prefix per data directory.

glance_store prefixes only the highest-priority directory of
``filesystem_store_datadirs``; images live in all of them, so every one is
a prefix here.
"""

import posixpath

from multistore_prefix.drivers import base


class FileDriver(base.Driver):
    glance_store_entry = 'file'

    def compute_prefixes(self) -> list[base.Prefix]:
        return [base.Prefix('file', '', path) for path in self.datadirs()]

    def datadirs(self, by_priority: bool = False) -> list[str]:
        """The store's directories, normalized, in configuration order.

        ``by_priority``: highest priority first, glance_store's order.
        """
        datadirs = self.option('filesystem_store_datadirs') or []
        # glance_store wants filesystem_store_datadir blanked out (its
        # default is not empty) when filesystem_store_datadirs is used.
        if (datadirs and self.option('filesystem_store_datadir')
                and self.set_by_operator('filesystem_store_datadir')):
            raise self.error(
                'filesystem_store_datadir',
                'is set together with filesystem_store_datadirs',
                'set only one of them')
        if datadirs:
            options = [('filesystem_store_datadirs', *self._split_priority(d))
                       for d in datadirs]
            if by_priority:
                options.sort(key=lambda o: -o[2])
        else:
            options = [('filesystem_store_datadir',
                        self.option('filesystem_store_datadir'), 0)]
        paths = []
        for option, path, _priority in options:
            if not path or not path.strip():
                raise self.error(option, 'names an empty directory',
                                 'set it to the absolute path of the store\'s '
                                 'image directory')
            path = path.strip()
            if not path.startswith('/'):
                raise self.error(option, f'{path!r} is not an absolute path',
                                 'use an absolute path such as '
                                 '/var/lib/glance/images')
            path = posixpath.normpath(path)
            if path.startswith('//'):
                path = path[1:]
            if path not in paths:
                paths.append(path)
        return paths

    def _split_priority(self, item: str) -> tuple[str, int]:
        # glance_store's format: "<path>[:<priority>]", priority an integer.
        path, sep, priority = item.rpartition(':')
        if not sep:
            return item, 0
        try:
            return path, int(priority.strip() or 0)
        except ValueError:
            raise self.error('filesystem_store_datadirs',
                             f'bad priority {priority!r} in {item!r}',
                             'write "<directory>:<integer priority>"'
                             ) from None
