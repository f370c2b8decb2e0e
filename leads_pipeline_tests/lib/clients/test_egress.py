"""The guard on user- and data-chosen URLs: only public hosts, unless the sandbox's setting lifts it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from leads_pipeline.lib.clients.egress import ALLOW_PRIVATE_ENV, PrivateAddressError, deadline_session, public_addresses
from leads_pipeline_tests.support import Offline, Rebinding, receiver


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://10.0.0.7/hook",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0:8080/",
        "http://[::1]:8080/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://239.1.1.1/",
    ],
)
def test_private_loopback_link_local_and_multicast_hosts_are_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused before any connection is opened, by a message naming the host, not the URL (its query may hold a
    token)."""
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    network = Offline().install(monkeypatch)
    with (
        deadline_session(5) as (http, _),
        pytest.raises(PrivateAddressError, match="is not a public address") as refused,
    ):
        http.get(f"{url}?token=s3cret", timeout=2, allow_redirects=False)
    assert "s3cret" not in str(refused.value) and network.connects == []


def test_public_addresses_pass_and_only_the_sandbox_setting_lifts_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    assert public_addresses("93.184.215.14", 443) == ["93.184.215.14"]
    assert public_addresses("2606:4700::1111", 80) == ["2606:4700::1111"]
    for value in ("true", "yes", "0", ""):
        monkeypatch.setenv(ALLOW_PRIVATE_ENV, value)
        with pytest.raises(PrivateAddressError):
            public_addresses("127.0.0.1", 80)
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    assert public_addresses("127.0.0.1", 80) == ["127.0.0.1"]


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A server on 127.0.0.1 (the private address a rebinding name turns to) and the paths it was asked for."""
    with receiver(status=204) as (url, asked):
        yield int(url.rsplit(":", 1)[1]), asked


def test_a_name_is_looked_up_once_and_only_the_checked_addresses_are_connected_to(
    listener: tuple[int, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name's first answer is public, its next 127.0.0.1 (a hostile DNS server with a zero TTL): the session
    checks the one it looked up and connects to that one, in every request it makes to the host."""
    port, asked = listener
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    resolver = Rebinding()
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    network = Offline().install(monkeypatch)
    url = f"http://rebind.example:{port}/latest/meta-data/"
    with deadline_session(5) as (http, _):
        for _ in range(2):
            with pytest.raises(requests.ConnectionError, match="is offline in the tests"):
                http.get(url, timeout=2, allow_redirects=False)
    assert asked == [] and resolver.lookups == 1
    assert network.connects == [("93.184.215.14", port)] * 2


def test_an_environment_proxy_does_not_carry_a_guarded_request_past_the_guard(
    listener: tuple[int, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTP_PROXY set, requests sent the request to the proxy through a pool of its own, which neither checks
    the address nor has the watchdog: the proxy fetched the metadata service. The guarded session connects itself."""
    port, asked = listener  # the proxy: it answers whatever absolute URL it is asked for
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    with deadline_session(5) as (http, _), pytest.raises(requests.ConnectionError, match="is not a public address"):
        http.get("http://169.254.169.254/latest/meta-data/", timeout=2, allow_redirects=False)
    assert asked == []
