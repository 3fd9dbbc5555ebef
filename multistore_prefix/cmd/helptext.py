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

"""The help of the command line: exit codes, and paragraphs kept apart.

cliff prints a command's docstring as its description and argparse wraps
it into one paragraph; here paragraphs stay apart, and every command's
help ends with the exit codes it can return.
"""

import argparse
import functools
import re
import textwrap

from multistore_prefix import cmd

#: What each code means for most commands; a command says more where it
#: has more to say.
OK_TEXT = 'done'
FAILURE_TEXT = 'an unexpected error (--debug shows the traceback)'
CONFIG_TEXT = ('the configuration or the command line is wrong: one line '
               'on stderr names the option and the fix; nothing was done')
INTERRUPTED_TEXT = 'interrupted (Ctrl-C)'

#: The codes of the whole command line, for the main help.
MAIN_EXIT_CODES = (
    (cmd.EXIT_OK, 'success'),
    (cmd.EXIT_FAILURE, 'a database error (backfill, db sync: the database '
                       'cannot be reached or was lost) or an unexpected '
                       'error (--debug shows the traceback)'),
    (cmd.EXIT_CONFIG, 'configuration or usage error, an unknown command or '
                      'no command: one line on stderr; nothing was done'),
    (cmd.EXIT_UNRESOLVED, 'resolve --strict: at least one URL has no '
                          'store'),
    (cmd.EXIT_INTERRUPTED, 'interrupted: Ctrl-C, or SIGTERM for backfill '
                           'and demo (the batch in flight is committed '
                           'first; run again to finish)'),
)


def exit_codes_text(codes) -> str:
    """The "Exit codes" paragraph of a help text.

    :param codes: (code, meaning) pairs, in the order shown.
    """
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
            parts.append('\n'.join(_list_item(line, width, indent)
                                   for line in lines))
        return '\n\n'.join(parts)


@functools.cache
def keep_paragraphs(base: type) -> type:
    """``base``, an argparse formatter class, keeping paragraphs apart."""
    return type(base.__name__, (_KeepParagraphs, base), {})


def _list_item(line: str, width: int, indent: str) -> str:
    """``  0    done ...``: wrapped, continued under "done"."""
    text = line.lstrip()
    lead = indent + line[:len(line) - len(text)]
    label = re.match(r'\S+\s*', text).group(0)
    return textwrap.fill(text, width, initial_indent=lead,
                         subsequent_indent=lead + ' ' * len(label))


class HelpWithExitCodes:
    """A command whose help ends with the exit codes it can return.

    Put it first among the bases of a cliff command.

    :ivar exit_codes: (code, meaning) pairs, in the order shown.
    """

    exit_codes = ((cmd.EXIT_OK, OK_TEXT),
                  (cmd.EXIT_FAILURE, FAILURE_TEXT),
                  (cmd.EXIT_CONFIG, CONFIG_TEXT),
                  (cmd.EXIT_INTERRUPTED, INTERRUPTED_TEXT))

    def get_epilog(self) -> str:
        # Not cliff's own: to name the plugin that provides a command, it
        # scans every installed distribution, a tenth of a second of every
        # run; these commands are all this package's.
        parts = [self._epilog, exit_codes_text(self.exit_codes)]
        return '\n\n'.join(part for part in parts if part)

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        # cliff's own formatter (its module is private), paragraphs kept.
        parser.formatter_class = keep_paragraphs(parser.formatter_class)
        return parser
