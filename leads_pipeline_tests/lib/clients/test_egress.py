"""The guard on user- and data-chosen URLs: only public hosts, unless the sandbox's setting lifts it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from leads_pipeline.lib.clients.egress import ALLOW_PRIVATE_ENV, PrivateAddressError, check_public, deadline_session
from leads_pipeline_tests.support import Rebinding, receiver


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
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    with pytest.raises(PrivateAddressError, match="is not a public address") as refused:
        check_public(f"{url}?token=s3cret")
    assert "s3cret" not in str(refused.value)


def test_public_addresses_pass_and_only_the_sandbox_setting_lifts_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    check_public("https://93.184.215.14/hook")
    check_public("http://[2606:4700::1111]/hook")
    for value in ("true", "yes", "0", ""):
        monkeypatch.setenv(ALLOW_PRIVATE_ENV, value)
        with pytest.raises(PrivateAddressError):
            check_public("http://127.0.0.1/hook")
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    check_public("http://127.0.0.1/hook")


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A server on 127.0.0.1 (the private address a rebinding name turns to) and the paths it was asked for."""
    with receiver(status=204) as (url, asked):
        yield int(url.rsplit(":", 1)[1]), asked


def test_a_name_answering_public_then_private_does_not_reach_the_private_address(
    listener: tuple[int, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """check_public sees the public answer; the connection must not look the name up again and take the next."""
    port, asked = listener
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    resolver = Rebinding()
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    url = f"http://rebind.example:{port}/latest/meta-data/"
    check_public(url)
    with deadline_session(5) as (http, _), pytest.raises(requests.ConnectionError, match="is not a public address"):
        http.get(url, timeout=2, allow_redirects=False)
    assert asked == [] and resolver.lookups == 2


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
