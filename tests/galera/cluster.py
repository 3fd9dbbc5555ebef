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

"""A MariaDB Galera cluster on loopback, made fresh for a test session.

Each node is a local ``mariadbd`` with the galera-4 provider, its own data
directory, configuration file and ports, bound to 127.0.0.1; the system
server on 3306 is never touched.  Node 1 bootstraps a new cluster, the
others join it one at a time by state transfer (rsync), and the cluster is
ready when every node says ``Synced`` in a cluster of the full size.
Stopping ends each node's process group (SIGTERM, then SIGKILL after a
bound) and removes every file.

Data directories are new each time (``safe_to_bootstrap`` stays 0 after a
stop), in a directory the ``mysql`` user can reach (pytest's own temporary
directory is 0700).  A test run killed outright takes its nodes with it,
and the next run removes the files it left.
"""

import glob
import os
import pwd
import shutil
import socket
import tempfile
import time
import uuid

from tests.galera import node as node_mod

#: What :meth:`Cluster.start` raises, with the reason.
ClusterError = node_mod.ClusterError

#: Under root, nodes run as this user (state transfer fails under root).
NODE_USER = 'mysql'
DIRECTORY_PREFIX = 'msp-galera-'
#: In a cluster's directory: the process id of the test run that made it.
OWNER_FILE = 'owner.pid'


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


def _remove_abandoned() -> None:
    """Remove the files of clusters whose test run was killed.

    Their nodes died with it (see :mod:`tests.galera.node`); their files
    stay, named by the prefix and holding the dead run's process id.
    """
    for path in glob.glob(os.path.join(tempfile.gettempdir(),
                                       DIRECTORY_PREFIX + '*')):
        try:
            with open(os.path.join(path, OWNER_FILE)) as owner:
                pid = int(owner.read())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass  # alive, another user's


class Cluster:
    """A Galera cluster of ``size`` local nodes, made fresh.

    ``with Cluster() as cluster:`` starts it and removes it afterwards.

    :ivar nodes: each member's :class:`~tests.galera.node.Node`, node 1
        first.
    :ivar directory: everything the cluster wrote.
    :ivar started_in: seconds from nothing to every node ``Synced``.
    """

    def __init__(self, size: int = 3):
        if not 1 <= size <= node_mod.MAX_NODES:
            raise ValueError(f'a test cluster has 1 to '
                             f'{node_mod.MAX_NODES} nodes')
        self.size = size
        self.nodes: list[node_mod.Node] = []
        self.directory: str | None = None
        self.started_in: float | None = None
        self._installs: list[tuple] = []

    def __enter__(self) -> 'Cluster':
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        """Install, bootstrap node 1, join the others one at a time.

        :raises ClusterError: what is missing or which node failed, and
            why; whatever had started is stopped and removed.
        """
        started = time.monotonic()
        user = self._check_prerequisites()
        try:
            self._make_nodes(user)
            self._installs = [(node, node.install()) for node in self.nodes]
            for node, install in self._installs:
                node.wait_installed(install)
            self._installs = []
            for node in self.nodes:
                node.start(bootstrap=node.index == 1)
                node.wait_synced(node.index, node_mod.START_TIMEOUT)
        except OSError as exc:
            self.stop()
            raise ClusterError(f'cannot start the galera test cluster: '
                               f'{exc}') from exc
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - started

    def stop(self) -> None:
        """Stop every node, then remove every file (safe to call twice)."""
        try:
            for _node, install in self._installs:
                node_mod.kill_group(install)
            self._installs = []
            for node in reversed(self.nodes):
                node.stop()
        finally:
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)
                self.directory = None

    def create_database(self) -> str:
        """A new empty database (utf8mb4) on every node; its name."""
        name = f'msp_test_{uuid.uuid4().hex[:12]}'
        self._run(f'CREATE DATABASE {name} CHARACTER SET utf8mb4')
        return name

    def add_user(self, user: str, database: str) -> None:
        """A user (no password) who may do anything in ``database``."""
        self._run(f"CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1'",
                  f"GRANT ALL PRIVILEGES ON {database}.* TO "
                  f"'{user}'@'127.0.0.1'")

    def sync(self) -> None:
        """Wait until every node has applied what was committed before.

        A node answers as soon as it has committed a change itself; the
        others apply it a moment later (schema changes and grants too).
        """
        for node in self.nodes:
            connection = node.connect()
            try:
                with connection.cursor() as cursor:
                    cursor.execute('SET SESSION wsrep_sync_wait = 1')
                    cursor.execute('SELECT 1')
            finally:
                connection.close()

    def _run(self, *statements: str) -> None:
        connection = self.nodes[0].connect()
        try:
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            connection.close()
        self.sync()

    def _check_prerequisites(self) -> pwd.struct_passwd | None:
        """Raise what is missing; the user nodes run as (None: this one)."""
        for path in (node_mod.MARIADBD, node_mod.PROVIDER):
            if not os.path.exists(path):
                raise ClusterError(f'{path} is missing (Debian: apt-get '
                                   f'install mariadb-server galera-4)')
        for tool in (node_mod.INSTALL_DB,
                     f'wsrep_sst_{node_mod.SST_METHOD}', 'rsync'):
            if shutil.which(tool) is None:
                raise ClusterError(f'{tool} is not on PATH (Debian: '
                                   f'apt-get install mariadb-server rsync)')
        busy = [port for k in range(1, self.size + 1)
                for port in node_mod.ports(k) if not _port_free(port)]
        if busy:
            first = node_mod.ports(1)
            last = node_mod.ports(node_mod.MAX_NODES)
            raise ClusterError(
                f'127.0.0.1 ports {busy} are taken (another Galera test '
                f'cluster still running?); the test cluster uses only '
                + ', '.join(f'{a}-{b}' for a, b in zip(first, last)))
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(NODE_USER)
        except KeyError:
            raise ClusterError(
                f'running as root, and there is no {NODE_USER!r} user to '
                f'run the nodes as (state transfer fails under root)'
            ) from None

    def _make_nodes(self, user) -> None:
        _remove_abandoned()
        # Not under pytest's 0700 directory: the node user must reach it.
        self.directory = tempfile.mkdtemp(prefix=DIRECTORY_PREFIX)
        os.chmod(self.directory, 0o755)
        with open(os.path.join(self.directory, OWNER_FILE), 'w') as owner:
            owner.write(str(os.getpid()))
        cluster_name = os.path.basename(self.directory)
        self.nodes = [
            node_mod.Node(k, os.path.join(self.directory, f'node{k}'),
                          cluster_name, self.size, user)
            for k in range(1, self.size + 1)]
