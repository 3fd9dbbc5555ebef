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

"""Errors of multistore-prefix.

Each error is a small class carrying the values that explain it, so callers
can act on them and messages can name the thing and the fix.
"""


class MultistorePrefixError(Exception):
    """Base class of every error this package raises on purpose."""


class StoreConfigError(MultistorePrefixError):
    """A store's configuration cannot give its URL prefixes.

    :ivar option: the option at fault (``None`` when it is not one option).
    :ivar fix: what the operator should set or do.
    """

    def __init__(self, store_id: str, option: str | None, reason: str,
                 fix: str | None = None):
        self.store_id = store_id
        self.option = option
        self.reason = reason
        self.fix = fix
        where = (f'[{store_id}]/{option}' if option
                 else f'store {store_id!r}')
        msg = f'{where}: {reason}'
        if fix:
            msg += f'; {fix}'
        super().__init__(msg)


class UnknownStoreType(StoreConfigError):
    """``enabled_backends`` names a store type no driver is installed for."""

    def __init__(self, store_id: str, store_type: str, known: list[str]):
        self.store_type = store_type
        self.known = sorted(known)
        super().__init__(
            store_id, None,
            f'unknown store type {store_type!r} in '
            f'[DEFAULT]/enabled_backends',
            f'use one of: {", ".join(self.known)}, or install the package '
            f'that provides a multistore_prefix.drivers entry point for it')


class NoBackendsConfigured(MultistorePrefixError):
    """``[DEFAULT]/enabled_backends`` is empty or missing."""

    def __init__(self):
        super().__init__(
            '[DEFAULT]/enabled_backends is empty; set it to the stores of '
            'the Glance deployment, e.g. "fast:file, ceph:rbd"')


class OptionError(MultistorePrefixError):
    """An option (``[group]/name``) cannot work: ``reason`` and the fix.

    A secret option's value is never quoted.
    """

    def __init__(self, option: str, reason: str):
        self.option = option
        self.reason = reason
        super().__init__(f'{option} {reason}')
