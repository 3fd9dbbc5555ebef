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

"""A real glance-api under uWSGI, for the tests and the benchmark.

A release's Glance from PyPI and uWSGI in a venv of their own
(``tools/glance-compat --release RELEASE`` builds ``.venv-glance-RELEASE``),
with this package installed into it, as an operator installs the filter
into glance-api's environment.  uWSGI loads Glance's WSGI application as
that release documents (:func:`uwsgi_application`), once, and forks its
workers from it (uWSGI's default: the filter's per-process set-up is
exercised), on a free 127.0.0.1 port, in a new session, so that stopping it
stops its whole process group.  Glance runs without Keystone (the
``unauthenticated-context`` pipeline); its policy file lets that context do
everything.

Two file stores whose directories share a string prefix (``.../images``
and ``.../images2``): Glance's own rule gives every image of the second to
the first.  :mod:`tests.glance_compat.deployment` runs two of them on one
database.
"""

import contextlib
import importlib.util
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

#: Ports another suite of this machine uses.
RESERVED_PORTS = range(14300, 14700)
#: Seconds glance-api has to answer after it starts.
START_TIMEOUT = 120
#: glance-manage db sync, and each HTTP request.
TIMEOUT = 300

#: The stores of :class:`GlanceApi` unless told otherwise: two file stores
#: whose directories share a string prefix.
FILE_STORES = """\
[DEFAULT]
enabled_backends = fast:file, slow:file
[glance_store]
default_backend = fast
[fast]
filesystem_store_datadir = {stores}/images
[slow]
filesystem_store_datadir = {stores}/images2
"""

GLANCE_API_CONF = """\
{stores_conf}
[DEFAULT]
log_file = {workdir}/glance-api.log
debug = {debug}
show_multiple_locations = true
[os_glance_staging_store]
filesystem_store_datadir = {workdir}/staging
[os_glance_tasks_store]
filesystem_store_datadir = {workdir}/tasks
[database]
connection = {connection}
[paste_deploy]
flavor = {flavor}
config_file = {workdir}/glance-api-paste.ini
[oslo_policy]
policy_file = {workdir}/policy.json
enforce_new_defaults = false
enforce_scope = false
[multistore_prefix]
{options}
"""

UWSGI_INI = """\
[uwsgi]
{application}
http-socket = 127.0.0.1:{port}
master = true
processes = {processes}
threads = {threads}
enable-threads = true
die-on-term = true
http-auto-chunked = true
http-chunked-input = true
http-raw-body = true
buffer-size = 65535
# uWSGI's http-socket does not keep connections alive: say so.
add-header = Connection: close
logto = {workdir}/uwsgi.log
"""

#: The filter's section in the paste file.
FILTER_SECTION = """
[filter:multistore_prefix]
use = egg:multistore-prefix#multistore_prefix
"""


def free_port() -> int:
    """A free 127.0.0.1 port, outside :data:`RESERVED_PORTS`."""
    while True:
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            port = sock.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port


def require(*tools: str) -> None:
    """Skip the calling module unless these console scripts are here.

    With ``MSP_TEST_REQUIRE_GLANCE=1`` (tools/glance-compat) it fails
    instead: a missing glance is then a broken venv, not a choice.
    """
    try:
        for tool in tools:
            glance_bin(tool)
    except RuntimeError as exc:
        if os.environ.get('MSP_TEST_REQUIRE_GLANCE') == '1':
            pytest.fail(f'{exc} (MSP_TEST_REQUIRE_GLANCE=1)', pytrace=False)
        pytest.skip(str(exc), allow_module_level=True)


def glance_bin(name: str) -> str:
    """A console script of the running Python's environment."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.access(path, os.X_OK):
        raise RuntimeError(f'{name} is not installed next to '
                           f'{sys.executable}: run in the venv that '
                           f'tools/glance-compat builds '
                           f'(.venv-glance-RELEASE)')
    return path


def uwsgi_application() -> str:
    """How uWSGI loads glance-api, as the installed Glance documents it."""
    if importlib.util.find_spec('glance.wsgi') is not None:
        return 'module = glance.wsgi.api:application'
    # Older releases: pbr's glance-wsgi-api script makes the application.
    return f'wsgi-file = {glance_bin("glance-wsgi-api")}'


def paste_ini(with_filter: bool, before: str = 'unauthenticated-context'
              ) -> str:
    """Glance's own paste file, the filter added to every pipeline.

    Its ``keystone`` flavor runs without ``authtoken`` here: the context
    filter then trusts the identity headers a test sends (roles such as
    ``service``, which the Location API asks for).

    :param before: the filter goes right after this element (Glance's
        context filter), so before the cache filters and ``rootapp``.
    """
    # pip puts Glance's data files under the venv's prefix.
    shipped = pathlib.Path(sys.prefix) / 'etc/glance/glance-api-paste.ini'
    lines = []
    for line in shipped.read_text().splitlines():
        key, sep, pipeline = line.partition(' = ')
        names = pipeline.split()
        if sep and names and names[-1] == 'rootapp':
            names = [name for name in names if name != 'authtoken']
            line = f'{key} = {" ".join(names)}'
        lines.append(line)
    text = '\n'.join(lines) + '\n'
    if not with_filter:
        return text
    lines = []
    for line in text.splitlines():
        key, sep, pipeline = line.partition(' = ')
        names = pipeline.split()
        if sep and names and names[-1] == 'rootapp':
            for context in (before, 'context'):
                if context in names:
                    names.insert(names.index(context) + 1,
                                 'multistore_prefix')
                    break
            line = f'{key} = {" ".join(names)}'
        lines.append(line)
    return '\n'.join(lines) + '\n' + FILTER_SECTION


def allow_all_policy() -> str:
    """Every Glance policy rule open: the unauthenticated context may act."""
    import glance.policies
    return json.dumps({rule.name: '' for rule in glance.policies.list_rules()})


class GlanceApi:
    """One glance-api: its files, its uWSGI process and its HTTP API.

    :ivar workdir: its configuration, logs and store directories.
    :ivar connection: ``[database]/connection``.
    :ivar with_filter: the filter is in its pipeline.
    :ivar port: the 127.0.0.1 port it listens on.
    :ivar url: its base URL.
    """

    def __init__(self, workdir: pathlib.Path, connection: str, *,
                 with_filter: bool, stores_dir: pathlib.Path | None = None,
                 options: dict | None = None, flavor: str = '',
                 processes: int = 2, threads: int = 4,
                 stores_conf: str = FILE_STORES):
        """Write its files (nothing runs yet).

        :param stores_dir: where the store directories are (default
            ``workdir``); two glance-api on one database share them.
        :param options: ``[multistore_prefix]`` of glance-api.conf.
        :param stores_conf: ``enabled_backends`` and the stores' groups
            (``{stores}``: ``stores_dir``).
        """
        self.workdir = pathlib.Path(workdir)
        self.connection = connection
        self.with_filter = with_filter
        self.stores_dir = pathlib.Path(stores_dir or workdir)
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.process = None
        self.session = requests.Session()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in ('images', 'images2', 'staging', 'tasks'):
            (self.stores_dir / name).mkdir(exist_ok=True)
        self.conf = self.workdir / 'glance-api.conf'
        self.conf.write_text(GLANCE_API_CONF.format(
            stores_conf=stores_conf.format(stores=self.stores_dir),
            workdir=self.workdir,
            connection=connection, flavor=flavor, debug='false',
            options='\n'.join(f'{k} = {v}'
                              for k, v in (options or {}).items())))
        (self.workdir / 'glance-api-paste.ini').write_text(
            paste_ini(with_filter))
        (self.workdir / 'policy.json').write_text(allow_all_policy())
        (self.workdir / 'uwsgi.ini').write_text(UWSGI_INI.format(
            application=uwsgi_application(), port=self.port,
            processes=processes, threads=threads, workdir=self.workdir))

    @property
    def store_dirs(self) -> dict:
        return {'fast': self.stores_dir / 'images',
                'slow': self.stores_dir / 'images2'}

    def db_sync(self) -> None:
        """``glance-manage db sync`` on its database."""
        result = subprocess.run(
            [glance_bin('glance-manage'), '--config-file', str(self.conf),
             'db', 'sync'], capture_output=True, text=True, timeout=TIMEOUT)
        if result.returncode != 0:
            raise RuntimeError(f'glance-manage db sync exited '
                               f'{result.returncode}:\n{result.stdout}\n'
                               f'{result.stderr}')

    def command(self) -> list[str]:
        """The command that runs this glance-api."""
        return [glance_bin('uwsgi'), '--ini', str(self.workdir / 'uwsgi.ini')]

    def start(self) -> None:
        """Start uWSGI and wait until glance-api answers.

        :raises RuntimeError: it exited or did not answer in time; the
            message holds its logs.
        """
        env = {**os.environ, 'OS_GLANCE_CONFIG_DIR': str(self.workdir)}
        self.process = subprocess.Popen(
            self.command(), env=env, cwd=self.workdir, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f'glance-api exited with '
                                   f'{self.process.returncode} at start\n'
                                   f'{self.logs()}')
            with contextlib.suppress(requests.RequestException):
                # (401: the trusted flavor, asked without identity.)
                if self.session.get(f'{self.url}/v2/images',
                                    timeout=5).status_code in (200, 401):
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f'glance-api did not answer on {self.url} within '
                           f'{START_TIMEOUT} s\n{self.logs()}')

    def stop(self) -> None:
        """Stop uWSGI's whole process group (TERM, then KILL)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.session.close()

    def logs(self, tail: int = 80) -> str:
        """The last lines of uWSGI's and glance-api's logs."""
        out = []
        for name in ('uwsgi.log', 'glance-api.log'):
            path = self.workdir / name
            if path.exists():
                lines = path.read_text(errors='replace').splitlines()
                out.append(f'--- {name}\n' + '\n'.join(lines[-tail:]))
        return '\n'.join(out)

    def log_lines(self, words: str) -> list[str]:
        """glance-api's log lines that contain ``words``."""
        path = self.workdir / 'glance-api.log'
        if not path.exists():
            return []
        return [line for line in path.read_text(errors='replace'
                                                ).splitlines()
                if words in line]

    # -- the images API ---------------------------------------------------

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, f'{self.url}{path}',
                                    timeout=TIMEOUT, **kwargs)

    def create_image(self, name: str, data: bytes, store: str,
                     **properties) -> str:
        """Create an image and upload ``data`` into ``store``; its id."""
        created = self.request('POST', '/v2/images', json={
            'name': name, 'disk_format': 'raw', 'container_format': 'bare',
            **properties})
        created.raise_for_status()
        image_id = created.json()['id']
        uploaded = self.request(
            'PUT', f'/v2/images/{image_id}/file', data=data,
            headers={'Content-Type': 'application/octet-stream',
                     'X-Image-Meta-Store': store})
        uploaded.raise_for_status()
        return image_id

    def show(self, image_id: str) -> requests.Response:
        return self.request('GET', f'/v2/images/{image_id}')

    def download(self, image_id: str) -> requests.Response:
        return self.request('GET', f'/v2/images/{image_id}/file')

    def patch(self, image_id: str, changes: list) -> requests.Response:
        return self.request(
            'PATCH', f'/v2/images/{image_id}', json=changes,
            headers={'Content-Type':
                     'application/openstack-images-v2.1-json-patch'})


#: The server's own options for the eventlet glance-api command, in a
#: second configuration file: the filter's glance-api.conf stays as uWSGI
#: reads it.
EVENTLET_CONF = """\
[DEFAULT]
bind_host = 127.0.0.1
bind_port = {port}
workers = {processes}
"""

#: ``MSP_GLANCE_SERVER``: which server runs glance-api in the tests.
SERVER_ENV = 'MSP_GLANCE_SERVER'


class EventletGlanceApi(GlanceApi):
    """One glance-api run by its eventlet ``glance-api`` command.

    Glance 28 to 32 ship it (33 has only the WSGI application).  It loads
    the paste pipeline once and forks ``workers`` processes from it, as
    uWSGI does; each request runs in a green thread of its worker.
    """

    def __init__(self, workdir: pathlib.Path, connection: str, *,
                 processes: int = 2, **kwargs):
        super().__init__(workdir, connection, processes=processes, **kwargs)
        self.server_conf = self.workdir / 'glance-api-server.conf'
        self.server_conf.write_text(EVENTLET_CONF.format(
            port=self.port, processes=processes))

    def command(self) -> list[str]:
        return [glance_bin('glance-api'), '--config-file', str(self.conf),
                '--config-file', str(self.server_conf)]


def server_class() -> type[GlanceApi]:
    """The class that runs glance-api in the tests.

    :class:`GlanceApi` (uWSGI), or :class:`EventletGlanceApi` where
    ``MSP_GLANCE_SERVER=eventlet`` (``tools/glance-compat`` sets it).
    """
    server = os.environ.get(SERVER_ENV, 'uwsgi')
    classes = {'uwsgi': GlanceApi, 'eventlet': EventletGlanceApi}
    if server not in classes:
        raise RuntimeError(f'{SERVER_ENV}={server}: use uwsgi or eventlet')
    return classes[server]
