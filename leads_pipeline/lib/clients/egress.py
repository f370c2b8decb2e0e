"""The guard on URLs that users or provider data choose: webhooks and profile photos reach only public hosts.

A ``--notify`` URL is typed by any user and a photo URL comes from scraped profiles; both are fetched from the
machine that holds the database and provider keys. Without a guard, ``http://169.254.169.254/...`` reads the
cloud metadata service and ``http://127.0.0.1:5432`` probes local services, and a redirect from a public host
leads to the same places. So the host's every address must be public, and redirects are not followed (the
caller sees the 3xx as a failed delivery or download). ``LEADS_ALLOW_PRIVATE_URLS=1`` lifts the guard for the
local sandbox, whose settings (``Sandbox.env()``) set it; nothing else does.

The sessions of :func:`deadline_session` look a host up once, when their pool for it is made, refuse it (before
anything is sent, with a message that says why) unless every address is public (:func:`public_addresses`), and
connect to those addresses only. A name whose DNS answer changes (public first, ``127.0.0.1`` next) cannot pass
the check and be connected to by a later lookup: there is none to race (and no second lookup to wait for).

Such a host also chooses how slowly it answers: ``requests``' timeout bounds each wait for data, so status line,
headers and body sent a few bytes at a time hold the caller as long as the host likes. :func:`deadline_session`
bounds the whole exchange: a watchdog shuts the connection down when the deadline passes.

Both hold for connections :func:`deadline_session` opens itself, so it never goes through a proxy, not even one
that ``HTTP_PROXY``, ``HTTPS_PROXY`` or ``ALL_PROXY`` name (``trust_env`` off): ``requests`` would hand the request
to a pool of its own, with neither check nor watchdog, and the proxy, which resolves the name itself, would reach
the private address the guard refuses (the cloud metadata service, if the proxy runs there). A host that egresses
only through a proxy fails such deliveries and downloads instead of losing the guard.
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

import requests
import urllib3
import urllib3.connection
import urllib3.exceptions
from requests.adapters import HTTPAdapter

ALLOW_PRIVATE_ENV = "LEADS_ALLOW_PRIVATE_URLS"


class PrivateAddressError(requests.ConnectionError):
    """The URL's host is (or resolves to) a loopback, private, link-local or otherwise non-public address.

    A ``ConnectionError`` so the callers' handling of an unreachable host records it the same way."""


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])  # an IPv6 scope ("fe80::1%eth0") is not part of the address
    return ip.is_global and not ip.is_multicast


def public_addresses(host: str, port: int | None) -> list[str]:
    """The addresses of ``host`` (one lookup), refused with ``PrivateAddressError`` unless every one is public (or
    the guard is lifted). The message names the host, never the URL: its query may hold a token."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError) as error:  # ValueError: a name IDNA cannot encode
        raise requests.ConnectionError(f"cannot resolve {host!r}: {error}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if os.environ.get(ALLOW_PRIVATE_ENV) != "1":
        _refuse_private(host, addresses)
    return addresses


def _refuse_private(host: str, addresses: list[str]) -> None:
    private = sorted({address for address in addresses if not _public(address)})
    if private:
        raise PrivateAddressError(
            f"{host!r} is not a public address ({', '.join(private)}); only the local sandbox may use those "
            f"({ALLOW_PRIVATE_ENV}=1)"
        )


class _PublicConnection(urllib3.connection.HTTPConnection):
    """A connection to the addresses its pool looked up and checked (``addresses``), never to a lookup of its own:
    the DNS answer checked is the one used."""

    addresses: list[str]

    def _new_conn(self) -> socket.socket:
        name = self._dns_host
        failure: urllib3.exceptions.HTTPError | None = None
        for address in self.addresses:
            self._dns_host = address  # urllib3 resolves this again, but a numeric address resolves to itself
            try:
                return super()._new_conn()
            except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError) as error:
                failure = error  # the next address, as urllib3 tries each address of a name
            finally:
                self._dns_host = name  # the name, not the address, is sent in Host and checked in TLS
        assert failure is not None  # getaddrinfo answers at least one address or raises
        raise failure


class _PublicHTTPSConnection(_PublicConnection, urllib3.connection.HTTPSConnection):
    pass


class _WatchedPool(urllib3.HTTPConnectionPool):
    """A pool of connections to its host's public addresses, looked up and checked as the pool is made (the
    request is refused there, ``PrivateAddressError`` as it is raised), that lists the sockets they open for the
    watchdog to shut down. The socket, not the connection: a connection whose answer ends with the connection
    (HTTP/1.0, ``Connection: close``) lets go of it while the body is still being read."""

    ConnectionCls = _PublicConnection

    def __init__(self, *args: Any, watch: Callable[[socket.socket], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watch = watch
        self._addresses = public_addresses(self.host, self.port)

    def _new_conn(self) -> Any:  # an HTTP or an HTTPS connection
        conn: Any = super()._new_conn()
        conn.addresses = self._addresses
        connect = conn.connect

        def connect_watched() -> None:
            connect()
            self._watch(conn.sock)

        conn.connect = connect_watched
        return conn


class _WatchedHTTPSPool(_WatchedPool, urllib3.HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


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
    """A session whose connections reach only public addresses (``PrivateAddressError`` otherwise) and are shut
    down ``seconds`` after it opens (the request then fails with a ``requests.ConnectionError``), and the event
    that says the deadline cut it off. The environment's proxies (and ``.netrc`` credentials, CA bundle settings)
    are not used: a proxied request escapes both."""
    adapter = _DeadlineAdapter()
    session = requests.Session()
    session.trust_env = False
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
