"""Profile images kept locally: downloaded once, stored under the media folder named by their SHA-256.

Naming by content hash makes a second download of the same picture (the same person in two lists, a re-run)
write nothing new, and never lets one URL's image overwrite another's. Only images are kept, at most
``MAX_BYTES``: a URL that answers with a web page or a huge file is refused with the reason. The URL comes
from scraped profiles, so only public hosts are fetched and a redirect is not followed (``clients.egress``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import requests
import urllib3

from leads_pipeline.lib.clients.egress import deadline_session
from leads_pipeline.lib.clients.http import redact
from leads_pipeline.lib.wording import plain_number

MAX_BYTES = 5 * 1024 * 1024
DEADLINE_S = 30.0
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif"}


class MediaError(Exception):
    """The image could not be fetched or is not an image; the message says which and why."""


def store_image(url: str, media_dir: Path, timeout: float = 10.0, deadline_s: float = DEADLINE_S) -> Path:
    """Download ``url`` into ``media_dir`` as ``<sha256><ext>``; return the file's path.

    ``timeout`` bounds each wait for data and ``deadline_s`` the whole exchange, headers and body
    (``egress.deadline_session``): a host sending a byte now and then would otherwise hold the profile step for
    as long as it liked. The body is read as it arrives (``read1``), so that a connection cut at the deadline
    ends the read at once."""
    with deadline_session(deadline_s) as (http, cut_off):
        failure: MediaError | None = None
        try:
            kind, body = _download(http, url, timeout)
        except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
            failure = MediaError(f"cannot download {redact(url)}: {redact(str(error))}")
        except MediaError as error:
            failure = error
        if cut_off.is_set():  # whatever became of the answer cut short (an error, headers or body ended early)
            raise MediaError(f"{redact(url)} took longer than {plain_number(deadline_s)} s to send")
        if failure is not None:
            raise failure
    digest = hashlib.sha256(body).hexdigest()
    media_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = media_dir / f"{digest}{_EXTENSIONS.get(kind, '.img')}"
    if not path.exists():
        # readable by its owner only, as exports are: a photo of a person is personal data, and the umask's 0644
        # let every account on a shared host look at it
        temporary = path.with_suffix(path.suffix + ".tmp")
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            out.write(body)
        temporary.replace(path)
    return path


def _download(http: requests.Session, url: str, timeout: float) -> tuple[str, bytes]:
    """The image's media type and bytes."""
    with http.get(url, timeout=timeout, stream=True, allow_redirects=False) as response:
        if response.status_code != 200:
            raise MediaError(f"{redact(url)} answered HTTP {response.status_code}")
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if not kind.startswith("image/"):
            raise MediaError(f"{redact(url)} is not an image (Content-Type {kind or 'missing'})")
        body = bytearray()
        while block := response.raw.read1(64 * 1024, decode_content=True):
            body.extend(block)
            if len(body) > MAX_BYTES:
                raise MediaError(f"{redact(url)} is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    return kind, bytes(body)
