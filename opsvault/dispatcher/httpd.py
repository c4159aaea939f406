"""A small HTTP server the service runs in a thread: the webhook receiver's and the status page's.

``BoundedServer`` serves at most ``max_connections`` connections at once:
the stdlib ``ThreadingHTTPServer`` starts one thread per connection without a
bound, so a client opening many slow connections would hold as many threads
(security review G-6). ``InThread`` starts such a server in a daemon thread
and stops it again; the receiver and the page add only what they answer.
"""

from __future__ import annotations

import logging
import threading
from http.server import ThreadingHTTPServer
from typing import Any, Self

log = logging.getLogger(__name__)


class BoundedServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` serving at most ``max_connections`` connections at once."""

    daemon_threads = True
    # Logged when a connection is closed unanswered (None: close it quietly).
    refused_note: str | None = None

    def __init__(self, *args: Any, max_connections: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            if self.refused_note is not None:
                log.warning(self.refused_note, self.max_connections)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class InThread:
    """Serve one ``BoundedServer`` in a daemon thread; ``close`` stops it and waits."""

    # Named in errors and the thread's name ("the webhook receiver").
    serving = "the server"

    def __init__(self) -> None:
        self._server: BoundedServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def serve(self, server: BoundedServer, thread_name: str) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            # close() waits for the loop to notice: within 50 ms, not the default 0.5 s
            kwargs={"poll_interval": 0.05},
            name=thread_name,
            daemon=True,
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError(f"{self.serving} is not running")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def close(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
