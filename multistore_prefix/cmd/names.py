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

"""Commands by their full names only, and the close ones for a typo."""

import itertools

from cliff import commandmanager
from cliff import utils


def words(argv: list[str]) -> list[str]:
    """The words of ``argv`` before its first option."""
    return list(itertools.takewhile(lambda a: not a.startswith('-'), argv))


class ExactCommands(commandmanager.CommandManager):
    """Commands by their full name only.

    cliff runs the one command that a prefix names ("b" is backfill), and
    so a typo of a command that writes would run it; here an unknown name
    is an error that names the close ones.
    """

    def find_command(self, argv):
        found = words(argv)
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
    best = scored[0][0] if scored else None
    if best is None or best > max(2, len(word) // 3):
        return []
    return [name for score, name in scored if score == best]
