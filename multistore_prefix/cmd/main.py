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
they reach the configuration through ``app.conf`` and ``app.location_map``,
both loaded on first use, so ``help`` needs no configuration.

Configuration is read only from what the command line names: an operator
who runs the tool against a copy of a production glance-api.conf must not
get /etc/glance/glance-api.conf merged in behind their back.
"""

import argparse
import importlib.metadata
import io
import itertools
import logging
import os
import sys

from cliff import app
from cliff import commandmanager
from cliff import help as cliff_help
from cliff import utils
from oslo_config import cfg

from multistore_prefix import cmd
from multistore_prefix.cmd import logs
from multistore_prefix import exceptions
from multistore_prefix import location_map as lmap

COMMAND_NAMESPACE = 'multistore_prefix.commands'
DISTRIBUTION = 'multistore-prefix'

DESCRIPTION = f"""\
Give legacy Glance image locations their store.  Reads the deployment's own
glance-api.conf ([DEFAULT]/enabled_backends and one group per store), lists
the URL prefixes each store owns and tells which store owns a location URL:
the longest prefix that ends on a path-component boundary.  Credentials in
URLs are never printed.  Commands are never abbreviated.

{cmd.exit_codes_text(cmd.MAIN_EXIT_CODES)}

"multistore-prefix help COMMAND" (or COMMAND --help) lists the codes each
command can return."""

#: Where cliff would open its interactive shell: a command is needed.
NO_COMMAND = ('no command given: the commands are listed above '
              '(multistore-prefix COMMAND --help for one of them)')

NO_CONFIG = ('no configuration given: pass --config-file with the '
             'deployment\'s glance-api.conf (e.g. --config-file '
             '/etc/glance/glance-api.conf; repeatable, later files win) '
             'and/or --config-dir DIR; /etc/glance is not read unless named')


def load_config(sources: list[tuple[str, str]]) -> cfg.ConfigOpts:
    """A ``ConfigOpts`` that has read exactly the given sources.

    :param sources: (``--config-file`` or ``--config-dir``, path) pairs in
        command-line order: oslo.config reads them so, later ones win.
        none, the embedded defaults.
    """
    args = [word for source in sources for word in source]
    conf = cfg.ConfigOpts()
    # oslo.log's options are read from the same files, as glance-manage's.
    logs.register_options(conf)
    with cmd.config_errors(conf):
        # project and prog as glance-api's, for what oslo.config derives
        # from them; no default files or directories: only what was named.
        conf(args=args, project='glance', prog='glance-api',
             default_config_files=[], default_config_dirs=[])
    return conf


def _words(argv: list[str]) -> list[str]:
    """The words of ``argv`` before its first option."""
    return list(itertools.takewhile(lambda a: not a.startswith('-'), argv))


class ExactCommands(commandmanager.CommandManager):
    """Commands by their full name only.

    cliff runs the one command that a prefix names ("b" is backfill), and
    so a typo of a command that writes would run it.
    """

    def find_command(self, argv):
        found = _words(argv)
        for end in range(len(found), 0, -1):
            name = ' '.join(found[:end])
            if name in self.commands:
                return self.commands[name].load(), name, argv[end:]
        raise ValueError(f'Unknown command {argv!r}')


def close_commands(word: str, names: list[str]) -> list[str]:
    """The commands an unknown word may have meant, best first.

    Those it begins ("b": backfill), else those one or two edits away
    ("stroes"), compared with the first word of each command; case aside.
    """
    word = word.lower()
    begun = sorted(name for name in names if name.startswith(word))
    if begun:
        return begun
    scored = sorted((utils.damerau_levenshtein(word, name.split()[0],
                                               utils.COST), name)
                    for name in names)
    if not scored or scored[0][0] > max(2, len(word) // 3):
        return []
    return [name for score, name in scored if score == scored[0][0]]


class MultistorePrefixApp(app.App):
    """The ``multistore-prefix`` command."""

    NAME = 'multistore-prefix'
    LOG = logging.getLogger('multistore_prefix.cmd')
    CONSOLE_MESSAGE_FORMAT = '%(message)s'

    def __init__(self, **kwargs):
        super().__init__(
            description=DESCRIPTION,
            version=_version(),
            command_manager=ExactCommands(COMMAND_NAMESPACE),
            # "multistore-prefix resolve --help" shows resolve's help.
            deferred_help=True,
            **kwargs)
        self._conf = None
        self._location_map = None
        self._failure = None
        self._no_command = False
        self._log_error = None
        #: The configured log's handlers (oslo.log), if it names one.
        self.log_handlers = []

    def build_option_parser(self, description, version,
                            argparse_kwargs=None):
        argparse_kwargs = dict(argparse_kwargs or {})
        argparse_kwargs.setdefault('prog', self.NAME)
        argparse_kwargs.setdefault('formatter_class', cmd.keep_paragraphs(
            argparse.HelpFormatter))
        # cliff names the program after sys.argv[0] in --version ("main"
        # under python -m); redefine the option with the real name.
        argparse_kwargs.setdefault('conflict_handler', 'resolve')
        parser = super().build_option_parser(description, version,
                                             argparse_kwargs)
        parser.add_argument('--version', action='version',
                            version=f'{self.NAME} {version}')
        parser.add_argument(
            '--config-file', dest='config_sources', action='append',
            type=lambda path: ('--config-file', path), metavar='PATH',
            default=[],
            help='The deployment\'s glance-api.conf (oslo.config format). '
                 'Repeatable; later sources override earlier ones.  Needed '
                 'by every command that reads the configuration; nothing is '
                 'read from /etc/glance unless named here.  Paths inside '
                 'the file mean what they mean to glance-api: '
                 'rbd_store_ceph_conf is relative to the working directory, '
                 'swift_store_config_file is looked up next to the '
                 'configuration files (see etc/glance-api.conf).')
        parser.add_argument(
            '--config-dir', dest='config_sources', action='append',
            type=lambda path: ('--config-dir', path), metavar='DIR',
            help='A directory of *.conf files read in name order, like '
                 'glance-api.conf.d.  Repeatable, ordered with '
                 '--config-file.')
        return parser

    def configure_logging(self):
        super().configure_logging()
        log_file = self.options.log_file
        for handler in logging.getLogger().handlers:
            if getattr(handler, 'stream', None) is self.stderr:
                # -v (and --debug) show tracebacks; the default, none.
                handler.setFormatter(logs.MaskingFormatter(
                    self.CONSOLE_MESSAGE_FORMAT, level_prefix=True,
                    tracebacks=(self.options.verbose_level >= 2
                                or self.options.debug)))
                if self.options.verbose_level < 2:
                    handler.addFilter(logs.LibraryChatter())
                handler.addFilter(logs.not_for_terminal)
            elif (log_file and isinstance(handler, logging.FileHandler)
                    and handler.baseFilename == os.path.abspath(log_file)):
                handler.setFormatter(
                    logs.MaskingFormatter(self.LOG_FILE_MESSAGE_FORMAT))
        if self.options.verbose_level < 3:
            # -v shows our debug lines; -vv the plugin loaders' too.
            for name in ('stevedore', 'cliff'):
                logging.getLogger(name).setLevel(logging.INFO)
        self._configured_log()

    def _configured_log(self):
        """The log the configuration files name (oslo.log), if any."""
        self._log_error = None
        self.log_handlers = []
        try:
            conf = self.conf
        except cmd.ConfigurationError:
            return  # the command that reads it says so, in its own line
        try:
            terminal = (self.stdout, self.stderr, sys.stdout, sys.stderr)
            self.log_handlers = logs.setup(conf, terminal, _version())
        except cmd.ConfigurationError as exc:
            self._log_error = exc

    @property
    def conf(self) -> cfg.ConfigOpts:
        """The operator's configuration (read on first use)."""
        if not self.options.config_sources:
            raise cmd.ConfigurationError(NO_CONFIG)
        if self._conf is None:
            self._conf = load_config(self.options.config_sources)
        return self._conf

    @property
    def location_map(self) -> lmap.LocationMap:
        """The configured stores and their prefixes (built on first use)."""
        if self._location_map is None:
            conf = self.conf
            with cmd.config_errors(conf):
                self._location_map = lmap.LocationMap.from_config(conf)
            for store, entry in sorted(self._location_map.stores.items()):
                self.LOG.debug('store %s (%s): %s', store, entry.store_entry,
                               ', '.join(map(str, entry.prefixes)),
                               extra=logs.LOG_ONLY)
        return self._location_map

    def run(self, argv):
        self._no_command = False
        result = super().run(argv)
        return cmd.EXIT_CONFIG if self._no_command else result

    def interact(self):
        # cliff opens an interactive shell (with "shell" and
        # "run_pyscript") when no command is given: not for a tool that
        # writes to a production database.
        self._no_command = True
        self.stderr.write(self.main_help())
        self.LOG.error(NO_COMMAND)

    def main_help(self) -> str:
        """The text of ``multistore-prefix --help``, without a pager."""
        stdout, self.stdout = self.stdout, io.StringIO()
        try:
            cliff_help.HelpAction([], argparse.SUPPRESS, default=self)(
                self.parser, self.options, None, None)
        except cliff_help.HelpExit:
            pass
        finally:
            text, self.stdout = self.stdout.getvalue(), stdout
        return text

    def clean_up(self, command, result, err):
        self._failure = err

    def run_subcommand(self, argv):
        # cliff logs a failed command's error and returns 1; configuration
        # and usage errors are 2 so that scripts can tell them apart.  A
        # command that printed its result may still set exit_code (an
        # interrupted backfill).
        self._failure = None
        self.exit_code = None
        if self._log_error is not None:
            self.LOG.error(self._log_error)
            return self._log_error.exit_code
        # "help b" and "b --help" too: cliff would list its guesses, exit 0.
        named = argv[1:] if argv[:1] == ['help'] else argv
        try:
            if named:
                self.command_manager.find_command(named)
        except ValueError:
            self.LOG.error(self._unknown_command(named))
            return cmd.EXIT_CONFIG
        result = super().run_subcommand(argv)
        if result and isinstance(self._failure, cmd.CommandError):
            return self._failure.exit_code
        if result and isinstance(self._failure, exceptions.CONFIG_ERRORS):
            return cmd.EXIT_CONFIG
        return result or self.exit_code or 0

    def _unknown_command(self, argv: list[str]) -> str:
        if argv[0].startswith('-'):
            return f'unknown option {argv[0]!r}: see {self.NAME} --help'
        name = ' '.join(_words(argv))
        close = close_commands(
            argv[0], [known for known, _ in self.command_manager])
        if not close:
            return (f'unknown command {name!r}: {self.NAME} --help lists '
                    f'the commands')
        return (f'unknown command {name!r}: did you mean '
                f'{" or ".join(map(repr, close))}? Commands are never '
                f'abbreviated ({self.NAME} --help lists them)')


def _version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return 'unknown'


def main(argv: list[str] | None = None) -> int:
    logs.quiet_library_warnings()
    application = MultistorePrefixApp()
    return application.run(sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    sys.exit(main())
