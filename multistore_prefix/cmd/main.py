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

"""The ``multistore-prefix`` application (cliff).

Commands are entry points in the ``multistore_prefix.commands`` namespace;
a new command is a class and one line in setup.cfg.  They reach the
operator's configuration through the application: ``app.conf`` (an
``oslo_config.cfg.ConfigOpts`` that has read the ``--config-file`` and
``--config-dir`` sources, in command-line order) and ``app.location_map``
(built from it once).  Both are loaded on first use, so ``help`` needs no
configuration.

Configuration is read only from what the command line names: an operator
who runs the tool against a copy of a production glance-api.conf must not
get /etc/glance/glance-api.conf merged in behind their back.
"""

import argparse
import importlib.metadata
import logging
import os
import sys
import warnings

from cliff import app
from cliff import commandmanager
from oslo_config import cfg

from multistore_prefix import cmd
from multistore_prefix import location_map as lmap
from multistore_prefix import urls

COMMAND_NAMESPACE = 'multistore_prefix.commands'
DISTRIBUTION = 'multistore-prefix'

DESCRIPTION = """\
Give legacy Glance image locations their store.  Reads the deployment's own
glance-api.conf ([DEFAULT]/enabled_backends and one group per store), lists
the URL prefixes each store owns and tells which store owns a location URL:
the longest prefix that ends on a path-component boundary.  Credentials in
URLs are never printed.  Exit codes: 0 success, 1 unexpected error,
2 configuration or usage error (one line on stderr; --debug for a
traceback)."""

NO_CONFIG = ('no configuration given: pass --config-file with the '
             'deployment\'s glance-api.conf (e.g. --config-file '
             '/etc/glance/glance-api.conf; repeatable, later files win) '
             'and/or --config-dir DIR; /etc/glance is not read unless named')


class _ConfigSource(argparse.Action):
    """Collect ``--config-file`` and ``--config-dir`` in their given order.

    oslo.config reads sources in command-line order and later ones win, so
    one ordered list keeps the operator's precedence.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        sources = list(getattr(namespace, self.dest, None) or [])
        sources.append((option_string, values))
        setattr(namespace, self.dest, sources)


def load_config(sources: list[tuple[str, str]],
                optional: bool = False) -> cfg.ConfigOpts:
    """A ``ConfigOpts`` that has read exactly the given sources.

    :param sources: (``--config-file`` or ``--config-dir``, path) pairs, in
        command-line order.
    :param optional: no source is fine (an empty configuration: the
        embedded defaults).
    :raises ConfigurationError: no source (unless optional), or one cannot
        be read or parsed.
    """
    if not sources and not optional:
        raise cmd.ConfigurationError(NO_CONFIG)
    args = []
    for option, path in sources:
        args += [option, path]
    conf = cfg.ConfigOpts()
    with cmd.config_errors(conf):
        # project and prog as glance-api's, for what oslo.config derives
        # from them; no default files or directories: only what was named.
        conf(args=args, project='glance', prog='glance-api',
             default_config_files=[], default_config_dirs=[])
    return conf


class _MaskingFormatter(logging.Formatter):
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


class _LibraryChatter(logging.Filter):
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
    decides when it is set.
    """
    if sys.warnoptions:
        return
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
    warnings.filterwarnings('ignore', category=DeprecationWarning)
    warnings.filterwarnings('ignore', category=PendingDeprecationWarning)


class MultistorePrefixApp(app.App):
    """The ``multistore-prefix`` command.

    :ivar conf: the operator's configuration, read on first use.
    :ivar location_map: the stores and their prefixes, built on first use.
    """

    NAME = 'multistore-prefix'
    LOG = logging.getLogger('multistore_prefix.cmd')
    CONSOLE_MESSAGE_FORMAT = '%(message)s'

    def __init__(self, **kwargs):
        super().__init__(
            description=DESCRIPTION,
            version=_version(),
            command_manager=commandmanager.CommandManager(COMMAND_NAMESPACE),
            # "multistore-prefix resolve --help" shows resolve's help.
            deferred_help=True,
            **kwargs)
        self._conf = None
        self._location_map = None
        self._failure = None

    def build_option_parser(self, description, version,
                            argparse_kwargs=None):
        argparse_kwargs = dict(argparse_kwargs or {})
        argparse_kwargs.setdefault('prog', self.NAME)
        argparse_kwargs.setdefault(
            'formatter_class', argparse.RawDescriptionHelpFormatter)
        # cliff names the program after sys.argv[0] in --version ("main"
        # under python -m); redefine the option with the real name.
        argparse_kwargs.setdefault('conflict_handler', 'resolve')
        parser = super().build_option_parser(description, version,
                                             argparse_kwargs)
        parser.add_argument('--version', action='version',
                            version=f'{self.NAME} {version}')
        parser.add_argument(
            '--config-file', dest='config_sources', action=_ConfigSource,
            metavar='PATH', default=[],
            help='The deployment\'s glance-api.conf (oslo.config format). '
                 'Repeatable; later sources override earlier ones.  Needed '
                 'by every command that reads the configuration; nothing is '
                 'read from /etc/glance unless named here.  Paths inside '
                 'the file mean what they mean to glance-api: '
                 'rbd_store_ceph_conf is relative to the working directory, '
                 'swift_store_config_file is looked up next to the '
                 'configuration files (see etc/glance-api.conf).')
        parser.add_argument(
            '--config-dir', dest='config_sources', action=_ConfigSource,
            metavar='DIR', default=[],
            help='A directory of *.conf files read in name order, like '
                 'glance-api.conf.d.  Repeatable, ordered with '
                 '--config-file.')
        return parser

    def configure_logging(self):
        super().configure_logging()
        log_file = self.options.log_file
        for handler in logging.getLogger().handlers:
            if getattr(handler, 'stream', None) is self.stderr:
                handler.setFormatter(_MaskingFormatter(
                    self.CONSOLE_MESSAGE_FORMAT, level_prefix=True))
                if self.options.verbose_level < 2:
                    handler.addFilter(_LibraryChatter())
            elif (log_file and isinstance(handler, logging.FileHandler)
                    and handler.baseFilename == os.path.abspath(log_file)):
                handler.setFormatter(
                    _MaskingFormatter(self.LOG_FILE_MESSAGE_FORMAT))
        if self.options.verbose_level < 3:
            # -v shows our debug lines; -vv the plugin loaders' too.
            for name in ('stevedore', 'cliff'):
                logging.getLogger(name).setLevel(logging.INFO)

    # -- what commands use ------------------------------------------------

    @property
    def conf(self) -> cfg.ConfigOpts:
        """The operator's configuration (read on first use).

        :raises ConfigurationError: no ``--config-file``/``--config-dir``,
            or a source cannot be read.
        """
        if self._conf is None:
            self._conf = load_config(self.options.config_sources)
        return self._conf

    def conf_or_defaults(self) -> cfg.ConfigOpts:
        """Like :attr:`conf`, but no source means the embedded defaults.

        For the commands that work without configuration (``db sync``).
        """
        if self._conf is None:
            self._conf = load_config(self.options.config_sources,
                                     optional=True)
        return self._conf

    @property
    def location_map(self) -> lmap.LocationMap:
        """The configured stores and their prefixes (built on first use).

        :raises ConfigurationError: a store's type or options are wrong;
            the message names the store, the option and the fix.
        """
        if self._location_map is None:
            conf = self.conf
            with cmd.config_errors(conf):
                self._location_map = lmap.LocationMap.from_config(conf)
        return self._location_map

    # -- exit codes -------------------------------------------------------

    def clean_up(self, command, result, err):
        self._failure = err

    def run_subcommand(self, argv):
        # cliff logs a failed command's error and returns 1; configuration
        # and usage errors are 2 so that scripts can tell them apart.  A
        # command that printed its result may still set exit_code (an
        # interrupted backfill).
        self._failure = None
        self.exit_code = None
        result = super().run_subcommand(argv)
        if result and self._failure is not None:
            return cmd.exit_code_for(self._failure, result)
        return result or self.exit_code or 0


def _version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return 'unknown'


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    quiet_library_warnings()
    application = MultistorePrefixApp()
    return application.run(sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    sys.exit(main())
