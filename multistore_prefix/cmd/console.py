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
#: fork, the oslo modules built on it, and cryptography's on the DSA keys
#: of dnspython, which eventlet imports.  None runs here.
EVENTLET_WARNINGS = (
    r'\s*Eventlet is deprecated',
    r'Using fork\(\) is a bad idea',
    r'eventletutils module is deprecated',
    r"The 'oslo_service.eventlet_backdoor' module",
    r'DSA is deprecated',
)

#: How SQLAlchemy's pool logs a connection it could not reset or close.
POOL_LOST_CONNECTION = ('Exception during reset or similar',
                        'Exception closing connection')


class MaskingFormatter(logging.Formatter):
    """Mask URL credentials in every line, tracebacks included.

    :ivar level_prefix: prefix warnings and errors with ``LEVEL: ``, for
        the console (cliff's console format is the bare message).
    :ivar tracebacks: print a record's traceback; without, the error's
        first line closes the record's own (a library's log of an error
        that this tool reports or retries in a line of its own, such as
        SQLAlchemy's pool failing to reset a connection that was lost).
    """

    def __init__(self, fmt, level_prefix=False, tracebacks=True):
        super().__init__(fmt)
        self.level_prefix = level_prefix
        self.tracebacks = tracebacks

    def format(self, record):
        if record.exc_info and not self.tracebacks:
            record = one_line(record)
        text = super().format(record)
        if self.level_prefix and record.levelno >= logging.WARNING:
            text = f'{record.levelname}: {text}'
        return urls.mask_text(text)


def one_line(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of ``record`` with its error in its line, no traceback."""
    error = record.exc_info[1]
    copy = logging.makeLogRecord(record.__dict__)
    if error is not None:
        first = (str(error).strip().splitlines() or [''])[0]
        copy.msg = f'{record.getMessage()} ({type(error).__name__}: {first})'
        copy.args = None
    copy.exc_info = copy.exc_text = None
    return copy


class LibraryChatter(logging.Filter):
    """Keep the console to what the operator can act on.

    Libraries' info lines ("Loading backend: eventlet") are dropped, and so
    are two warnings: oslo.config's report of each deprecated option it
    reads (glance_store 5.x deprecates ``filesystem_store_datadirs``; that
    is glance-api's concern) and stevedore's "Could not load <type>", said
    just before our own error names the store and the known types.  So are
    SQLAlchemy's pool's errors on a connection that was already lost
    (:data:`POOL_LOST_CONNECTION`).  ``-v`` shows them all.
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
        if record.name.startswith('sqlalchemy.pool'):
            # A connection that was lost could not be reset or closed on
            # its way back to the pool: the retry's own line says so.
            return not msg.startswith(POOL_LOST_CONNECTION)
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
