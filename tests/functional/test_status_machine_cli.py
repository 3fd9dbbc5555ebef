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

"""The ``status-machine`` command: multistore_prefix/cmd/status_machine.py.

The command runs inside a minimal cliff application built here, inside the
real ``MultistorePrefixApp`` in a child process (registered by hand, as its
entry point will be) with no configuration anywhere, and through the
installed ``multistore-prefix`` console script once the ``status-machine``
entry point is in setup.cfg.
"""

from collections import Counter
import importlib.metadata
import io
import json
import os
import pathlib
import re
import subprocess
import sys

from cliff import app
from cliff import commandmanager
import pytest

from multistore_prefix.cmd import status_machine
from multistore_prefix.domain import status
from tests.unit.domain.test_status import GLANCE_TARGETS


class _App(app.App):
    """Just enough cliff application to run the command."""

    def __init__(self, stdout, stderr):
        manager = commandmanager.CommandManager(
            'multistore_prefix.tests.none')
        manager.add_command('status-machine', status_machine.StatusMachine)
        super().__init__(description='test', version='0',
                         command_manager=manager, stdout=stdout,
                         stderr=stderr, deferred_help=True)


def run_in_app(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = _App(out, err).run(['status-machine', *argv])
    return code, out.getvalue(), err.getvalue()


def parse_dot(text):
    """Parse the dot subset the command writes; fail on anything else.

    :returns: (graph name, {node: attrs}, [(from, to, attrs), ...])
    """
    match = re.fullmatch(r'\s*digraph\s+(\w+)\s*\{(.*)\}\s*', text, re.S)
    assert match, 'not a digraph'
    name, body = match.groups()
    ident = r'"((?:[^"\\]|\\.)*)"'
    attrs_re = r'(?:\s*\[([^\]]*)\])?'

    def attrs(raw):
        found = {}
        for item in filter(None, (a.strip() for a in (raw or '').split(','))):
            key, value = item.split('=', 1)
            found[key.strip()] = value.strip().strip('"')
        return found

    nodes, edges = {}, []
    for stmt in filter(None, (s.strip() for s in body.split(';'))):
        if edge := re.fullmatch(ident + r'\s*->\s*' + ident + attrs_re, stmt):
            edges.append((edge[1], edge[2], attrs(edge[3])))
        elif node := re.fullmatch(ident + attrs_re, stmt):
            nodes[node[1]] = attrs(node[2])
        elif not re.fullmatch(r'(rankdir=\w+|node\s*\[[^\]]*\])', stmt):
            pytest.fail(f'unexpected dot statement {stmt!r}')
    return name, nodes, edges


def test_json_rows_are_the_transitions():
    code, out, _ = run_in_app('-f', 'json')
    assert code == 0
    rows = json.loads(out)
    assert rows == [{'from': f, 'event': e, 'to': t}
                    for f, e, t in status.transitions('image')]
    assert len(rows) == 23
    targets = {state: set() for state in GLANCE_TARGETS}
    for row in rows:
        targets[row['from']].add(row['to'])
    assert targets == GLANCE_TARGETS


def test_location_machine():
    code, out, _ = run_in_app('--machine', 'location', '-f', 'json')
    assert code == 0
    assert [tuple(r.values()) for r in json.loads(out)] == [
        ('active', 'delayed_delete', 'pending_delete'),
        ('active', 'delete', 'deleted'),
        ('pending_delete', 'delete', 'deleted'),
        ('pending_delete', 'restore', 'active'),
    ]


def test_table_and_csv():
    code, out, _ = run_in_app()
    assert code == 0
    lines = out.splitlines()
    assert re.fullmatch(r'\|\s*from\s*\|\s*event\s*\|\s*to\s*\|', lines[1])
    rows = [line for line in lines[3:] if line.startswith('|')]
    assert len(rows) == 23
    assert re.fullmatch(r'\|\s*queued\s*\|\s*upload_started\s*\|'
                        r'\s*saving\s*\|', rows[0])

    code, out, _ = run_in_app('-f', 'csv')
    assert code == 0
    assert out.splitlines()[:2] == ['"from","event","to"',
                                    '"queued","upload_started","saving"']


@pytest.mark.parametrize('machine', status.MACHINE_NAMES)
def test_dot_file(tmp_path, machine):
    target = tmp_path / 'machine.dot'
    code, out, _ = run_in_app('--machine', machine, '--dot', str(target),
                              '-f', 'value')
    assert code == 0
    # The table is still printed.
    assert len(out.splitlines()) == len(status.transitions(machine))

    name, nodes, edges = parse_dot(target.read_text())
    assert name == f'{machine}_status'
    moves = status.transitions(machine)
    # One edge per move, labelled with its event, and no other edge.
    assert Counter((f, t, a['label']) for f, t, a in edges) == Counter(
        (m.from_status, m.to_status, m.event) for m in moves)
    assert len(edges) == len(moves)
    states = (status.IMAGE_STATES if machine == 'image'
              else status.LOCATION_STATES)
    assert list(nodes) == list(states)
    start = 'queued' if machine == 'image' else 'active'
    assert nodes[start] == {'style': 'bold'}
    assert nodes['deleted'] == {'shape': 'doublecircle'}


def test_dot_text_matches_the_file(tmp_path):
    target = tmp_path / 'image.dot'
    run_in_app('--dot', str(target))
    assert target.read_text() == status_machine.to_dot('image')


def test_unknown_machine_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        run_in_app('--machine', 'task')
    assert info.value.code == 2
    assert "invalid choice: 'task'" in capsys.readouterr().err


def test_unwritable_dot_file_fails(tmp_path, caplog):
    target = tmp_path / 'no' / 'x.dot'
    code, out, _ = run_in_app('--dot', str(target))
    assert code == 1  # cliff's own App: any failure is 1
    assert out == ''
    assert (f'cannot write the dot file {target}: No such file or '
            f'directory') in caplog.text


# The real application in a child process, with the command registered the
# way its entry point will register it; no configuration anywhere.
REAL_APP = """
import sys
from multistore_prefix.cmd import logs
from multistore_prefix.cmd import main
from multistore_prefix.cmd import status_machine
logs.quiet_library_warnings()
application = main.MultistorePrefixApp()
application.command_manager.add_command(
    'status-machine', status_machine.StatusMachine)
sys.exit(application.run(sys.argv[1:]))
"""


def run_real(tmp_path, *argv, script=None):
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop('OS_CLOUD', None)
    command = ([str(script)] if script
               else [sys.executable, '-c', REAL_APP])
    return subprocess.run(
        [*command, 'status-machine', *argv], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120, check=False)


def test_real_app_needs_no_config(tmp_path):
    dot = tmp_path / 'm.dot'
    result = run_real(tmp_path, '-f', 'json', '--dot', str(dot))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ''
    assert [tuple(r.values()) for r in json.loads(result.stdout)] == \
        status.transitions('image')
    _, _, edges = parse_dot(dot.read_text())
    assert len(edges) == 23


def test_real_app_reports_unwritable_dot_file(tmp_path):
    target = tmp_path / 'missing' / 'm.dot'
    result = run_real(tmp_path, '--dot', str(target))
    # An error the operator can fix: one line, exit code 2.
    assert result.returncode == 2
    assert result.stderr == (f'ERROR: cannot write the dot file {target}: '
                             f'No such file or directory\n')
    assert result.stdout == ''


def _entry_point_registered():
    eps = importlib.metadata.entry_points(group='multistore_prefix.commands')
    return any(ep.name == 'status-machine' for ep in eps)


@pytest.mark.skipif(not _entry_point_registered(),
                    reason='the status-machine entry point is not in '
                           'setup.cfg (or the package was not reinstalled)')
def test_console_script(tmp_path):
    script = pathlib.Path(sys.executable).with_name('multistore-prefix')
    result = run_real(tmp_path, '--machine', 'location', '-f', 'json',
                      script=script)
    assert result.returncode == 0, result.stderr
    assert [tuple(r.values()) for r in json.loads(result.stdout)] == \
        status.transitions('location')
