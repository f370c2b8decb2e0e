"""``leads sandbox``: its commands work, and the rest of the CLI does not pay for loading the emulators."""

from __future__ import annotations

import csv
import json
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce
from typer.testing import CliRunner

from leads_pipeline.cli import app
from leads_pipeline.lib.crm.connection import parse_connection
from leads_pipeline.lib.crm.registry import limiter_for, resource_from_env
from leads_pipeline.sandbox import generate
from leads_pipeline.sandbox.generate import generate_world
from leads_pipeline.sandbox.world import save_world
from leads_pipeline_tests.paths import DATABLIST


def test_world_generate_then_leads_writes_a_world_and_a_lead_file_drawn_from_it(tmp_path: Path) -> None:
    world, leads, truth = tmp_path / "world.json", tmp_path / "leads.csv", tmp_path / "truth.json"
    runner = CliRunner()
    generated = runner.invoke(app, ["sandbox", "world", "generate", str(world), "--companies", "3", "--people", "12"])
    assert generated.exit_code == 0, generated.output
    assert "3 companies, 12 people" in generated.stdout
    written = runner.invoke(
        app, ["sandbox", "world", "leads", str(world), "--out", str(leads), "--truth", str(truth), "--seed", "1"]
    )
    assert written.exit_code == 0, written.output
    with leads.open(newline="", encoding="utf-8") as rows:
        assert len(list(csv.DictReader(rows))) == 12
    assert len(json.loads(truth.read_text(encoding="utf-8"))["rows"]) == 12


def test_a_directory_for_a_file_or_a_bad_host_is_one_line(tmp_path: Path) -> None:
    """A directory given for the world, lead or truth file, and a --host that is no address, were tracebacks; then
    they exited 2, click's code for a command line it cannot parse, where every other command's refusal exits 1."""
    runner = CliRunner()
    world = tmp_path / "world.json"
    save_world(generate_world(2, 3, 7), world)
    for args in (
        ["world", "generate", str(tmp_path), "--companies", "2", "--people", "3"],
        ["world", "leads", str(world), "--out", str(tmp_path), "--truth", str(tmp_path / "truth.json")],
        ["world", "leads", str(world), "--out", str(tmp_path / "leads.csv"), "--truth", str(tmp_path)],
    ):
        result = runner.invoke(app, ["sandbox", *args])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert result.stderr == f"error: cannot write {tmp_path}: Is a directory\n", args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["world.json"], "no OUT.tmp, no half of the pair"
    result = runner.invoke(app, ["sandbox", "up", "--host", "not a host", "--http-port", "0", "--dns-port", "0"])
    assert result.exit_code == 1 and result.stderr.startswith("error: --host 'not a host': not an address or host")


def test_sandbox_up_generates_its_world_from_the_sample_data_it_is_pointed_at(tmp_path: Path) -> None:
    """Installed from a wheel (no shared/data beside it), `leads sandbox up` failed saying "pass --data-dir", an
    option it did not have: its world could be generated from no other copy of the samples."""
    missing = tmp_path / "data"
    ports = ["--dns-port", "0", "--smtp-port", "0", "--http-port", "0", "--salesforce-port", "0"]
    result = CliRunner().invoke(app, ["sandbox", "up", "--data-dir", str(missing), *ports])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: sample data file {missing}/datablist/organizations-10000.csv.gz not found")


def test_sandbox_tour_draws_the_demo_world_from_the_sample_data_it_is_pointed_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed from a wheel (no shared/data beside it), `leads sandbox tour` failed saying "pass --data-dir", an
    option it did not have."""
    copy = tmp_path / "data"
    copy.mkdir()
    (copy / "datablist").symlink_to(DATABLIST)
    monkeypatch.setattr(generate, "default_data_dir", lambda: tmp_path / "not-beside-the-package")
    runner = CliRunner()
    result = runner.invoke(app, ["sandbox", "tour", "--data-dir", str(copy)])
    assert result.exit_code == 0, result.output
    assert "WRONG" not in result.stdout
    verdicts = {line.index(" matches the world") for line in result.stdout.splitlines()}
    assert len(verdicts) == 1, "one column ('Twilio Lookup' and the search call pushed their lines' verdicts out)"
    result = runner.invoke(app, ["sandbox", "tour"])
    missing = tmp_path / "not-beside-the-package" / "datablist" / "organizations-10000.csv.gz"
    assert result.exit_code == 1, result.output
    assert (
        result.stderr
        == f"error: sample data file {missing} not found: pass --data-dir DIR naming a copy of shared/data\n"
    )


@pytest.mark.parametrize("service", ["dns", "smtp", "http"])
def test_a_port_in_use_names_the_option_that_picks_another(tmp_path: Path, service: str) -> None:
    """A second `leads sandbox up` on the default ports (another one running) said "pick another DNS port" without
    naming the option that does it."""
    world = tmp_path / "world.json"
    save_world(generate_world(2, 3, 7), world)
    address = "127.0.0.2" if service == "smtp" else "127.0.0.1"
    with socket.socket() as taken_tcp, socket.socket(type=socket.SOCK_DGRAM) as taken_udp:
        taken_tcp.bind((address, 0))
        taken_tcp.listen()
        port = taken_tcp.getsockname()[1]
        if service == "dns":
            taken_udp.bind((address, port))
        ports = {"dns": "0", "smtp": "0", "http": "0", "salesforce": "0"} | {service: str(port)}
        options = [arg for name, value in ports.items() for arg in (f"--{name}-port", value)]
        result = CliRunner().invoke(app, ["sandbox", "up", "--world", str(world), *options])
    assert result.exit_code == 1, result.output
    assert f"--{service}-port; 0: any free port)" in result.stderr


def test_a_leads_command_starts_without_loading_the_emulators() -> None:
    # In a fresh interpreter: this one has imported the sandbox already.
    probe = """
import json, sys
import leads_pipeline.cli
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("leads_pipeline.sandbox.", "dns")))))
"""
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(loaded.stdout) == ["leads_pipeline.sandbox.cli"]


def test_up_prints_settings_that_reach_the_salesforce_emulator_over_https(tmp_path: Path) -> None:
    """``sandbox up`` printed settings for every provider but Salesforce, whose client speaks only https: its
    TLS front was started from Python only. Now ``up`` starts it, and its printed settings, pasted as they are,
    let simple-salesforce (and the pipeline's Salesforce connector) query the emulator."""
    world = tmp_path / "world.json"
    save_world(generate_world(2, 4, 7), world)
    up = [sys.executable, "-c", "from leads_pipeline.cli import app; app()", "sandbox", "up", "--world", str(world),
          *[arg for name in ("dns", "smtp", "http", "salesforce") for arg in (f"--{name}-port", "0")]]  # fmt: skip
    process = subprocess.Popen(up, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        env: dict[str, str] = {}
        while "LEADS_SANDBOX_WORLD" not in env and (line := process.stdout.readline()):
            export, setting = shlex.split(line)  # as a shell reads it
            assert export == "export"
            key, value = setting.split("=", 1)
            env[key] = value
        assert {"SALESFORCE_INSTANCE_URL", "SALESFORCE_ACCESS_TOKEN", "SALESFORCE_CA_BUNDLE"} <= set(env), env
        session = requests.Session()
        session.trust_env = False
        session.verify = env["SALESFORCE_CA_BUNDLE"]
        client = Salesforce(
            instance_url=env["SALESFORCE_INSTANCE_URL"], session_id=env["SALESFORCE_ACCESS_TOKEN"], session=session
        )
        answer = client.query("SELECT Id, Email FROM Lead ORDER BY SystemModstamp")
        assert (answer["totalSize"], answer["done"]) == (0, True)
        conn = parse_connection("sf-up", {"crm": "salesforce", "match_key": "id", "mapping": {"id": "Leads_Id__c"}})
        connector = resource_from_env("salesforce", env).connector(conn, limiter_for(conn))
        assert "Email" in {field.name for field in connector.describe_fields()}
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    assert not Path(env["SALESFORCE_CA_BUNDLE"]).exists()  # the throwaway CA goes with the sandbox
