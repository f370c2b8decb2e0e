"""The shipped sample lead file is what the demo world's generator writes, and ``leads sandbox tour`` shows every
provider's client answering as the demo world says."""

from __future__ import annotations

import csv

from typer.testing import CliRunner

from leads_pipeline.cli import app
from leads_pipeline.sandbox.demo_world import DEMO_LEADS, DEMO_LEADS_FILE, demo_leads_csv, demo_world


def test_the_shipped_sample_is_what_the_generator_writes() -> None:
    expected = demo_leads_csv(demo_world())
    assert DEMO_LEADS_FILE.read_text(encoding="utf-8") == expected, (
        "regenerate it with `python -m leads_pipeline.sandbox.demo_world`"
    )


def test_the_sample_gives_every_stage_something_to_do() -> None:
    world = demo_world()
    rows = list(csv.DictReader(DEMO_LEADS_FILE.open(encoding="utf-8", newline="")))
    people, extra = rows[:DEMO_LEADS], rows[DEMO_LEADS:]
    emails = {p.email for p in world.people[:DEMO_LEADS]}
    assert {r["Email"] for r in people if r["Email"]} <= emails  # the people live in the demo world
    for column in ("Email", "Phone", "LinkedIn URL", "Website"):
        blank = sum(not r[column] for r in people)
        assert 0 < blank < DEMO_LEADS, column
    same_email, no_email, nobody = extra
    assert same_email["Email"] and same_email["Email"] in {r["Email"] for r in people}
    # a person again with a typo in the last name and no key the import could fold it by
    twin = next(
        r
        for r in people
        if (r["First Name"], r["Last Name"] + r["Last Name"][-1:]) == (no_email["First Name"], no_email["Last Name"])
    )
    assert twin["Company"] == no_email["Company"] and twin["Email"]
    assert not any(no_email[c] for c in ("Email", "Phone", "LinkedIn URL"))
    assert not any(nobody[c] for c in ("First Name", "Last Name", "Email", "Phone", "LinkedIn URL"))


def test_sandbox_tour_calls_every_provider() -> None:
    result = CliRunner().invoke(app, ["sandbox", "tour"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    providers = {line.split()[0] for line in lines}
    assert {"Apify", "Gemini", "ZeroBounce", "NeverBounce", "Twilio", "DNS", "SMTP"} <= providers
    assert all(line.endswith("matches the world") for line in lines)
