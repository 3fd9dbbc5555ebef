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

"""One node of the test cluster: a local ``mariadbd`` with galera-4.

A node has its own directory (configuration file, data, error log) and its
own ports on 127.0.0.1, so it never meets the system server on 3306 or
another node.  Under root it runs as the ``mysql`` user: rsync state
transfer fails for a node running as root (rsync's daemon drops to
``nobody``).  It is started with ``--defaults-file`` only (the system
``my.cnf`` names the server on 3306), in a process group of its own.
"""

import contextlib
import ctypes
import os
import pwd
import signal
import subprocess
import time

import pymysql

MARIADBD = '/usr/sbin/mariadbd'
INSTALL_DB = 'mariadb-install-db'
PROVIDER = '/usr/lib/galera/libgalera_smm.so'
SST_METHOD = 'rsync'

#: Node k (from 1) listens on these plus k: SQL, group communication,
#: incremental and full state transfer.
SQL_PORT = 14300
WSREP_PORT = 14400
IST_PORT = 14500
SST_PORT = 14600
MAX_NODES = 3

#: Bounds, in seconds.
INSTALL_TIMEOUT = 60
START_TIMEOUT = 90
STOP_TIMEOUT = 30
POLL_INTERVAL = 0.2
LOG_TAIL_LINES = 25

_PR_SET_PDEATHSIG = 1

NODE_CNF = """\
[mysqld]
datadir = {datadir}
socket = {directory}/mysqld.sock
pid-file = {directory}/mysqld.pid
log-error = {error_log}
tmpdir = {directory}/tmp
bind-address = 127.0.0.1
port = {sql_port}
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
performance_schema = OFF
# Galera's requirements.
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
# Small and quick: test data, and every commit is on three nodes anyway.
innodb_buffer_pool_size = 64M
innodb_log_file_size = 32M
innodb_flush_log_at_trx_commit = 2
innodb_use_native_aio = OFF
wsrep_on = ON
wsrep_provider = {provider}
wsrep_cluster_name = {cluster_name}
wsrep_cluster_address = gcomm://{peers}
wsrep_node_name = node{index}
wsrep_node_address = 127.0.0.1:{wsrep_port}
wsrep_node_incoming_address = 127.0.0.1:{sql_port}
wsrep_provider_options = "gmcast.listen_addr=tcp://127.0.0.1:{wsrep_port};\
ist.recv_addr=127.0.0.1:{ist_port};gcache.size=32M;pc.recovery=FALSE"
wsrep_sst_method = {sst_method}
wsrep_sst_receive_address = 127.0.0.1:{sst_port}
"""


class ClusterError(Exception):
    """The cluster could not be started (the message says why)."""


def ports(index: int) -> tuple[int, int, int, int]:
    """Node ``index``'s SQL, wsrep, IST and SST ports."""
    return (SQL_PORT + index, WSREP_PORT + index, IST_PORT + index,
            SST_PORT + index)


def _tail(path: str, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, encoding='utf-8', errors='replace') as log:
            text = log.readlines()[-lines:]
    except OSError as exc:
        return f'(no log: {exc})'
    return ''.join(text).rstrip()


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a process group we started (its leader is ``process``)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.communicate(timeout=STOP_TIMEOUT)


def _die_with_parent():
    # A test run killed outright must not leave nodes holding the fixed
    # ports: the kernel sends SIGKILL to the node when pytest dies.  Set
    # after the switch to the node user, which would clear it.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Node:
    """One ``mariadbd`` of the cluster.

    :ivar index: 1, 2, 3...
    :ivar directory: this node's files (configuration, data, error log).
    :ivar sql_port: where clients connect (127.0.0.1).
    :ivar process: the running ``mariadbd`` (``None`` when stopped).
    """

    def __init__(self, index: int, directory: str, cluster_name: str,
                 size: int, user: pwd.struct_passwd | None):
        self.index = index
        self.directory = directory
        self.datadir = os.path.join(directory, 'data')
        self.cnf = os.path.join(directory, 'my.cnf')
        self.error_log = os.path.join(directory, 'error.log')
        (self.sql_port, self.wsrep_port, self.ist_port,
         self.sst_port) = ports(index)
        self.process: subprocess.Popen | None = None
        self._user = user
        peers = ','.join(f'127.0.0.1:{WSREP_PORT + k}'
                         for k in range(1, size + 1))
        os.makedirs(os.path.join(directory, 'tmp'))
        os.makedirs(self.datadir)
        with open(self.cnf, 'w', encoding='utf-8') as cnf:
            cnf.write(NODE_CNF.format(
                datadir=self.datadir, directory=directory,
                error_log=self.error_log, sql_port=self.sql_port,
                wsrep_port=self.wsrep_port, ist_port=self.ist_port,
                sst_port=self.sst_port, index=index, peers=peers,
                cluster_name=cluster_name, provider=PROVIDER,
                sst_method=SST_METHOD))
        if user is not None:
            for path in (directory, self.datadir,
                         os.path.join(directory, 'tmp'), self.cnf):
                os.chown(path, user.pw_uid, user.pw_gid)

    def url(self, database: str = '', causal: bool = False,
            user: str = 'root') -> str:
        """A SQLAlchemy URL for this node (no password).

        :param causal: every read first waits until this node has applied
            what the cluster committed before it (``wsrep_sync_wait``), so
            it sees a write made on another node.
        """
        url = f'mysql+pymysql://{user}@127.0.0.1:{self.sql_port}/{database}'
        if causal:
            url += '?init_command=SET+SESSION+wsrep_sync_wait%3D1'
        return url

    def connect(self, **kwargs) -> pymysql.Connection:
        """A plain PyMySQL connection to this node, autocommit."""
        kwargs.setdefault('connect_timeout', 5)
        kwargs.setdefault('read_timeout', 30)
        kwargs.setdefault('write_timeout', 30)
        return pymysql.connect(host='127.0.0.1', port=self.sql_port,
                               user='root', password='', autocommit=True,
                               **kwargs)

    def status(self) -> dict[str, str]:
        """The node's ``wsrep_%`` status variables."""
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SHOW GLOBAL STATUS LIKE 'wsrep_%%'")
                return dict(cursor.fetchall())
        finally:
            connection.close()

    def conflicts(self) -> int:
        """Local transactions this node aborted for a replicated one so far.

        Certification failures (it committed second) and brute-force
        aborts (a replicated change needed a row it held).
        """
        status = self.status()
        return (int(status['wsrep_local_cert_failures'])
                + int(status['wsrep_local_bf_aborts']))

    def log_tail(self) -> str:
        return _tail(self.error_log)

    def fail(self, message: str) -> ClusterError:
        """A :class:`ClusterError` that ends with this node's log."""
        return ClusterError(
            f'galera node {self.index} (127.0.0.1:{self.sql_port}, '
            f'{self.directory}): {message}\n--- last lines of '
            f'{self.error_log} ---\n{self.log_tail()}')

    def install(self) -> subprocess.Popen:
        """Start making the system tables of an empty data directory."""
        return subprocess.Popen(
            [INSTALL_DB, f'--defaults-file={self.cnf}',
             '--auth-root-authentication-method=normal', '--skip-test-db',
             *self._user_args()],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def start(self, bootstrap: bool) -> None:
        """Start ``mariadbd``; :meth:`wait_synced` tells when it is in."""
        argv = [MARIADBD, f'--defaults-file={self.cnf}']
        if bootstrap:
            argv.append('--wsrep-new-cluster')
        user = {}
        if self._user is not None:
            user = {'user': self._user.pw_uid, 'group': self._user.pw_gid,
                    'extra_groups': []}
        with open(os.path.join(self.directory, 'stdout.log'), 'w') as out:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent, **user)

    def wait_synced(self, cluster_size: int, timeout: float) -> None:
        """Wait until this node is ``Synced`` in a cluster of that size.

        :raises ClusterError: it exited, or the bound passed (with the
            tail of its error log).
        """
        deadline = time.monotonic() + timeout
        last = 'no answer yet'
        while True:
            if self.process.poll() is not None:
                raise self.fail(f'mariadbd exited with status '
                                f'{self.process.returncode} while starting')
            try:
                status = self.status()
            except pymysql.MySQLError as exc:
                last = f'not answering ({exc})'
            else:
                state = status.get('wsrep_local_state_comment')
                size = status.get('wsrep_cluster_size')
                last = f'state {state}, cluster size {size}'
                if (state == 'Synced' and size == str(cluster_size)
                        and status.get('wsrep_ready') == 'ON'):
                    return
            if time.monotonic() > deadline:
                raise self.fail(f'not Synced in a cluster of '
                                f'{cluster_size} after {timeout:.0f} s '
                                f'({last})')
            time.sleep(POLL_INTERVAL)

    def stop(self) -> None:
        """End the node's process group: SIGTERM, then SIGKILL."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT)
        # Then whatever is left of its group (state transfer scripts).
        kill_group(process)

    def wait_installed(self, install: subprocess.Popen) -> None:
        """Wait for :meth:`install`; raise what went wrong."""
        try:
            output, _ = install.communicate(timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            kill_group(install)
            raise self.fail(f'{INSTALL_DB} still running after '
                            f'{INSTALL_TIMEOUT} s') from None
        if install.returncode != 0:
            said = '\n'.join(output.strip().splitlines()[:LOG_TAIL_LINES])
            raise self.fail(f'{INSTALL_DB} failed (exit '
                            f'{install.returncode}):\n{said}')

    def _user_args(self) -> list[str]:
        return [f'--user={self._user.pw_name}'] if self._user else []
