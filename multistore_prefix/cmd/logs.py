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

"""The log: what the terminal shows, and the configured log beside it.

The terminal shows the tool's own lines, never the libraries' chatter
(unless ``-v`` asks for it) nor their import-time deprecation warnings
(eventlet's banner above all), every line masked (credentials in URLs).

The ``[DEFAULT]`` logging options of the files given with
``--config-file``/``--config-dir`` (``log_config_append``, ``log_file``,
``log_dir``, ``use_syslog``, ``use_journal``, ``use_json``, ``debug``...)
send the log where the operator's other services log, set up by
oslo.log itself as ``glance-manage`` does.  The terminal stays as it is:
oslo.log's handlers that would write to stdout or stderr are left out,
its levels (``debug``, ``default_log_levels``, the loggers of
``log_config_append``) apply to its own handlers only, and every line it
writes is masked as the terminal's are.
"""

import logging
import sys
import warnings

from oslo_config import cfg
from oslo_log import log

from multistore_prefix import cmd
from multistore_prefix import masking

#: The name oslo.log gives the program (in the log's lines).
PRODUCT = 'multistore-prefix'

#: ``extra=`` of a record meant for the configured log only: the terminal
#: shows the same facts its own way (the summary table, the report).
LOG_ONLY = {'log_only': True}


def not_for_terminal(record: logging.LogRecord) -> bool:
    """The terminal's filter: no :data:`LOG_ONLY` record."""
    return not getattr(record, 'log_only', False)


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

    The traceback text is masked where handlers cache it
    (``record.exc_text``), since the journal sends it as a field of its
    own.

    :ivar inner: the formatter whose lines are masked (oslo.log's plain,
        context or JSON one), else one of format ``fmt``.
    :ivar level_prefix: prefix warnings and errors with ``LEVEL: ``, for
        the console (cliff's console format is the bare message).
    :ivar tracebacks: print a record's traceback; without, the error's
        first line closes the record's own (a library's log of an error
        that this tool reports or retries in a line of its own, such as
        SQLAlchemy's pool failing to reset a connection that was lost).
    """

    def __init__(self, fmt=None, level_prefix=False, tracebacks=True,
                 inner=None):
        super().__init__(fmt)
        self.inner = inner or logging.Formatter(fmt)
        self.level_prefix = level_prefix
        self.tracebacks = tracebacks

    def format(self, record):
        if record.exc_info and not self.tracebacks:
            record = one_line(record)
        elif record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        elif record.exc_text:
            record.exc_text = masking.mask_text(record.exc_text)
        text = self.inner.format(record)
        if self.level_prefix and record.levelno >= logging.WARNING:
            text = f'{record.levelname}: {text}'
        return masking.mask_text(text)

    def formatException(self, ei):
        return masking.mask_text(self.inner.formatException(ei))


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


def register_options(conf: cfg.ConfigOpts) -> None:
    """oslo.log's options on ``conf``, before it reads the files."""
    root = logging.getLogger()
    before = list(root.handlers)
    log.register_options(conf)
    # oslo.log adds a stderr handler to a root that has none, "until
    # logging is set up": the terminal is cliff's, so it goes again.
    for handler in root.handlers[len(before):]:
        root.removeHandler(handler)


def setup(conf: cfg.ConfigOpts, terminal: tuple, version: str) -> list:
    """Add the configured log's handlers beside the terminal's.

    :param terminal: the streams the command writes to (its stdout and
        stderr); no log handler writes there.
    :returns: the handlers added (none if no destination is configured).
    :raises ConfigurationError: oslo.log refused the configuration (a
        ``log_config_append`` that does not parse, a log file that
        cannot be opened, ``use_journal`` without systemd's bindings).
    """
    if not (conf.log_config_append or conf.log_file or conf.log_dir
            or conf.use_syslog or conf.use_journal):
        return []
    root = logging.getLogger()
    kept = list(root.handlers)
    levels = _levels()
    try:
        log.setup(conf, PRODUCT, version, fix_eventlet=False)
    except (log.LogConfigError, OSError, RuntimeError, TypeError,
            ValueError) as exc:
        _restore(root, kept, levels)
        raise cmd.ConfigurationError(
            f'the log cannot be set up: {masking.mask_text(exc)}; check '
            f'[DEFAULT]/log_config_append, log_file, log_dir, use_syslog '
            f'and use_journal') from None
    added = [handler for handler in root.handlers if handler not in kept
             and getattr(handler, 'stream', None) not in terminal]
    chosen = ConfiguredLevels(_levels())
    _restore(root, kept, levels)
    for handler in added:
        handler.addFilter(chosen)
        handler.setFormatter(MaskingFormatter(inner=handler.formatter))
        root.addHandler(handler)
    return added


def _loggers() -> dict:
    """Every logger by name, the root under ``''``."""
    return {'': logging.getLogger(),
            **{name: logger for name, logger
               in logging.Logger.manager.loggerDict.items()
               if isinstance(logger, logging.Logger)}}


def _levels() -> dict:
    return {name: logger.level for name, logger in _loggers().items()}


def _restore(root, handlers, levels) -> None:
    """Put back the terminal's handlers and every logger's level."""
    root.handlers[:] = handlers
    for name, logger in _loggers().items():
        logger.setLevel(levels.get(name, logging.NOTSET))


class ConfiguredLevels(logging.Filter):
    """The levels oslo.log chose, applied by the log's handlers alone.

    Each logger's level (``debug``, ``default_log_levels``, the
    ``[logger_*]`` sections of ``log_config_append``) as a logger would
    apply it, so the terminal keeps the levels it has always had.

    :ivar levels: logger name -> level oslo.log set (root under ``''``).
    """

    def __init__(self, levels: dict):
        super().__init__()
        self.levels = levels

    def filter(self, record):
        name = record.name
        while name:
            level = self.levels.get(name, logging.NOTSET)
            if level != logging.NOTSET:
                return record.levelno >= level
            name = name.rpartition('.')[0]
        return record.levelno >= self.levels['']
