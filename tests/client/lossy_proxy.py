"""A TCP proxy on 127.0.0.1 in front of a gateway that loses answers on purpose.

Each new connection takes the next planned fate (then "pass" once the plan is used up):

* "pass": bytes flow both ways untouched;
* "drop": the request reaches the gateway; when its answer starts to come back, the client's
  connection is closed without it (the client sees the server disconnect);
* "hold": the request reaches the gateway; its answer is kept from the client until the client
  gives up (its read timeout) and closes.

In "drop" and "hold" the gateway has answered, so it has acted on the request: exactly the
case of a client that cannot tell what happened.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import deque
from types import TracebackType

_CHUNK = 65536


class LossyProxy:
    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._plan: deque[str] = deque()
        self._lock = threading.Lock()
        self.fates: list[str] = []  # the fate of each connection so far, in order
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def plan(self, *fates: str) -> None:
        with self._lock:
            self._plan.extend(fates)

    def _accept(self) -> None:
        while True:
            client, _ = self._listener.accept()
            if self._closing:
                client.close()
                return
            with self._lock:
                fate = self._plan.popleft() if self._plan else "pass"
                self.fates.append(fate)
            thread = threading.Thread(target=self._serve, args=(client, fate), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket, fate: str) -> None:
        upstream = socket.create_connection(self._target)
        to_gateway = threading.Thread(target=_pipe, args=(client, upstream), daemon=True)
        to_gateway.start()
        try:
            if fate == "pass":
                _pipe(upstream, client)
            else:
                upstream.recv(_CHUNK)  # the gateway has answered, so it has acted
                if fate == "hold":
                    to_gateway.join()  # until the client gives up and closes
        finally:
            for sock in (client, upstream):
                _close(sock)
            to_gateway.join()

    def close(self) -> None:
        # accept() does not return when its socket is closed: a last connection ends it.
        self._closing = True
        socket.create_connection(self._listener.getsockname()).close()
        self._accepting.join()
        self._listener.close()
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> LossyProxy:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(_CHUNK):
            sink.sendall(data)
    except OSError:  # either side closed
        pass
    _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed or never connected
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
