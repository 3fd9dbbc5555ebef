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

"""``multistore-prefix status-machine``: show the status machines.

Reads no configuration: the machines are code, the same in every
deployment.
"""

from cliff import lister

from multistore_prefix import cmd
from multistore_prefix.domain import status


def _quote(name: str) -> str:
    escaped = name.replace('\\', '\\\\').replace('"', '\\"')
    return f'"{escaped}"'


def to_dot(machine_name: str = status.IMAGE) -> str:
    """The machine as Graphviz dot text: one edge per move.

    The start status is drawn bold, terminal statuses as double circles,
    and each edge is labelled with its event.
    """
    machine = status.machine(machine_name)
    lines = [f'digraph {machine_name}_status {{',
             '    rankdir=LR;',
             '    node [shape=ellipse, fontsize=11];']
    for state in machine.states:
        attrs = []
        if state == machine.default_start_state:
            attrs.append('style=bold')
        if state in status.TERMINAL_STATES:
            attrs.append('shape=doublecircle')
        suffix = f' [{", ".join(attrs)}]' if attrs else ''
        lines.append(f'    {_quote(state)}{suffix};')
    for from_status, event, to_status in machine:
        lines.append(f'    {_quote(from_status)} -> {_quote(to_status)} '
                     f'[label={_quote(event)}];')
    lines.append('}')
    return '\n'.join(lines) + '\n'


class StatusMachine(cmd.HelpWithExitCodes, lister.Lister):
    """Print a status machine's transition table, one row per move.

    Columns "from", "event" and "to"; --dot FILE also writes the machine
    as a Graphviz dot file (render it with: dot -Tsvg FILE).
    """

    exit_codes = {cmd.EXIT_CONFIG: 'a command-line error, or the --dot file '
                                   'cannot be written'}

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--machine', choices=status.MACHINE_NAMES, default=status.IMAGE,
            help='which machine to show: image status (default) or '
                 'location status')
        parser.add_argument(
            '--dot', metavar='FILE',
            help='also write the machine to FILE as a Graphviz dot graph')
        return parser

    def take_action(self, parsed_args):
        if parsed_args.dot:
            try:
                with open(parsed_args.dot, 'w', encoding='utf-8') as out:
                    out.write(to_dot(parsed_args.machine))
            except OSError as exc:
                raise cmd.CommandError(
                    f'cannot write the dot file {parsed_args.dot}: '
                    f'{exc.strerror or exc}') from exc
        moves = status.transitions(parsed_args.machine)
        return ('from', 'event', 'to'), [tuple(move) for move in moves]
