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

"""The domain: images, their status machines, and the repository layers.

Each layer is a proxy over the one below: what it does not change, it
hands down (as Glance's ``domain/proxy.py`` does).
"""


class Proxy:
    """A layer over ``base``: what it does not define is ``base``'s."""

    _own = frozenset(('base',))

    def __init__(self, base):
        self.base = base

    def __getattr__(self, name):
        if name in self._own:  # not set yet (copy, pickle)
            raise AttributeError(name)
        return getattr(self.base, name)
