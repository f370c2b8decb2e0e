"""Secrets never leak: canary values for every provider key and the database password, then an import through
Dagster, failing provider calls, CLI errors and exports; the canary must appear in none of the logs, errors,
the run's stored config and event log (what the UI shows), or exported files."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import pytest
from dagster._serdes import serialize_value
from typer.testing import CliRunner

from leads_pipeline.cli import app
from leads_pipeline.lib.clients.apify import ApifyResource
from leads_pipeline.lib.clients.gemini import GeminiResource
from leads_pipeline.lib.clients.twilio import TwilioLookupResource
from leads_pipeline.lib.clients.verifiers import NeverBounceResource, ZeroBounceResource
from leads_pipeline.lib.crm.sync import RetrySettings
from leads_pipeline.lib.errors import LeadsError
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import cli_environment

CANARY = "cnry7Qx2Zt9"
SECRETS = {
    "APIFY_TOKEN": f"apify_api_{CANARY}",
    "GEMINI_API_KEY": f"AIza{CANARY}gem",
    "ZEROBOUNCE_API_KEY": f"zb{CANARY}key",
    "NEVERBOUNCE_API_KEY": f"secret_{CANARY}nb",
    "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
    "TWILIO_AUTH_TOKEN": f"tw{CANARY}tok",
}


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user.split(':')[0] or 'postgres'}:{password}@{host}"))


@pytest.fixture
def canary_env(database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI's environment with canary secrets (the embedded server trusts local connections, so the password
    is sent but not needed) and the providers pointed at the sandbox, which rejects the canary keys."""
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    url = _with_password(database_url, f"pw{CANARY}")
    cli_environment(monkeypatch, url, tmp_path / "home")
    return url


def _provider_calls(base: Callable[[str], str]) -> list[Callable[[], Any]]:
    """One call per provider with the canary key, against ``base(URL_ENV_VAR)``."""
    zb, nb, tw, ap, gm = ZeroBounceResource, NeverBounceResource, TwilioLookupResource, ApifyResource, GeminiResource
    return [
        lambda: zb(api_key=SECRETS[zb.ENV_VAR], base_url=base(zb.URL_ENV_VAR), max_retries=0).verify("jo@a.example"),
        lambda: nb(api_key=SECRETS[nb.ENV_VAR], base_url=base(nb.URL_ENV_VAR), max_retries=0).verify("jo@a.example"),
        lambda: ap(token=SECRETS[ap.ENV_VAR], api_url=base(ap.URL_ENV_VAR), max_retries=0).google_search("acme"),
        lambda: gm(api_key=SECRETS[gm.ENV_VAR], base_url=base(gm.URL_ENV_VAR)).research_company("Acme", "acme.example"),
        lambda: tw(
            account_sid=SECRETS[tw.SID_ENV_VAR],
            auth_token=SECRETS[tw.TOKEN_ENV_VAR],
            base_url=base(tw.URL_ENV_VAR),
            max_retries=0,
        ).lookup("+14155550100"),
    ]


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_a_canary_secret_appears_nowhere(canary_env: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    seen: list[str] = []

    def run(*args: str, code: int = 0) -> None:
        result = runner.invoke(app, list(args))
        seen.extend([result.stdout, result.stderr])
        assert result.exit_code == code, f"leads {' '.join(args)}: {result.stderr or result.output}"

    run("lists", "create", "fair")
    run("import", str(DEMO_FILE), "--list", "fair", "--json")
    run("import", str(tmp_path / "missing.csv"), "--list", "fair", code=1)
    run("import", str(DEMO_FILE), "--list", "nope", code=1)
    closed = _closed_port()
    for call in _provider_calls(lambda name: os.environ[name]):  # the sandbox: answered, or refused
        try:
            seen.append(repr(call()))
        except LeadsError as refused:
            seen.extend([str(refused), repr(refused), repr(refused.__cause__)])
    for call in _provider_calls(lambda name: closed):  # nobody listening: every call fails
        with pytest.raises(LeadsError) as failure:
            call()
        seen.extend([str(failure.value), repr(failure.value), repr(failure.value.__cause__)])
    run("bulk", "export", "--list", "fair", "--out", str(tmp_path / "fair.csv"))
    seen.append((tmp_path / "fair.csv").read_text(encoding="utf-8"))
    run("privacy", "export", "ana.garcia@acme.es")
    run("audit", "--json")

    instance = dg.DagsterInstance.get()
    runs = instance.get_runs()
    assert runs, "the import ran through Dagster"
    for dagster_run in runs:
        seen.append(json.dumps(dagster_run.run_config, default=str))
        seen.append(json.dumps(dagster_run.tags, default=str))
        seen.extend(serialize_value(event) for event in instance.all_logs(dagster_run.run_id))
    unreachable = f"postgresql://postgres:pw{CANARY}@127.0.0.1:{_closed_port().rsplit(':', 1)[1]}/leads"
    result = runner.invoke(app, ["lists", "ls"], env={"DATABASE_URL": unreachable})
    assert result.exit_code != 0
    seen.extend([result.stdout, result.stderr, repr(result.exception)])
    seen.append(caplog.text)

    haystack = "\n".join(seen)
    assert "ana.garcia@acme.es" in haystack, "the haystack holds what the commands printed"
    leaks = [line for line in haystack.splitlines() if CANARY in line]
    assert leaks == [], f"secret leaked: {leaks[:3]}"


CRM_SECRETS = {
    "HUBSPOT_ACCESS_TOKEN": f"pat-na1-{CANARY}hs",
    "PIPEDRIVE_API_TOKEN": f"pd{CANARY}tok",
    "GOHIGHLEVEL_TOKEN": f"pit-{CANARY}ghl",
    "SALESFORCE_ACCESS_TOKEN": f"00D!{CANARY}sf",
}


def test_a_canary_crm_token_appears_nowhere(
    canary_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """CRM tokens through syncs, a failing sync, an erasure and the CRM erasure run (all through Dagster)."""
    import yaml

    from leads_pipeline_tests.lib.crm.helpers import MAPPINGS

    caplog.set_level(logging.DEBUG)
    for name, value in CRM_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", _closed_port().replace("http:", "https:"))  # unreachable
    # every attempt on it is made and fails, without the backoff between them (0.5 to 8 s: 20 s of the test)
    monkeypatch.setattr(RetrySettings, "delay", lambda *_: 0.0)
    monkeypatch.setenv("LEADS_CRM_DIR", str(tmp_path / "crm"))
    (tmp_path / "crm").mkdir()
    for crm, mapping in MAPPINGS.items():
        settings: dict[str, Any] = {"crm": crm, "mapping": mapping, "direction": "push", "list": "fair"}
        settings.update(
            {"rate_limit": {"requests": 1000, "per_seconds": 1}}, **({"match_key": "id"} if crm == "salesforce" else {})
        )
        (tmp_path / "crm" / f"{crm}-main.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    runner = CliRunner()
    seen: list[str] = []

    def run(*args: str, code: int = 0) -> None:
        result = runner.invoke(app, list(args))
        seen.extend([result.stdout, result.stderr, repr(result.exception)])
        assert result.exit_code == code, f"leads {' '.join(args)}: {result.stderr or result.output}"

    run("lists", "create", "fair")
    run("import", str(DEMO_FILE), "--list", "fair")
    for crm in ("hubspot", "pipedrive", "gohighlevel"):
        run("sync", "--crm", f"{crm}-main")
        run("crm", "test", f"{crm}-main")
    run("crm", "test", "salesforce-main", code=1)
    run("sync", "--crm", "salesforce-main", code=1)
    run("privacy", "delete", "ana.garcia@acme.es", "--yes")
    run("privacy", "crm-erasures", "--process")
    run("audit", "--json")

    instance = dg.DagsterInstance.get()
    runs = instance.get_runs()
    assert len(runs) >= 5, "the syncs and the erasure run went through Dagster"
    for dagster_run in runs:
        seen.append(json.dumps(dagster_run.run_config, default=str))
        seen.append(json.dumps(dagster_run.tags, default=str))
        seen.extend(serialize_value(event) for event in instance.all_logs(dagster_run.run_id))
    seen.append(caplog.text)
    haystack = "\n".join(seen)
    assert "deleted 3" in haystack, "the erasure reached the three reachable CRMs"
    assert "could not talk to Salesforce" in haystack, "the failing calls were seen"
    leaks = [line for line in haystack.splitlines() if CANARY in line]
    assert leaks == [], f"secret leaked: {leaks[:3]}"
