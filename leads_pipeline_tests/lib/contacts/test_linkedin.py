"""LinkedIn candidate scoring and the hash-keyed image store."""

from __future__ import annotations

import hashlib
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leads_pipeline.lib.clients.egress import ALLOW_PRIVATE_ENV
from leads_pipeline.lib.contacts.linkedin import best_profile, canonical_profile_url, score_result, search_query
from leads_pipeline.lib.contacts.media import MediaError, store_image
from leads_pipeline_tests.support import Offline, Rebinding, Receiver, drip, receiver

LEAD = {"first_name": "José", "last_name": "García", "company": "Acme Robotics", "title": "VP of Sales"}


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("linkedin.com/in/jose-garcia", "https://www.linkedin.com/in/jose-garcia"),
        ("https://uk.linkedin.com/in/jose-garcia/?trk=x", "https://www.linkedin.com/in/jose-garcia"),
        ("https://www.linkedin.com/company/acme", None),
        ("https://example.com/in/jose", None),
    ],
)
def test_canonical_profile_urls(url: str, canonical: str | None) -> None:
    assert canonical_profile_url(url) == canonical


def test_search_query_names_the_person_and_employer() -> None:
    assert search_query(LEAD) == "site:linkedin.com/in José García Acme Robotics"
    assert search_query({"first_name": "Ann", "last_name": None}) is None


def test_scores_weigh_name_company_and_title() -> None:
    full = score_result(
        LEAD, "https://www.linkedin.com/in/jose-garcia", "Jose Garcia - VP of Sales - Acme Robotics | LinkedIn", None
    )
    assert full is not None and full.score == pytest.approx(1.0) and full.matched == ("name", "company", "title")
    other_job = score_result(
        LEAD, "https://www.linkedin.com/in/jose-garcia-2", "José García - Chef - Casa Pepe | LinkedIn", None
    )
    assert other_job is not None and other_job.score == pytest.approx(0.6)
    stranger = score_result(LEAD, "https://www.linkedin.com/in/ann-lee", "Ann Lee - Acme Robotics | LinkedIn", None)
    assert stranger is not None and stranger.score == 0.0
    assert score_result(LEAD, "https://www.acme.com/", "Acme Robotics", None) is None


def test_best_profile_needs_the_threshold_and_refuses_ties() -> None:
    results = [
        ("https://www.acme.com/", "Acme Robotics - Official Site", None),
        ("https://www.linkedin.com/in/jose-garcia-2", "José García - Chef - Casa Pepe | LinkedIn", None),
        ("https://www.linkedin.com/in/jose-garcia", "Jose Garcia - Acme Robotics | LinkedIn", "VP of Sales."),
    ]
    accepted, ranked = best_profile(LEAD, results)
    assert accepted is not None and accepted.url.endswith("/jose-garcia") and len(ranked) == 2
    accepted, _ = best_profile(LEAD, results[:2])
    assert accepted is None
    twins = [
        ("https://www.linkedin.com/in/jose-garcia-a", "José García - Acme Robotics | LinkedIn", None),
        ("https://www.linkedin.com/in/jose-garcia-b", "José García - Acme Robotics | LinkedIn", None),
    ]
    assert best_profile(LEAD, twins)[0] is None


PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 10


@pytest.fixture
def image_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Serves a PNG, a web page and a redirect to the PNG, on 127.0.0.1 (reachable with the sandbox's setting)."""
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")

    class Handler(Receiver):
        def do_GET(self) -> None:
            if self.path == "/slow.png":  # a byte every 0.2 s
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", "100")
                self.end_headers()
                drip(self.wfile, [b"x"] * 100, 0.2)
                return
            if self.path == "/slow-headers.png":  # a header line every 0.2 s, the body never reached
                self.wfile.write(b"HTTP/1.0 200 OK\r\n")
                drip(self.wfile, (f"X-Drip-{n}: x\r\n".encode() for n in range(30)), 0.2)
                return
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/photo.png")
                self.end_headers()
                return
            kind, body = ("image/png", PNG) if self.path == "/photo.png" else ("text/html", b"<html></html>")
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with receiver(Handler) as (url, _):
        yield url


def test_images_are_stored_once_by_hash(image_server: str, tmp_path: Path) -> None:
    path = store_image(f"{image_server}/photo.png", tmp_path / "media")
    assert path.name == hashlib.sha256(PNG).hexdigest() + ".png" and path.read_bytes() == PNG
    # a person's photo is personal data: the owner's only, as exports are (the umask's 0644 showed it to everyone)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert store_image(f"{image_server}/photo.png", tmp_path / "media") == path
    with pytest.raises(MediaError, match="not an image"):
        store_image(f"{image_server}/page", tmp_path / "media")
    with pytest.raises(MediaError, match="cannot download"):
        store_image("http://127.0.0.1:9/photo.png", tmp_path / "media", timeout=1)


def test_photos_come_only_from_public_hosts_without_redirects(
    image_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A photo URL is scraped data: it must not make the pipeline fetch from this machine, its network or the cloud
    metadata address, directly or through a redirect."""
    with pytest.raises(MediaError, match="answered HTTP 302"):
        store_image(f"{image_server}/moved", tmp_path / "media")
    monkeypatch.delenv(ALLOW_PRIVATE_ENV)
    for url in (f"{image_server}/photo.png", "http://169.254.169.254/latest/meta-data/", "http://[::1]/p.png"):
        with pytest.raises(MediaError, match="is not a public address"):
            store_image(url, tmp_path / "media", timeout=1)
    assert not (tmp_path / "media").exists()


def test_a_photo_host_is_looked_up_once_and_its_checked_address_connected_to(
    image_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name was looked up twice per photo, once for the check and once to connect; its second answer
    (127.0.0.1, from a hostile DNS server with a zero TTL) is not the one checked. One lookup now, and the
    download connects to the address that passed."""
    monkeypatch.delenv(ALLOW_PRIVATE_ENV)
    resolver = Rebinding()
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    network = Offline().install(monkeypatch)
    port = int(image_server.rsplit(":", 1)[1])
    with pytest.raises(MediaError, match="is offline in the tests"):
        store_image(f"http://rebind.example:{port}/photo.png", tmp_path / "media", timeout=1)
    assert resolver.lookups == 1 and network.connects == [("93.184.215.14", port)]
    assert not (tmp_path / "media").exists()


def test_a_photo_sent_a_byte_at_a_time_is_given_up_at_the_deadline(image_server: str, tmp_path: Path) -> None:
    """Each byte arrives within the read timeout; only a deadline on the whole body stops the 20 s it takes."""
    started = time.monotonic()
    with pytest.raises(MediaError, match="took longer than 1 s"):
        store_image(f"{image_server}/slow.png", tmp_path / "media", timeout=1.0, deadline_s=1.0)
    assert time.monotonic() - started < 5
    started = time.monotonic()  # the headers too: 6 s of them, each line well within the read timeout
    with pytest.raises(MediaError, match="took longer than 1 s"):
        store_image(f"{image_server}/slow-headers.png", tmp_path / "media", timeout=1.0, deadline_s=1.0)
    assert time.monotonic() - started < 3
    assert store_image(f"{image_server}/photo.png", tmp_path / "media", deadline_s=1.0).read_bytes() == PNG
