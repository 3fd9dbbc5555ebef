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

"""The ``multistore-prefix`` command line: what its commands share.

Exit codes, the errors an operator can fix, and the help that lists
them.  They live here rather than in :mod:`multistore_prefix.cmd.main`
because ``python -m multistore_prefix.cmd.main`` runs that module as
``__main__``: a class defined there would exist twice, once for the
application and once for the commands that import it.
"""

import argparse
import contextlib
import functools
import re
import textwrap

from oslo_config import cfg
from oslo_db import exception as db_exc
from sqlalchemy import exc as sa_exc

from multistore_prefix import exceptions
from multistore_prefix import masking

# What each code means is said once, in the help (MAIN_EXIT_CODES and
# each command's exit_codes).  1 is cliff's code for a command that
# raised, 2 argparse's for usage errors, 130 cliff's for Ctrl-C.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_UNRESOLVED = 3
EXIT_CHECK_FAILED = 4
EXIT_INTERRUPTED = 130

#: What code 2 means for most commands, in their help.
CONFIG_TEXT = ('the configuration or the command line is wrong: one line '
               'on stderr names the option and the fix; nothing was done')

#: The codes of the whole command line, for the main help.
MAIN_EXIT_CODES = (
    (EXIT_OK, 'success'),
    (EXIT_FAILURE, 'a database error (backfill, db sync: the database '
                   'cannot be reached or was lost) or an unexpected '
                   'error (--debug shows the traceback)'),
    (EXIT_CONFIG, 'configuration or usage error, an unknown command or '
                  'no command: one line on stderr; nothing was done'),
    (EXIT_UNRESOLVED, 'resolve --strict: at least one URL has no store'),
    (EXIT_INTERRUPTED, 'interrupted: Ctrl-C, or SIGTERM for backfill '
                       'and demo (the batch in flight is committed '
                       'first; run again to finish)'),
)


class CommandError(Exception):
    """An error the operator can fix, said in one line.

    :ivar exit_code: the process exit code it maps to.
    """

    exit_code = EXIT_CONFIG

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigurationError(CommandError):
    """The configuration is missing, unreadable or wrong."""


@contextlib.contextmanager
def config_errors(conf: cfg.ConfigOpts | None = None):
    """Turn configuration errors raised inside into ConfigurationError.

    Commands that read options themselves (``conf.database.connection``)
    wrap the read in it, so the operator gets one line naming the option.
    """
    try:
        yield
    except CommandError:
        raise
    except exceptions.CONFIG_ERRORS as exc:
        raise ConfigurationError(
            masking.mask_text(exceptions.describe(exc, conf))) from exc


@contextlib.contextmanager
def database_errors(what: str, fix: str = ''):
    """A database error raised inside, as one line (exit code 1).

    ``what`` names the database, the driver's own first line (masked)
    follows, then ``fix``.
    """
    try:
        yield
    except (db_exc.DBError, sa_exc.DBAPIError) as exc:
        raise CommandError(f'{what}: {masking.mask_error(exc)}{fix}',
                           exit_code=EXIT_FAILURE) from None


def exit_codes_text(codes) -> str:
    """The "Exit codes" paragraph of a help text, from (code, meaning)."""
    lines = ['Exit codes:']
    lines += [f'  {code:<4} {meaning}' for code, meaning in codes]
    return '\n'.join(lines)


class _KeepParagraphs:
    """Help text: paragraphs apart, indented lines as list items.

    argparse wraps a description or an epilog into one paragraph; here a
    blank line keeps paragraphs apart, and a paragraph whose lines after
    the first are indented is a list: one item a line, wrapped under its
    own text.
    """

    def _fill_text(self, text, width, indent):
        parts = []
        for paragraph in re.split(r'\n\s*\n', text.strip()):
            lines = paragraph.splitlines()
            if not any(line.startswith(' ') for line in lines[1:]):
                parts.append(super()._fill_text(paragraph, width, indent))
                continue
            items = []
            for line in lines:  # "  0    done ...", continued under "done"
                text = line.lstrip()
                lead = indent + line[:len(line) - len(text)]
                label = re.match(r'\S+\s*', text).group(0)
                items.append(textwrap.fill(
                    text, width, initial_indent=lead,
                    subsequent_indent=lead + ' ' * len(label)))
            parts.append('\n'.join(items))
        return '\n\n'.join(parts)


@functools.cache
def keep_paragraphs(base: type) -> type:
    """``base``, an argparse formatter class, keeping paragraphs apart."""
    return type(base.__name__, (_KeepParagraphs, base), {})


class HelpWithExitCodes:
    """A command whose help ends with the exit codes it can return.

    Put it first among the bases of a cliff command.  cliff prints the
    command's docstring as its help: plain text there, no reST.

    :ivar common_exit_codes: code -> what it means for most commands.
    :ivar exit_codes: code -> what it means for this one, where it has
        more to say.
    """

    common_exit_codes = {
        EXIT_OK: 'done',
        EXIT_FAILURE: 'an unexpected error (--debug shows the traceback)',
        EXIT_CONFIG: CONFIG_TEXT,
        EXIT_INTERRUPTED: 'interrupted (Ctrl-C)',
    }
    exit_codes = {}

    def get_epilog(self) -> str:
        # Not cliff's own: to name the plugin that provides a command, it
        # scans every installed distribution, a tenth of a second of every
        # run; these commands are all this package's.
        codes = {**self.common_exit_codes, **self.exit_codes}
        parts = [self._epilog, exit_codes_text(sorted(codes.items()))]
        return '\n\n'.join(part for part in parts if part)

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        # cliff's own formatter (its module is private), paragraphs kept.
        parser.formatter_class = keep_paragraphs(parser.formatter_class)
        return parser
