"""The Sandbox object: ports, settings for clients, HTTP mounting and the request log."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
import requests

from leads_pipeline.sandbox.server import EMAIL_LISTS_DIR, Sandbox
from leads_pipeline.sandbox.world import World
from leads_pipeline_tests.paths import SHARED_DATA


def _echo(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{environ['SCRIPT_NAME']}|{environ['PATH_INFO']}".encode()]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_env_points_at_the_running_parts(sandbox: Sandbox) -> None:
    env = sandbox.env()
    assert env["LEADS_DNS_SERVER"] == f"{sandbox.host}:{sandbox.dns_port}"
    assert env["LEADS_SMTP_PORT"] == str(sandbox.smtp_port)
    assert env["LEADS_SMTP_ROUTES"] == "dns"
    assert env["LEADS_SANDBOX_HTTP"] == sandbox.http_url
    assert env["LEADS_ALLOW_PRIVATE_URLS"] == "1"  # its receivers listen on 127.0.0.1; off everywhere else


def test_registered_apps_are_mounted_by_prefix_logged_and_add_settings(sandbox_world: World) -> None:
    with Sandbox.start(sandbox_world, http_emulators=False) as box:
        assert _get(f"{box.http_url}/echo/x")[0] == 404
        box.register_http_app("/echo", _echo, env=lambda url: {"ECHO_URL": url})
        box.register_http_app("/echo/deep", _echo, env={"FIXED": "1"})
        assert _get(f"{box.http_url}/echo/a/b?q=1") == (200, "/echo|/a/b")
        assert _get(f"{box.http_url}/echo/deep/c") == (200, "/echo/deep|/c")
        assert _get(f"{box.http_url}/echoes")[0] == 404
        assert box.env()["ECHO_URL"] == f"{box.http_url}/echo"
        assert box.env()["FIXED"] == "1"
        logged = [e.details for e in box.log.entries("http")]
        assert {"method": "GET", "path": "/echo/a/b", "status": "200 OK"} in logged
        with pytest.raises(ValueError, match="prefix"):
            box.register_http_app("echo/", _echo)


def test_fixed_ports_in_use_fail_clearly_and_stop_cleanly(sandbox: Sandbox, sandbox_world: World) -> None:
    with pytest.raises(OSError, match="SMTP port"):
        Sandbox.start(sandbox_world, smtp_port=sandbox.smtp_port, http_emulators=False)
    with pytest.raises(OSError, match="DNS port"):
        Sandbox.start(sandbox_world, dns_port=sandbox.dns_port, http_emulators=False)
    http_port = int(sandbox.http_url.rpartition(":")[2])
    with pytest.raises(OSError, match="HTTP port"):
        Sandbox.start(sandbox_world, http_port=http_port, http_emulators=False)
    assert sandbox.env()["LEADS_SMTP_PORT"] == str(sandbox.smtp_port)


def test_stopped_sandbox_says_so(sandbox_world: World) -> None:
    box = Sandbox.start(sandbox_world, http_emulators=False)
    box.stop()
    box.stop()
    with pytest.raises(RuntimeError, match="not running"):
        box.env()


@pytest.mark.parametrize(
    "name",
    [
        "disposable_email_blocklist.conf",
        "free_email_provider_domains_freemail.txt",
        "role_based_local_parts_mixmax.csv",
    ],
)
def test_packaged_email_lists_are_exact_copies_of_the_shared_data(name: str) -> None:
    assert (EMAIL_LISTS_DIR / name).read_bytes() == (SHARED_DATA / "email_lists" / name).read_bytes()
    assert name in (EMAIL_LISTS_DIR / "ATTRIBUTION.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("email", "status", "sub_status"),
    [("someone@mailinator.com", "do_not_mail", "disposable"), ("info@gmail.com", "invalid", "mailbox_not_found")],
)
def test_sandbox_verifiers_use_the_packaged_lists_by_default(
    sandbox: Sandbox, email: str, status: str, sub_status: str
) -> None:
    response = requests.get(
        f"{sandbox.http_url}/zerobounce/v2/validate", params={"api_key": "k", "email": email}, timeout=5
    )
    payload = response.json()
    assert (payload["status"], payload["sub_status"]) == (status, sub_status)
    assert payload["free_email"] is (email.endswith("@gmail.com"))
