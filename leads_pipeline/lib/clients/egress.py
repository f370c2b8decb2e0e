"""The guard on URLs that users or provider data choose: webhooks and profile photos reach only public hosts.

A ``--notify`` URL is typed by any user and a photo URL comes from scraped profiles; both are fetched from the
machine that holds the database and provider keys. Without a guard, ``http://169.254.169.254/...`` reads the
cloud metadata service and ``http://127.0.0.1:5432`` probes local services, and a redirect from a public host
leads to the same places. So the host's every address must be public, and redirects are not followed (the
caller sees the 3xx as a failed delivery or download). ``LEADS_ALLOW_PRIVATE_URLS=1`` lifts the guard for the
local sandbox, whose settings (``Sandbox.env()``) set it; nothing else does.

A host name is resolved here and again by ``requests``, so a name whose DNS answer changes between the two can
still pass; the guard stops typed addresses, names of private hosts and redirects.

Such a host also chooses how slowly it answers: ``requests``' timeout bounds each wait for data, so status line,
headers and body sent a few bytes at a time hold the caller as long as the host likes. :func:`deadline_session`
bounds the whole exchange: a watchdog shuts the connection down when the deadline passes.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

ALLOW_PRIVATE_ENV = "LEADS_ALLOW_PRIVATE_URLS"


class PrivateAddressError(requests.RequestException):
    """The URL's host is (or resolves to) a loopback, private, link-local or otherwise non-public address.

    A ``RequestException`` so the callers' handling of an unreachable host records it the same way."""


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])  # an IPv6 scope ("fe80::1%eth0") is not part of the address
    return ip.is_global and not ip.is_multicast


def check_public(url: str) -> None:
    """Raise ``PrivateAddressError`` unless every address of ``url``'s host is public (or the guard is lifted).

    The message names the host, never the URL: its query may hold a token."""
    if os.environ.get(ALLOW_PRIVATE_ENV) == "1":
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError) as error:
        raise requests.ConnectionError(f"cannot resolve {host!r}: {error}") from None
    private = sorted({str(info[4][0]) for info in infos if not _public(str(info[4][0]))})
    if private:
        raise PrivateAddressError(
            f"{host!r} is not a public address ({', '.join(private)}); only the local sandbox may use those "
            f"({ALLOW_PRIVATE_ENV}=1)"
        )


class _WatchedPool(urllib3.HTTPConnectionPool):
    """A pool that lists the sockets its connections open, for the watchdog to shut down. The socket, not the
    connection: a connection whose answer ends with the connection (HTTP/1.0, ``Connection: close``) lets go of
    it while the body is still being read."""

    def __init__(self, *args: Any, watch: Callable[[socket.socket], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watch = watch

    def _new_conn(self) -> Any:  # an HTTP or an HTTPS connection
        conn: Any = super()._new_conn()
        connect = conn.connect

        def connect_watched() -> None:
            connect()
            self._watch(conn.sock)

        conn.connect = connect_watched
        return conn


class _WatchedHTTPSPool(_WatchedPool, urllib3.HTTPSConnectionPool):
    pass


class _DeadlineAdapter(HTTPAdapter):
    """An adapter whose connections :meth:`cut` shuts down, whatever read they are blocked in."""

    def __init__(self) -> None:
        self.opened: list[socket.socket] = []
        self.cut_off = threading.Event()
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        # the pool manager calls these as it calls pool classes
        self.poolmanager.pool_classes_by_scheme = {
            "http": cast(type, functools.partial(_WatchedPool, watch=self.watch)),
            "https": cast(type, functools.partial(_WatchedHTTPSPool, watch=self.watch)),
        }

    def watch(self, sock: socket.socket) -> None:
        """Keep a connection's socket to cut; one that connected as the deadline passed is cut at once."""
        self.opened.append(sock)
        if self.cut_off.is_set():
            self.cut()

    def cut(self) -> None:
        self.cut_off.set()
        for sock in list(self.opened):
            # the plain socket's shutdown, under TLS too: the blocked read sees the end of the stream
            with contextlib.suppress(OSError):  # closed already
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


@contextmanager
def deadline_session(seconds: float) -> Iterator[tuple[requests.Session, threading.Event]]:
    """A session whose connections are shut down ``seconds`` after it opens (the request then fails with a
    ``requests.ConnectionError``), and the event that says the deadline cut it off."""
    adapter = _DeadlineAdapter()
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    watchdog = threading.Timer(seconds, adapter.cut)
    watchdog.daemon = True
    watchdog.start()
    try:
        with session:
            yield session, adapter.cut_off
    finally:
        watchdog.cancel()
