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

"""The Galera node a backfill worker writes to dies mid-run.

``mariadbd`` of that node is killed (SIGKILL) after the worker committed
some batches.  The worker retries, gives up with one line and exit 1, and
its report still lists exactly the rows it changed, as the surviving
nodes hold them, so ``--revert`` from another node undoes them all.  The
node is brought back afterwards, for the tests after this one.
"""

import contextlib
import os
import signal
import time

import sqlalchemy as sa

from multistore_prefix.db import models
from tests.functional import test_backfill_cli as cli
from tests.galera import node as node_mod

_L = models.image_locations

LOCATIONS = 3000
#: Quick to give up, so the test waits seconds, not the default 100 s.
RETRIES = """
max_retries = 2
retry_interval = 1
"""


def done_on(url) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return cli.done_count(engine)
    finally:
        engine.dispose()


def kill(node) -> None:
    """SIGKILL the node's ``mariadbd``: no shutdown, no goodbye."""
    process, node.process = node.process, None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    node_mod.kill_group(process)


def test_a_killed_node_leaves_a_whole_report_to_revert(
        galera, galera_database, tmp_path):
    first, lost = galera.nodes[0], galera.nodes[1]
    survivor = first.url(galera_database, causal=True)
    engine = sa.create_engine(survivor, poolclass=sa.pool.NullPool)
    try:
        seeded = cli.seed(engine, cli.legacy_locations(LOCATIONS),
                          per_image=2)
    finally:
        engine.dispose()
    galera.sync()
    report_path = tmp_path / 'worker.json'
    worker = cli.start_backfill(
        cli.write_conf(tmp_path, lost.url(galera_database), RETRIES),
        '--batch-size', '10', '--report', str(report_path), '-f', 'json')
    try:
        deadline = time.monotonic() + 60
        while done_on(survivor) < 100:
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, 'the worker made no progress'
            time.sleep(0.25)
        kill(lost)
        out, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    try:
        assert worker.returncode == 1, err
        assert 'Traceback' not in err
        errors = [line for line in err.splitlines() if 'ERROR' in line]
        assert len(errors) == 1 and 'lost the database' in errors[0], err

        engine = sa.create_engine(survivor, poolclass=sa.pool.NullPool)
        try:
            done = set(cli.check_consistent(engine, seeded))
            report, confirmed, unconfirmed = cli.report_changes(report_path)
            assert report['failed']
            assert report['updated'] == len(confirmed)
            assert done and confirmed <= done <= confirmed | unconfirmed
            cli.assert_reverted(
                cli.write_conf(tmp_path, first.url(galera_database)),
                report_path, engine, seeded, done, unconfirmed)
        finally:
            engine.dispose()
    finally:
        lost.start(bootstrap=False)
        lost.wait_synced(len(galera.nodes), node_mod.START_TIMEOUT)
