"""Serve a WSGI app on a loopback port from a background thread (tests, benchmarks, the sandbox process).

``wsgiref``'s defaults do not survive concurrent clients: the listen backlog is 5 and handler threads block
exit. The server here sets ``request_queue_size = 1024`` and ``daemon_threads = True`` (see PROVIDERS.md,
General) and keeps quiet per request, because the emulators keep their own request log.
"""

from __future__ import annotations

import functools
import threading
from socketserver import ThreadingMixIn
from typing import Any, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Drop the per-request access line; the emulators' request log records every call."""


def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingWSGIServer, int]:
    """Start serving ``app`` on ``host:port`` (0 picks a free port); returns the server and the bound port.

    Stop it with ``server.shutdown(); server.server_close()``.
    """
    server = cast(
        ThreadingWSGIServer,
        make_server(host, port, app, server_class=ThreadingWSGIServer, handler_class=_QuietHandler),
    )
    # a short poll interval keeps shutdown() fast (the default 0.5 s would slow every test teardown)
    serve = functools.partial(server.serve_forever, poll_interval=0.05)
    thread = threading.Thread(target=serve, name=f"wsgi-{server.server_port}", daemon=True)
    thread.start()
    return server, server.server_port
