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

"""What the console shows: the tool's own lines, never the libraries'.

Log lines are masked (credentials in URLs), libraries' chatter is dropped
unless ``-v`` asks for it, and import-time deprecation warnings of the
libraries (eventlet's banner above all) never reach the output.
"""

import logging
import sys
import warnings

from multistore_prefix import urls

#: Warnings (message starts) that eventlet and its users issue as
#: glance_store's drivers import them: eventlet's banner, its warning on
#: fork, and the oslo modules built on it.  None runs here.
EVENTLET_WARNINGS = (
    r'\s*Eventlet is deprecated',
    r'Using fork\(\) is a bad idea',
    r'eventletutils module is deprecated',
    r"The 'oslo_service.eventlet_backdoor' module",
)


class MaskingFormatter(logging.Formatter):
    """Mask URL credentials in every line, tracebacks included.

    :ivar level_prefix: prefix warnings and errors with ``LEVEL: ``, for
        the console (cliff's console format is the bare message).
    """

    def __init__(self, fmt, level_prefix=False):
        super().__init__(fmt)
        self.level_prefix = level_prefix

    def format(self, record):
        text = super().format(record)
        if self.level_prefix and record.levelno >= logging.WARNING:
            text = f'{record.levelname}: {text}'
        return urls.mask_text(text)


class LibraryChatter(logging.Filter):
    """Keep the console to what the operator can act on.

    Libraries' info lines ("Loading backend: eventlet") are dropped, and so
    are two warnings: oslo.config's report of each deprecated option it
    reads (glance_store 5.x deprecates ``filesystem_store_datadirs``; that
    is glance-api's concern) and stevedore's "Could not load <type>", said
    just before our own error names the store and the known types.  ``-v``
    shows them all.
    """

    def filter(self, record):
        if record.name.startswith('multistore_prefix'):
            return True
        if record.levelno < logging.WARNING:
            return False
        msg = str(record.msg)
        if record.name.startswith(('oslo_config', 'oslo_log')):
            return not msg.startswith('Deprecated: ')
        if record.name.startswith('stevedore'):
            return not msg.startswith('Could not load ')
        return True


def quiet_library_warnings() -> None:
    """Silence import-time deprecation warnings of the libraries.

    Importing glance_store imports eventlet, which warns that it is
    deprecated; oslo modules warn about their own futures.  An operator
    can do nothing about either.  ``PYTHONWARNINGS`` (or ``-W``) still
    decides for the other warnings when it is set, but never brings back
    eventlet's: many hosts set ``PYTHONWARNINGS`` for their own reasons,
    the banner is not a ``DeprecationWarning`` that such a setting would
    hide, and "error" would stop the import of a store driver.
    """
    if not sys.warnoptions:
        warnings.filterwarnings('ignore', category=DeprecationWarning)
        warnings.filterwarnings('ignore',
                                category=PendingDeprecationWarning)
    # Added last, so they come first: ahead of PYTHONWARNINGS's filters.
    for message in EVENTLET_WARNINGS:
        warnings.filterwarnings('ignore', message=message)
