"""LinkedIn's media CDN (``media.licdn.com``) emulator: the profile photos the profile actor links to.

The world keeps each profile's photo URL as LinkedIn writes it; the Apify emulator hands clients the same URL
with ``https://media.licdn.com`` replaced by this emulator's base (``http://127.0.0.1:PORT/licdn``), so
that downloading a photo stays on the machine like every other provider call. Each photo is a small PNG
whose colours derive from its URL, so one person's photo is the same bytes on every run and two people's
differ. URLs of no one in the world answer 404, like an expired CDN link; no key is needed.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from urllib.parse import urlsplit

from leads_pipeline.sandbox.http.common import EmulatorSettings, Request, Response
from leads_pipeline.sandbox.world import World

HOST = "media.licdn.com"
"""The host whose URLs the Apify emulator rewrites to this emulator."""

SIZE = 16
"""Width and height of a photo in pixels: enough for distinct images, small enough to serve thousands."""


def local_url(url: str | None, base: str) -> str | None:
    """``url`` on the LinkedIn CDN rewritten to the emulator at ``base``; any other URL unchanged."""
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{base}{parts.path}" if parts.hostname == HOST else url


def photo(path: str) -> bytes:
    """A deterministic PNG for the photo at ``path``: a 4x4 grid of colours taken from the path's SHA-256."""
    digest = hashlib.sha256(path.encode()).digest()
    colours = [(digest * 2)[i : i + 3] for i in range(0, 48, 3)]  # 16 cells of RGB from 32 bytes: wraps once
    cell = SIZE // 4
    rows = b"".join(b"\x00" + b"".join(colours[(y // cell) * 4 + x // cell] for x in range(SIZE)) for y in range(SIZE))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


class LinkedInMediaEmulator:
    name = "licdn"

    def __init__(self, world: World, settings: EmulatorSettings) -> None:
        self._settings = settings
        self._paths = frozenset(
            urlsplit(p.linkedin.photo_url).path for p in world.people if p.linkedin and p.linkedin.photo_url
        )

    def api_key(self, request: Request) -> str | None:
        """The CDN's URLs are public: no key."""
        return None

    def error(self, status: int, retry_after_s: int | None) -> Response:
        headers = [("Retry-After", str(retry_after_s))] if retry_after_s else []
        return Response(status, b"", [("Content-Type", "text/plain"), *headers])

    def handle(self, request: Request) -> Response:
        if request.method != "GET" or request.path not in self._paths:
            return Response(404, b"", [("Content-Type", "text/plain")])
        return Response(200, photo(request.path), [("Content-Type", "image/png")])
