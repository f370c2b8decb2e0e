"""The guard on URLs that users or provider data choose: webhooks and profile photos reach only public hosts.

A ``--notify`` URL is typed by any user and a photo URL comes from scraped profiles; both are fetched from the
machine that holds the database and provider keys. Without a guard, ``http://169.254.169.254/...`` reads the
cloud metadata service and ``http://127.0.0.1:5432`` probes local services, and a redirect from a public host
leads to the same places. So the host's every address must be public, and redirects are not followed (the
caller sees the 3xx as a failed delivery or download). ``LEADS_ALLOW_PRIVATE_URLS=1`` lifts the guard for the
local sandbox, whose settings (``Sandbox.env()``) set it; nothing else does.

A host name is resolved here and again by ``requests``, so a name whose DNS answer changes between the two can
still pass; the guard stops typed addresses, names of private hosts and redirects.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from urllib.parse import urlsplit

import requests

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
