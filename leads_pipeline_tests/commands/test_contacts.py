"""``leads verify`` and ``leads find-email`` against the sandbox, as a user runs them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from leads_pipeline.cli import app
from leads_pipeline.commands import common
from leads_pipeline.lib.ratelimit import SharedTokenBucket, bucket_key
from leads_pipeline.lib.store.db import connect
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import Company, Person, World
from leads_pipeline_tests.support import cli_environment, leads_in_fresh_interpreter


def _person(world: World, behaviour: str, pattern: str | None = None) -> Person:
    for person in world.people:
        company = world.company(person.company_domain)
        usable = company and company.mx_behaviour == behaviour and person.email and not person.email_exception
        if usable and company and (pattern is None or company.email_patterns[0].pattern == pattern):
            return person
    raise AssertionError(f"nobody at a {behaviour} domain")


def test_verify_prints_each_verdict(runner: CliRunner, sandbox_world: World) -> None:
    person = _person(sandbox_world, "strict")
    assert person.email is not None
    result = runner.invoke(app, ["verify", person.email, f"zz.nobody@{person.company_domain}", "bad@@x", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["email"]: r for r in json.loads(result.stdout)}
    assert rows[person.email]["status"] == "valid" and rows[person.email]["method"] == "smtp"
    assert rows[f"zz.nobody@{person.company_domain}"]["status"] == "invalid"
    assert rows["bad@@x"]["method"] == "syntax"
    table = runner.invoke(app, ["verify", person.email])
    assert table.exit_code == 0 and "valid" in table.stdout


def test_each_verdict_is_shown_whole_at_80_columns(
    runner: CliRunner, sandbox_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns (a pipe, a log) the table cut each address to a dozen letters and its reasons to a word:
    `leads verify ... | grep` found neither. There each address takes two lines, every value whole."""
    person = _person(sandbox_world, "strict")
    unknown = f"zz.nobody.of.that.name.at.all@{person.company_domain}"
    [verdict] = json.loads(runner.invoke(app, ["verify", unknown, "--json"]).stdout)
    monkeypatch.setattr(common, "console", Console(width=80))
    result = runner.invoke(app, ["verify", unknown])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        unknown,
        f"  invalid (confidence {verdict['confidence']}, smtp): {'; '.join(verdict['reasons'])}",
    ]


def test_verify_and_find_email_load_no_dagster(
    runner: CliRunner, sandbox_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leads verify` and `leads find-email` took 103 MB and 1 s of CPU to refuse an address for its syntax, half
    of it Dagster, which the modules of the mail settings and the paid verifiers loaded with their resources. The
    commands use their plain clients now; here in one fresh interpreter, as a user runs them, with probing off so
    that ZeroBounce and NeverBounce answer over HTTP."""
    monkeypatch.setenv("LEADS_SMTP_PROBING", "off")
    person = _person(sandbox_world, "strict", "{first}.{last}")
    assert person.email is not None
    commands = [
        ["verify", person.email, "--verifier", "zerobounce", "--json"],
        ["verify", f"zz.nobody@{person.company_domain}", "--verifier", "neverbounce", "--json"],
        ["find-email", person.first_name, person.last_name, person.company_domain, "--candidates", "6", "--json"],
    ]
    output, loaded = leads_in_fresh_interpreter(commands, ("dagster", "apify_client", "leads_pipeline.definitions"))
    assert loaded == []
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(output):
        document, at = decoder.raw_decode(output, at)
        documents.append(document)
        at = len(output) - len(output[at:].lstrip())
    zerobounce, neverbounce, found = documents
    assert [(r["status"], r["method"]) for r in zerobounce] == [("valid", "zerobounce")]
    assert [(r["status"], r["method"]) for r in neverbounce] == [("invalid", "neverbounce")]
    assert (found["email"], found["status"]) == (person.email, "valid")


def test_verify_without_a_configured_verifier_is_one_line(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEVERBOUNCE_API_KEY", raising=False)
    result = runner.invoke(app, ["verify", "a@b.com", "--verifier", "neverbounce"])
    assert result.exit_code == 1 and "NEVERBOUNCE_API_KEY" in result.stderr and "Traceback" not in result.output


def test_find_email_verifies_guesses_in_pattern_order(runner: CliRunner, sandbox_world: World) -> None:
    person = _person(sandbox_world, "strict", "{first}.{last}")
    result = runner.invoke(
        app, ["find-email", person.first_name, person.last_name, person.company_domain, "--candidates", "6", "--json"]
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["email"] == person.email and found["status"] == "valid"
    assert found["tried"][-1]["email"] == person.email


TRANSLITERATED = World(
    companies=tuple(
        Company(name=domain, domain=domain, mx_hosts=(f"mx1.{domain}",))
        for domain in ("mueller-tools.com", "ivanov-group.ru", "huaxin-tech.cn", "zhongxin.cn")
    ),
    people=tuple(
        Person(id=f"p{i}", first_name=first, last_name=last, company_domain=email.partition("@")[2], email=email)
        for i, (first, last, email) in enumerate(
            [
                ("Jörg", "Müller", "joerg.mueller@mueller-tools.com"),
                ("Дмитрий", "Иванов", "dmitriy.ivanov@ivanov-group.ru"),
                ("伟", "王", "wei.wang@huaxin-tech.cn"),
                ("芳", "李", "lifang@zhongxin.cn"),  # family name first, as Chinese companies write it
            ]
        )
    ),
)


def test_find_email_spells_a_name_beyond_ascii_as_mailboxes_do(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jörg Müller's guesses were jorg.muller, jmuller, jorg... (joerg.mueller ranked ninth), and Дмитрий Иванов or
    伟 王 had "no candidate address": their mailboxes spell them in ASCII. 芳 李's lifang was the last guess of
    fourteen."""
    with Sandbox.start(TRANSLITERATED, http_emulators=False) as box:
        cli_environment(monkeypatch, database_url, tmp_path / "home", user=None, extra=box.env())
        for person in TRANSLITERATED.people:
            args = [person.first_name, person.last_name, person.company_domain, "--candidates", "6", "--json"]
            result = CliRunner().invoke(app, ["find-email", *args])
            assert result.exit_code == 0, result.output
            found = json.loads(result.stdout)
            assert (found["email"], found["status"]) == (person.email, "valid"), found


def test_find_email_with_the_paid_verifier_answers_without_writing_lead_facts(
    runner: CliRunner, sandbox_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """find-email has no lead: the paid verdict is cached by address, no fact is written for a lead 0."""
    monkeypatch.setenv("LEADS_SMTP_PROBING", "off")
    person = _person(sandbox_world, "strict", "{first}.{last}")
    result = runner.invoke(
        app, ["find-email", person.first_name, person.last_name, person.company_domain, "--candidates", "6", "--json"]
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["email"] == person.email and found["status"] == "valid"
    assert found["tried"][-1]["method"] == "zerobounce"


def test_find_email_reads_the_domain_as_the_import_does(runner: CliRunner, sandbox_world: World) -> None:
    """A DOMAIN that was none had each guess refused for its syntax, a URL was glued into the guesses
    (jane@http://acme.com/x), both with exit code 0; a website URL now gives its domain, anything else is refused."""
    person = _person(sandbox_world, "strict", "{first}.{last}")
    url = f"https://www.{person.company_domain}/about"
    result = runner.invoke(app, ["find-email", person.first_name, person.last_name, url, "--candidates", "6", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["email"] == person.email
    for args, expected in [
        (["Jane", "Doe", "not a domain"], "error: DOMAIN: expected a website like example.com; the company's domain"),
        (["Jane", "Doe", ""], "error: DOMAIN: empty; the company's domain, like acme.com"),
        (["", "Doe", "acme.com"], "error: FIRST_NAME and LAST_NAME: the guesses need both; got an empty one"),
    ]:
        refused = runner.invoke(app, ["find-email", *args])
        assert refused.exit_code == 1 and refused.stderr.startswith(expected), refused.output


def test_an_unknown_verifier_or_no_candidates_is_a_usage_error(runner: CliRunner) -> None:
    bogus = runner.invoke(app, ["verify", "a@b.com", "--verifier", "bogus"])
    assert bogus.exit_code == 2 and "'bogus' is not one of" in bogus.stderr and "neverbounce" in bogus.stderr
    assert "not configured" not in bogus.output
    for count in ("0", "-1"):
        none = runner.invoke(app, ["find-email", "Kelly", "Kemp", "example.com", "--candidates", count])
        assert none.exit_code == 2 and "--candidates" in none.stderr, none.output


def test_verify_and_find_email_take_their_slots_from_the_stages_buckets(
    runner: CliRunner, sandbox_world: World, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leads verify` and `leads find-email` sent their 16 workers' requests to ZeroBounce and NeverBounce unpaced,
    beside the contact stages pacing the same key through its bucket: a Retry-After that held the stages (and
    every other process) did not hold them. They take slots of the same buckets now."""
    monkeypatch.setenv("LEADS_SMTP_PROBING", "off")
    person = _person(sandbox_world, "strict", "{first}.{last}")
    assert person.email is not None
    paused = SharedTokenBucket(database_url, bucket_key("zerobounce", os.environ["ZEROBOUNCE_API_KEY"]), 1, 1.0)
    paused.pause(1.5)  # as a stage's 429 with Retry-After: 1.5 pauses the key for everyone
    paused.close()
    started = time.monotonic()
    result = runner.invoke(app, ["verify", person.email, "--verifier", "zerobounce", "--json"])
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 1.4  # waited out the pause (unpaced: 0.05 s)
    key = bucket_key("neverbounce", os.environ["NEVERBOUNCE_API_KEY"])
    args = ["find-email", person.first_name, person.last_name, person.company_domain, "--verifier", "neverbounce"]
    assert runner.invoke(app, args).exit_code == 0
    with connect(database_url) as conn:
        assert conn.execute("SELECT key FROM rate_buckets WHERE key = %s", (key,)).fetchall() == [{"key": key}]
