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

"""Store drivers, loaded by stevedore from ``multistore_prefix.drivers``.

A new store type is one module and one entry point in that namespace; the
entry point's name is the type as ``enabled_backends`` spells it.
"""

from oslo_config import cfg
from stevedore import driver as sd_driver
from stevedore import exception as sd_exception
from stevedore import extension

from multistore_prefix.drivers.base import Driver
from multistore_prefix.drivers.base import Prefix  # noqa: F401
from multistore_prefix import exceptions

NAMESPACE = 'multistore_prefix.drivers'


def store_types() -> list[str]:
    return sorted(extension.ExtensionManager(NAMESPACE).names())


def load_driver(conf: cfg.ConfigOpts, store_id: str,
                store_type: str) -> Driver:
    """Load and initialise the driver of one ``enabled_backends`` item.

    :raises StoreConfigError: no driver for the type, or its configuration
        is bad; the message names the store and the option.
    """
    def on_failure(manager, entry_point, exc):
        if isinstance(exc, exceptions.StoreConfigError):
            raise exc
        raise exceptions.StoreConfigError(
            store_id, None,
            f'the {store_type!r} driver ({entry_point.value}) failed to '
            f'load: {type(exc).__name__}: {exc}') from exc

    try:
        manager = sd_driver.DriverManager(
            NAMESPACE, store_type,
            invoke_on_load=True,
            invoke_args=(conf, store_id),
            on_load_failure_callback=on_failure)
    except sd_exception.NoMatches:
        raise exceptions.UnknownStoreType(store_id, store_type,
                                          store_types()) from None
    return manager.driver
