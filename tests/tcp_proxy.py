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

"""A TCP proxy on loopback that makes network faults for real.

It sits between a client (the backfill) and a database server and relays
bytes both ways, until a test asks for a fault:

* :meth:`TcpProxy.black_hole`: nothing is relayed any more, in either
  direction, and no connection is closed: both peers' kernels still take
  and acknowledge what is sent (a firewall that drops packets, a silent
  network partition).  New connections are accepted and go nowhere.
* :meth:`TcpProxy.refuse`: every connection is cut and the port closed
  (a server that went away: "connection refused").
* :meth:`TcpProxy.restore`: back to relaying, on the same port.
"""

import contextlib
import select
import socket
import threading

import sqlalchemy as sa


class TcpProxy:
    """Relays ``127.0.0.1:<port>`` to ``target``; faults on request.

    :ivar port: the port clients connect to (the same after a refusal).
    :ivar accepted: how many client connections it accepted.
    """

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.accepted = 0
        self._relaying = threading.Event()
        self._relaying.set()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._closed = False
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self._start_accepting()

    @classmethod
    def in_front_of(cls, url: str) -> 'TcpProxy':
        """A proxy in front of the server of a SQLAlchemy ``url``."""
        parsed = sa.engine.make_url(url)
        default = 5432 if parsed.get_backend_name() == 'postgresql' else 3306
        return cls((parsed.host or '127.0.0.1', parsed.port or default))

    def url(self, url: str, password: str | None = None) -> str:
        """``url`` through this proxy (optionally with a password)."""
        parsed = sa.engine.make_url(url).set(host='127.0.0.1',
                                             port=self.port)
        if password is not None:
            parsed = parsed.set(password=password)
        return parsed.render_as_string(hide_password=False)

    # -- faults ---------------------------------------------------------

    def black_hole(self) -> None:
        """Relay nothing from now on; keep every connection open."""
        self._relaying.clear()

    def withheld(self) -> bool:
        """The black hole holds a message, to the server or from it."""
        with self._lock:
            sockets = [sock for pair in self._pairs for sock in pair]
        with contextlib.suppress(OSError, ValueError):
            return bool(select.select(sockets, [], [], 0)[0])
        return False

    def refuse(self) -> None:
        """Cut every connection and close the port."""
        with self._lock:
            listener, self._listener = self._listener, None
            pairs, self._pairs = self._pairs, []
        if listener is not None:
            _close(listener)
        for pair in pairs:
            for sock in pair:
                _close(sock)

    def restore(self) -> None:
        """Relay again (and listen again, after :meth:`refuse`)."""
        with self._lock:
            if self._listener is None and not self._closed:
                self._listener = self._listen(self.port)
                self._start_accepting()
        self._relaying.set()

    def close(self) -> None:
        self._closed = True
        self._relaying.set()
        self.refuse()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- relaying -------------------------------------------------------

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(('127.0.0.1', port))
        listener.listen(64)
        return listener

    def _start_accepting(self) -> None:
        threading.Thread(target=self._accept, args=(self._listener,),
                         daemon=True, name='proxy-accept').start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # refused or closed
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self.accepted += 1
                self._pairs.append((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink),
                                 daemon=True, name='proxy-pump').start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                # While black-holed, read nothing: what the peer sends
                # stays in the kernel's buffers, unanswered.
                self._relaying.wait()
                if self._closed:
                    return
                readable, _, _ = select.select([source], [], [], 0.1)
                if not readable or not self._relaying.is_set():
                    continue
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except (OSError, ValueError):
            pass
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
