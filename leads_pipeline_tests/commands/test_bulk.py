"""``leads bulk``: each action on a selection, what it reports, role checks, export escaping."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from leads_pipeline.lib.errors import TransientError
from leads_pipeline.lib.store import bulk
from leads_pipeline.lib.store.db import connect
from leads_pipeline_tests.commands.conftest import Leads
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import bidx, import_file, import_text, sql_rows, sql_value


@pytest.fixture
def fair(leads: Leads, database_url: str) -> Leads:
    leads.ok("lists", "create", "fair")
    import_file(database_url, DEMO_FILE, "fair")
    return leads


def _snapshot(database_url: str) -> list[dict[str, Any]]:
    return sql_rows(database_url, "SELECT * FROM leads ORDER BY id") + sql_rows(
        database_url, "SELECT * FROM lead_tags ORDER BY lead_id, tag"
    )


def test_tag_untag_and_search_by_tag(fair: Leads) -> None:
    result = fair.json("bulk", "tag", "hot", "emea", "--where", "country in ES, DE", "--json")
    assert (result["matched"], result["changed"]) == (2, 4)
    assert fair.json("bulk", "tag", "hot", "--where", "country in ES, DE", "--json")["changed"] == 0, "idempotent"
    found = fair.json("search", "--tag", "hot", "--json")["leads"]
    assert sorted(lead["email"] for lead in found) == ["ana.garcia@acme.es", "juergen@beispiel.de"]
    assert fair.json("show", str(found[0]["id"]), "--json")["tags"] == ["emea", "hot"], "a lead shows its tags"
    assert "tags: emea, hot" in fair.ok("show", str(found[0]["id"]))
    assert fair.json("bulk", "untag", "hot", "--tag", "hot", "--json")["changed"] == 2
    assert fair.json("search", "--tag", "hot", "--json")["leads"] == []
    assert len(fair.json("search", "--tag", "emea", "--json")["leads"]) == 2


def test_a_tag_is_one_tag_however_its_accents_were_typed_and_holds_no_control_characters(
    fair: Leads, database_url: str
) -> None:
    """A tag "Müller" typed with a composed ü and with u + combining diaeresis (a macOS file name, a pasted cell) made
    two tags that print alike, and a search by one missed the leads of the other; a tag with a line break or a terminal
    escape was stored and printed to the terminal of everyone who listed the leads."""
    composed, decomposed = "Müller", unicodedata.normalize("NFD", "Müller")
    assert fair.json("bulk", "tag", composed, "--where", "country = ES", "--json")["changed"] == 1
    assert fair.json("bulk", "tag", decomposed, "--where", "country in ES, DE", "--json")["changed"] == 1
    found = fair.json("search", "--tag", f" {decomposed} ", "--json")["leads"]
    assert sorted(lead["email"] for lead in found) == ["ana.garcia@acme.es", "juergen@beispiel.de"]
    assert fair.json("show", str(found[0]["id"]), "--json")["tags"] == [composed]
    before = sql_rows(database_url, "SELECT * FROM lead_tags ORDER BY lead_id, tag")
    for tag in ("hot\nlead", "\x1b[31mred", "tab\there"):
        expected = f"error: a tag cannot hold control characters (line breaks, tabs, escapes); got {tag!r}"
        assert fair.fails("bulk", "tag", tag, "--list", "fair") == expected
        assert fair.fails("lists", "tag", "fair", tag) == expected
        assert fair.fails("lists", "create", "other", "--tag", tag) == expected
    assert sql_rows(database_url, "SELECT * FROM lead_tags ORDER BY lead_id, tag") == before
    folder = "Sales/\x1b[2J"
    expected = f"error: a folder cannot hold control characters (line breaks, tabs, escapes); got {folder!r}"
    assert fair.fails("lists", "move", "fair", "--folder", folder) == expected
    fair.ok("lists", "tag", "fair", decomposed)
    assert fair.json("lists", "show", "fair", "--json")["tags"] == [composed]
    assert [lst["name"] for lst in fair.json("lists", "ls", "--tag", decomposed, "--json")] == ["fair"]


def test_set_field_normalizes_and_reports(fair: Leads, database_url: str) -> None:
    result = fair.json("bulk", "set", "country", "Germany", "--where", "email ~ acme", "--json")
    assert (result["matched"], result["changed"], result["value"]) == (1, 1, "DE")
    assert fair.json("bulk", "set", "country", "de", "--where", "email ~ acme", "--json")["changed"] == 0
    fair.ok("bulk", "set", "company", "ACME Iberia S.L.", "--where", "email ~ acme")
    fair.ok("bulk", "set", "custom.Owner", "=cmd()", "--where", "email ~ acme")
    fair.ok("bulk", "set", "employee_count", "1.2k", "--where", "email ~ acme")
    [ana] = sql_rows(database_url, "SELECT * FROM leads WHERE email_bidx = %s", bidx("ana.garcia@acme.es"))
    assert (ana["country"], ana["company_key"], ana["employee_count"]) == ("DE", "acme iberia", 1200)
    assert ana["name_key"] == "ana garcia-lopez|acme iberia"
    assert ana["custom"]["Owner"] == "=cmd()"
    fair.ok("bulk", "set", "custom.Owner", "", "--where", "email ~ acme")
    custom = sql_value(database_url, "SELECT custom FROM leads WHERE email_bidx = %s", bidx("ana.garcia@acme.es"))
    assert "Owner" not in custom
    # a custom field needs a name, and one a terminal prints as it is
    error = "error: cannot set 'custom. ': name the custom field after the dot, as custom.Owner"
    assert fair.fails("bulk", "set", "custom. ", "x", "--where", "email ~ acme") == error
    error = "error: a custom field name cannot hold control characters (line breaks, tabs, escapes); got 'Own\\ner'"
    assert fair.fails("bulk", "set", "custom.Own\ner", "x", "--where", "email ~ acme") == error
    assert sql_value(database_url, "SELECT count(*) FROM leads WHERE custom ?| %s", ["", "Own\ner"]) == 0
    assert "email 'nope'" in fair.fails("bulk", "set", "email", "nope", "--where", "email ~ acme")
    assert "cannot set 'id'" in fair.fails("bulk", "set", "id", "3", "--where", "email ~ acme")
    assert "say which leads" in fair.fails("bulk", "set", "stage", "mql")
    # a mistyped stage was stored on every selected lead; `leads stage set` refused it
    error = fair.fails("bulk", "set", "stage", "qualifed", "--list", "fair")
    assert "unknown stage 'qualifed'; expected one of new, mql, sql, customer, disqualified, nurture" in error
    assert sql_rows(database_url, "SELECT DISTINCT stage FROM leads") == [{"stage": "new"}]
    assert fair.json("bulk", "set", "stage", "MQL", "--where", "email ~ acme", "--json")["changed"] > 0
    assert {r["stage"] for r in sql_rows(database_url, "SELECT DISTINCT stage FROM leads")} == {"new", "mql"}


def test_full_name_follows_a_changed_last_name_unless_written_by_hand(fair: Leads, database_url: str) -> None:
    def names() -> tuple[str, str]:
        [ana] = sql_rows(database_url, "SELECT * FROM leads WHERE email_bidx = %s", bidx("ana.garcia@acme.es"))
        return ana["last_name"], ana["full_name"]

    first = names()[1].split(" ")[0]
    fair.ok("bulk", "set", "last_name", "Ruiz", "--where", "email ~ acme")
    assert names() == ("Ruiz", f"{first} Ruiz"), "leads show and search agree on the name"
    fair.ok("bulk", "set", "full_name", "Dr. Ana Ruiz", "--where", "email ~ acme")
    fair.ok("bulk", "set", "last_name", "Ortega", "--where", "email ~ acme")
    assert names() == ("Ortega", "Dr. Ana Ruiz"), "a full name written by hand is not rewritten"


def test_a_chinese_full_name_follows_family_name_first(leads: Leads, database_url: str, tmp_path: Path) -> None:
    """A changed given name of 王伟 makes 王芳 (it made "芳 王"); a full name an earlier version stored Western order
    ("伟 王") follows too, into the right order."""
    leads.ok("lists", "create", "cn")
    import_text(database_url, tmp_path / "cn.csv", "First Name,Last Name,Email\n伟,王,w@ali.cn\n明,李,l@ali.cn\n", "cn")

    def full_name(email: str) -> str:
        return str(sql_value(database_url, "SELECT full_name FROM leads WHERE email_bidx = %s", bidx(email)))

    assert full_name("w@ali.cn") == "王伟"
    leads.ok("bulk", "set", "first_name", "芳", "--where", "email = w@ali.cn")
    assert full_name("w@ali.cn") == "王芳"
    with connect(database_url) as conn:
        conn.execute("UPDATE leads SET full_name = '明 李' WHERE email_bidx = %s", (bidx("l@ali.cn"),))
    leads.ok("bulk", "set", "last_name", "張", "--where", "email = l@ali.cn")
    assert full_name("l@ali.cn") == "張明"


def test_move_and_copy_skip_duplicates_in_the_target(fair: Leads, database_url: str) -> None:
    fair.ok("lists", "create", "target")
    fair.ok("bulk", "copy", "--to", "target", "--where", "country = ES")
    fair.ok("bulk", "tag", "vip", "--where", "country in ES, IN")
    moved = fair.json("bulk", "move", "--to", "target", "--where", "country in ES, IN", "--list", "fair", "--json")
    assert (moved["matched"], moved["changed"], moved["skipped"]) == (2, 1, 1), "Ana is already in target"
    copied = fair.json("bulk", "copy", "--to", "target", "--list", "fair", "--where", "country = CL", "--json")
    assert (copied["matched"], copied["changed"]) == (1, 1)
    assert fair.json("lists", "show", "fair", "--json")["leadCount"] == 32
    assert fair.json("lists", "show", "target", "--json")["leadCount"] == 3
    target = {lead["email"]: lead for lead in fair.json("search", "--list", "target", "--json")["leads"]}
    assert sorted(target) == ["ana.garcia@acme.es", "priya.sharma@infosys.example", "zunigavanessa@smith.info"]
    assert len(fair.json("search", "--list", "target", "--tag", "vip", "--json")["leads"]) == 2  # Priya kept her tag


def test_a_stage_no_lead_has_is_noted_as_by_search(fair: Leads, tmp_path: Path) -> None:
    """``leads bulk tag x --stage MQL`` (stages are stored lower-case) said "tagged 0 leads" and no more, where
    ``leads search`` notes the stage no lead has: each action notes it so too once nothing matched (a delete
    before it asks), and says nothing of a known stage no lead has yet."""
    note = (
        "note: no lead of the selected lists has stage 'MQL', and it is none of new, mql, sql, customer,"
        " disqualified, nurture (a stage a CRM set is searched as stored)"
    )

    def stderr(*args: str, stdin: str | None = None) -> str:
        return " ".join(fair.run("bulk", *args, "--list", "fair", stdin=stdin).stderr.split())

    tagged = fair.run("bulk", "tag", "x", "--list", "fair", "--stage", "MQL")
    assert tagged.exit_code == 0 and "tagged 0 leads" in tagged.stdout
    assert " ".join(tagged.stderr.split()) == note
    assert stderr("set", "custom.Plan", "pro", "--stage", "MQL") == note
    assert stderr("move", "--to", "fair", "--stage", "MQL") == note
    assert stderr("export", "--out", str(tmp_path / "none.csv"), "--stage", "MQL") == note
    assert stderr("delete", "--stage", "MQL", stdin="n\n").startswith(note + " delete 0 leads")
    assert stderr("tag", "x", "--stage", "sql") == ""


def test_delete_asks_with_the_count_and_restore_brings_back(fair: Leads, database_url: str) -> None:
    before = _snapshot(database_url)
    assert "nothing deleted" in fair.fails("bulk", "delete", "--where", "country = CL", stdin="n\n")
    # no answer to read (a script, cron): the same line saying --yes, not click's bare "Aborted!"
    assert fair.fails("bulk", "delete", "--where", "country = CL", stdin="") == (
        "error: nothing deleted (confirm, or pass --yes)"
    )
    prompt = fair.run("bulk", "delete", "--where", "country = CL", stdin="n\n").output
    assert "delete 1 lead (all readable lists; country = CL)?" in prompt, "a count of one takes the singular"
    assert _snapshot(database_url) == before
    deleted = fair.json("bulk", "delete", "--where", "country in CL, ES", "--yes", "--json")
    assert deleted["changed"] == 2
    assert fair.json("lists", "show", "fair", "--json")["leadCount"] == 31
    error = fair.fails("bulk", "restore", "--id", str(deleted["ids"][0]), "--id", "999999")
    assert f"lead {deleted['ids'][0]}, 999999: not found or not shared with you (nothing restored" in error
    stranger = fair.fails("bulk", "restore", "--id", str(deleted["ids"][0]), user="mallory")  # named its list
    assert stranger == fair.fails("bulk", "restore", "--id", "999999", user="mallory").replace(
        "999999", str(deleted["ids"][0])
    )
    assert fair.json("lists", "show", "fair", "--json")["leadCount"] == 31
    restored = fair.json("bulk", "restore", *[a for i in deleted["ids"] for a in ("--id", str(i))], "--json")
    assert restored["changed"] == 2
    assert fair.json("lists", "show", "fair", "--json")["leadCount"] == 33


def test_a_delete_asks_on_stderr_and_writes_its_json_alone_to_stdout(fair: Leads) -> None:
    """The question went to standard output: ``leads bulk delete ... --json > deleted.json`` waited for an answer
    to a question nobody saw, and the file (or what a script read) began with it, JSON or not."""
    question = "delete 1 lead (all readable lists; country = CL)? [y/N]: "
    declined = fair.run("bulk", "delete", "--where", "country = CL", "--json", stdin="")
    assert (declined.exit_code, declined.stdout) == (1, "")
    assert declined.stderr == f"{question}\nerror: nothing deleted (confirm, or pass --yes)\n"
    deleted = fair.run("bulk", "delete", "--where", "country = CL", "--json", stdin="y\n")
    assert deleted.exit_code == 0 and deleted.stderr == f"{question}y\n"  # the answer read, for a log
    assert deleted.stdout.startswith("{") and json.loads(deleted.stdout)["changed"] == 1


def test_restore_brings_back_everything_one_delete_removed_by_its_time(fair: Leads, statements: list[str]) -> None:
    """A delete of 100k leads names only its first 1,000 ids (the audit its first 10,000), and no command line holds
    100k --id options: the time the delete printed finds them all."""
    fair.json("bulk", "delete", "--where", "country = CL", "--yes", "--json")  # another delete, not undone
    deleted = fair.json("bulk", "delete", "--where", "country in ES, DE", "--yes", "--json")
    assert deleted["changed"] >= 2
    printed = fair.ok("bulk", "delete", "--where", "country = NL", "--yes")
    # the time, to restore them with, in a command on one line to copy (an 80-column console broke it in two)
    [command] = [line for line in printed.splitlines() if "leads bulk restore" in line]
    assert re.search(r"`leads bulk restore --deleted-at 20\S+` brings them back$", command), printed
    error = fair.fails("bulk", "restore", "--deleted-at", deleted["deletedAt"], user="mallory")
    assert "nothing restored" in error

    statements.clear()

    restored = fair.json("bulk", "restore", "--deleted-at", deleted["deletedAt"], "--json")

    assert (restored["matched"], restored["changed"]) == (deleted["changed"], deleted["changed"])
    assert len([s for s in statements if s.startswith("SELECT id") and "FROM leads WHERE" in s]) == 1  # read once
    found = fair.json("search", "--where", "country in ES, DE", "--json")["leads"]
    assert sorted(lead["id"] for lead in found) == sorted(deleted["ids"])
    assert fair.json("search", "--where", "country = CL", "--json")["leads"] == []  # the other delete stays
    assert "--id ID (repeatable) or --deleted-at TIME" in fair.fails("bulk", "restore")
    assert "give the time with its offset" in fair.fails("bulk", "restore", "--deleted-at", "2026-11-30T01:35:47")


def test_a_viewer_is_refused_and_nothing_changes(fair: Leads, database_url: str) -> None:
    fair.ok("lists", "share", "fair", "vic", "--role", "viewer")
    fair.ok("lists", "create", "mine", user="vic")
    before = _snapshot(database_url)
    for args in (
        ("bulk", "tag", "x", "--list", "fair"),
        ("bulk", "set", "stage", "mql", "--list", "fair"),
        ("bulk", "move", "--to", "mine", "--list", "fair"),
        ("bulk", "delete", "--list", "fair", "--yes"),
    ):
        error = fair.fails(*args, user="vic")
        assert "user 'vic' is a viewer of list 'fair'" in error and "needs the role editor or owner" in error, error
    # refused before the question, which a viewer was asked ("delete 33 leads?") and answered in vain
    asked = fair.run("bulk", "delete", "--list", "fair", user="vic", stdin="y\n")
    assert asked.exit_code == 1 and "is a viewer of list 'fair'" in asked.stderr and "[y/N]" not in asked.stderr
    fair.ok("lists", "share", "fair", "vic", "--role", "editor")
    asked = fair.run("lists", "delete", "fair", "--purge", user="vic", stdin="y\n")
    assert asked.exit_code == 1 and "is an editor of list 'fair'" in asked.stderr and "[y/N]" not in asked.stderr
    fair.ok("lists", "share", "fair", "vic", "--role", "viewer")
    assert _snapshot(database_url) == before
    # a viewer may read and copy out of the list into their own one
    assert fair.json("bulk", "copy", "--to", "mine", "--list", "fair", "--json", user="vic")["changed"] == 33
    # nobody else's lead is touched by a selection without --list: only readable lists count
    fair.ok("lists", "create", "other", user="olga")
    assert fair.json("bulk", "tag", "t", "--where", "stage = new", "--json", user="olga")["matched"] == 0


def test_export_is_formula_safe_and_complete(fair: Leads, database_url: str, tmp_path: Path) -> None:
    with connect(database_url) as conn:
        conn.execute(
            "UPDATE leads SET title = '=1+2', notes = E'\\tcmd', city = '-2+3', company = '@SUM(A1)',"
            " industry = E'IT;=1+1\\t@cmd',"
            ' custom = custom || \'{"Hack": "+HYPERLINK()", "Note": "ok, -1"}\' WHERE email_bidx = %s',
            (bidx("ana.garcia@acme.es"),),
        )
    fair.ok("bulk", "tag", "hot", "emea", "--where", "country = ES")
    out = tmp_path / "out.csv"
    assert "exported 33 leads" in fair.ok("bulk", "export", "--list", "fair", "--out", str(out))
    assert out.read_bytes().startswith(codecs.BOM_UTF8), "Excel reads a UTF-8 file as UTF-8 only with a BOM"
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert len(rows) == 33 and "García-López" in {r["last_name"] for r in rows}
    [ana] = [r for r in rows if r["email"] == "ana.garcia@acme.es"]
    assert (ana["title"], ana["notes"], ana["city"], ana["company"]) == ("'=1+2", "'\tcmd", "'-2+3", "'@SUM(A1)")
    assert ana["custom.Hack"] == "'+HYPERLINK()"
    # Excel with ";" (or tab, or comma) as separator splits the cell there: no formula may start after one
    assert (ana["industry"], ana["custom.Note"]) == ("IT;'=1+1\t'@cmd", "ok,' -1")
    assert ana["phone"] == "'+34912345678"
    assert ana["first_name"] == "Ana"
    assert ana["tags"] == "emea, hot" and {r["tags"] for r in rows if r is not ana} == {""}, "the tags, as they were"
    stdout = fair.ok("bulk", "export", "--where", "country = ES")
    assert stdout.startswith('"id",'), "standard output, for other programs, has no BOM; every cell is quoted"
    assert [r["email"] for r in csv.DictReader(io.StringIO(stdout))] == ["ana.garcia@acme.es"]


def test_an_export_runs_its_selection_once(
    fair: Leads, database_url: str, tmp_path: Path, statements: list[str]
) -> None:
    """The custom columns, the ids the audit entry names and the rows written come from one run of the
    selection's query (three scans of the list before), in one snapshot."""
    with connect(database_url) as conn:
        conn.execute("UPDATE leads SET custom = custom || '{\"Only\": 1}' WHERE country = 'ES'")
    out = tmp_path / "out.csv"

    assert "exported 33 leads" in fair.ok("bulk", "export", "--list", "fair", "--out", str(out))

    selections = [s for s in statements if "l.deleted_at IS NULL AND l.list_id = ANY" in s]
    assert len(selections) == 1, selections
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert sorted(r["custom.Only"] for r in rows if r["country"] == "ES") == ["1"] and len(rows) == 33


def _export_broken_after(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    """``bulk.export_rows`` losing its connection after ``rows`` rows (as a killed or interrupted export stops)."""
    stream = bulk.export_rows

    def broken(*args: Any, **kwargs: Any) -> Any:
        for n, row in enumerate(stream(*args, **kwargs)):
            if n == rows:
                raise TransientError("server closed the connection unexpectedly")
            yield row

    monkeypatch.setattr(bulk, "export_rows", broken)


def test_an_export_that_fails_half_way_leaves_no_truncated_file(
    fair: Leads, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export stopped after some rows (the connection lost, the process killed) left those rows at --out: a
    CSV that opened as a complete, shorter export, over the complete file an earlier export had left there. The
    file now appears only whole; the earlier one stays until then, and nothing half-written is left beside it."""
    out = tmp_path / "out.csv"
    out.touch(mode=0o600)
    fair.ok("bulk", "export", "--list", "fair", "--out", str(out))
    assert out.stat().st_mode & 0o777 == 0o600, "a file made private stays private when exported over"
    earlier = out.read_bytes()
    _export_broken_after(monkeypatch, 10)
    fresh = tmp_path / "fresh.csv"
    for path in (out, fresh):
        assert "server closed the connection" in fair.fails("bulk", "export", "--list", "fair", "--out", str(path))
    assert out.read_bytes() == earlier and len(list(csv.DictReader(out.open(encoding="utf-8-sig")))) == 33
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "out.csv"]


def test_an_export_to_out_dash_writes_standard_output(
    fair: Leads, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out -`` (standard output, as other tools read it) wrote a file named ``-`` in the working directory,
    and nothing to standard output."""
    monkeypatch.chdir(tmp_path)
    assert fair.ok("bulk", "export", "--list", "fair", "--out", "-") == fair.ok("bulk", "export", "--list", "fair")
    assert not (tmp_path / "-").exists()


def test_an_export_file_is_private_and_a_killed_exports_scratch_is_removed(fair: Leads, tmp_path: Path) -> None:
    """A new export file got the umask's 0644, personal data readable by every account on the host: it is now
    0600. A SIGKILLed export (or a power cut) left its hidden ``.NAME.PID.partial`` with the rows written so far
    for good; the next export to the same file now removes those of processes that no longer run, and leaves
    one of an export still running (and other files) alone."""
    out = tmp_path / "out.csv"
    ended = subprocess.Popen(["true"])  # a process that has ended: nothing runs under its PID
    ended.wait()
    stale = tmp_path / f".out.csv.{ended.pid}.partial"
    running = tmp_path / f".out.csv.{os.getppid()}.partial"
    other = tmp_path / f".other.csv.{ended.pid}.partial"
    for path in (stale, running, other):
        path.write_text('"id"\n"1"\n')
    fair.ok("bulk", "export", "--list", "fair", "--out", str(out))
    assert out.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["home", "out.csv", running.name, other.name])


def test_an_export_stopped_half_way_is_audited(
    fair: Leads, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export's audit entry was written in the transaction that ended after the last row: an export to
    standard output stopped half-way (Ctrl-C, `| head` closing the pipe, a kill) had handed out its first rows
    and left no trace of who took them. The entry is now committed before the first row leaves, naming the
    leads of the export's snapshot; a file that cannot be written makes none."""
    _export_broken_after(monkeypatch, 10)
    assert "server closed the connection" in fair.fails("bulk", "export", "--list", "fair")
    [entry] = sql_rows(database_url, "SELECT * FROM audit_log WHERE action = 'leads.export'")
    assert (entry["actor"], entry["details"]["to"], entry["details"]["leadCount"]) == ("tester", "stdout", 33)
    missing = tmp_path / "missing" / "out.csv"
    error = fair.fails("bulk", "export", "--list", "fair", "--out", str(missing))
    assert error == f"error: cannot write {missing}: the directory {missing.parent} does not exist", "named"
    error = fair.fails("bulk", "export", "--list", "fair", "--out", str(tmp_path))  # was a traceback
    assert error == f"error: cannot write {tmp_path}: it is a directory; give a file name in it"
    assert len(sql_rows(database_url, "SELECT * FROM audit_log WHERE action = 'leads.export'")) == 1


def test_a_phone_set_in_bulk_carries_its_extension_and_every_view_shows_it(fair: Leads, tmp_path: Path) -> None:
    ana = ("--where", "email ~ acme")
    assert fair.json("bulk", "set", "phone", "+1 212 555 0101 x 77", *ana, "--json")["changed"] == 1
    assert fair.json("bulk", "set", "phone", "+1 212 555 0101 ext. 78", *ana, "--json")["changed"] == 1
    [lead] = fair.json("search", *ana, "--json")["leads"]
    assert (lead["phone"], lead["phone_ext"], lead["mobile_phone_ext"]) == ("+12125550101", "78", None)
    shown = fair.json("show", str(lead["id"]), "--json")["fields"]
    assert (shown["phone"], shown["phone_ext"]) == ("+12125550101", "78")
    assert "phone_ext: 78" in fair.ok("show", str(lead["id"]))
    [row] = csv.DictReader(io.StringIO(fair.ok("search", *ana, "--csv")))
    assert row["phone_ext"] == "78" and list(row).index("phone_ext") == list(row).index("phone") + 1
    out = tmp_path / "out.csv"
    fair.ok("bulk", "export", *ana, "--out", str(out))
    [row] = csv.DictReader(out.open(encoding="utf-8"))
    assert (row["phone_ext"], row["mobile_phone_ext"]) == ("78", "")

    assert fair.json("bulk", "set", "phone", "+1 212 555 0199", *ana, "--json")["changed"] == 1
    [lead] = fair.json("search", *ana, "--json")["leads"]
    assert (lead["phone"], lead["phone_ext"]) == ("+12125550199", None), "the old number's extension is gone"
    assert "phone_ext" not in fair.json("show", str(lead["id"]), "--json")["fields"]


def test_an_export_imports_back_with_its_extensions_and_custom_fields(
    fair: Leads, database_url: str, tmp_path: Path
) -> None:
    """Export, edit in a spreadsheet, import back with --on-duplicate update: each phone keeps the extension the
    export wrote beside it (an update writes a phone with its own extension, so it was erased), and a
    custom.NAME column updates the custom field NAME (it was added as a second field named "custom.NAME")."""
    ana = ("--where", "email ~ acme")
    fair.ok("bulk", "set", "phone", "+1 212 555 0101 x 77", *ana)
    fair.ok("bulk", "set", "custom.Owner", "Eva", *ana)
    exported = tmp_path / "fair.csv"
    fair.ok("bulk", "export", *ana, "--out", str(exported))
    [row] = csv.DictReader(exported.open(encoding="utf-8"))
    row["custom.Owner"] = "Max"
    edited = tmp_path / "edited.csv"
    with edited.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)

    status = import_file(database_url, edited, "fair", on_duplicate="update")
    [lead] = fair.json("search", *ana, "--json")["leads"]
    assert (lead["phone"], lead["phone_ext"]) == ("+12125550101", "77")
    assert lead["custom"]["Owner"] == "Max"
    assert [key for key in lead["custom"] if key.startswith("custom.")] == []
    assert (status["results"]["updated"], status["warnings"]) == (1, 0)


def test_an_unchanged_export_imported_back_with_update_skips_every_lead(
    fair: Leads, database_url: str, tmp_path: Path
) -> None:
    """The export's own bookkeeping columns (id, stage, score, created_at, list, tags) are not lead data: they
    went to custom on the way back, so every lead read as updated and carried them as custom fields. (And the
    sealed invalid phone of one lead, exported as custom.Phone 1, came back in clear.)"""
    fair.ok("bulk", "tag", "hot", "--where", "country = ES")
    with connect(database_url) as conn:
        before = conn.execute("SELECT * FROM leads ORDER BY id").fetchall()
    exported = tmp_path / "fair.csv"
    fair.ok("bulk", "export", "--list", "fair", "--out", str(exported))
    plan = fair.json("import", str(exported), "--list", "fair", "--dry-run", "--json")
    left_out = {s["column"] for s in plan["suggestions"] if "bookkeeping" in s["reason"]}
    assert sorted(left_out) == ["created_at", "id", "list", "score", "stage", "tags"]
    assert {plan["mapping"][c] for c in left_out} == {None}
    # The dry run names them left out, as their reason says, not kept in custom ("(custom)"): at the runner's 80
    # columns each column is a line "<header> -> <field>" and an indented line of why.
    plan_lines = fair.ok("import", str(exported), "--list", "fair", "--dry-run").splitlines()
    rows = dict(line.split(" -> ", 1) for line in plan_lines if " -> " in line and not line.startswith(" "))
    assert {rows[c] for c in left_out} == {"(left out)"}

    status = import_file(database_url, exported, "fair", on_duplicate="update")
    assert status["results"] == {"imported": 0, "updated": 0, "skipped": len(before), "errors": 0}
    with connect(database_url) as conn:
        assert conn.execute("SELECT * FROM leads ORDER BY id").fetchall() == before


def test_values_the_export_escaped_as_formulas_import_back_as_they_were(
    fair: Leads, database_url: str, tmp_path: Path
) -> None:
    """The export writes an apostrophe before what a spreadsheet would read as a formula (=, +, -, @ at the start
    of a cell or after a separator); the import kept it, so an export imported back with --on-duplicate update
    changed those leads: a note "=SUM(A1)" became "'=SUM(A1)", a custom -5 the text "'-5" that no number filter
    finds, a handle "@acme" "'@acme"."""
    ana = ("--where", "email ~ acme")
    values = {"notes": "=SUM(A1) ;-) @team", "custom.Balance": "-5", "custom.Twitter": "@acme"}
    stored = tuple(values.values())
    for field, value in values.items():
        fair.ok("bulk", "set", *ana, "--", field, value)
    exported = tmp_path / "fair.csv"
    fair.ok("bulk", "export", "--list", "fair", "--out", str(exported))
    assert "'=SUM(A1) ;'-) @team" in exported.read_text(encoding="utf-8-sig"), "the export escapes them"

    status = import_file(database_url, exported, "fair", on_duplicate="update")
    assert status["results"]["updated"] == 0, "an unchanged export changes no lead"
    [lead] = fair.json("search", *ana, "--json")["leads"]
    assert (lead["notes"], lead["custom"]["Balance"], lead["custom"]["Twitter"]) == stored
    assert len(fair.json("search", "--where", "custom.Balance < 0", "--json")["leads"]) == 1

    fair.ok("lists", "create", "copy")
    import_file(database_url, exported, "copy")
    [copy] = fair.json("search", "--list", "copy", *ana, "--json")["leads"]
    assert (copy["notes"], copy["custom"]["Balance"], copy["custom"]["Twitter"]) == stored


def test_a_line_break_set_in_bulk_is_kept_in_notes_and_custom_fields_only(fair: Leads) -> None:
    """`leads bulk set` stored a name as typed: one pasted with a line break kept it (it broke one-line outputs,
    CSV cells and searches), and a custom text its CRLF and stray spaces. A value is now stored as the import
    stores it: notes and custom values keep their lines (stored as LF, spaces collapsed within each, blank lines
    around them trimmed), every other field is one line; ``leads show`` indents a custom value's later lines."""
    ana = ("--where", "email ~ acme")
    fair.ok("bulk", "set", *ana, "--", "first_name", "Ana\nMaría")
    fair.ok("bulk", "set", *ana, "--", "title", " Head of\r\nSales ")
    fair.ok("bulk", "set", *ana, "--", "custom.About", "\r\n Founded  1999\r\n\r\n- Madrid\r- Lisbon  \n")
    fair.ok("bulk", "set", *ana, "--", "notes", "Call back \r\n - pricing")
    [lead] = fair.json("search", *ana, "--json")["leads"]
    assert (lead["first_name"], lead["title"]) == ("Ana María", "Head of Sales")
    assert lead["custom"]["About"] == "Founded 1999\n\n- Madrid\n- Lisbon"
    assert lead["notes"] == "Call back\n- pricing"
    assert "\n  custom.About: Founded 1999\n    \n    - Madrid\n    - Lisbon\n" in fair.ok("show", str(lead["id"]))
    fair.ok("bulk", "set", *ana, "--", "custom.About", " \r\n ")
    assert "About" not in fair.json("show", str(lead["id"]), "--json")["custom"], "a blank value clears the field"


def test_a_multi_line_custom_field_exports_and_imports_back_as_it_was(
    fair: Leads, database_url: str, tmp_path: Path
) -> None:
    """A custom field in lines was exported in its quoted cell, a formula start after each line break escaped,
    but imported back as one run-on line with the apostrophes in it: an unchanged export imported with
    --on-duplicate update changed the lead. Its lines and text now come back as they were."""
    ana = ("--where", "email ~ acme")
    about = "Founded 1999\n=HQ Madrid\n- Lisbon office\n@team, +34 91"
    fair.ok("bulk", "set", *ana, "--", "custom.About", about)
    exported = tmp_path / "fair.csv"
    fair.ok("bulk", "export", "--list", "fair", "--out", str(exported))
    with exported.open(encoding="utf-8-sig", newline="") as handle:
        [row] = [r for r in csv.DictReader(handle) if r["custom.About"]]
    assert row["custom.About"] == "Founded 1999\n'=HQ Madrid\n'- Lisbon office\n'@team,' +34 91"
    [searched] = [r for r in csv.DictReader(io.StringIO(fair.ok("search", *ana, "--csv")))]
    assert searched["custom.About"] == row["custom.About"], "search --csv writes the cell as the export does"

    status = import_file(database_url, exported, "fair", on_duplicate="update")
    assert status["results"]["updated"] == 0, "an unchanged export changes no lead"
    fair.ok("lists", "create", "copy")
    import_file(database_url, exported, "copy")
    [copy] = fair.json("search", "--list", "copy", *ana, "--json")["leads"]
    assert copy["custom"]["About"] == about


def test_a_phone_set_without_country_code_is_read_in_each_leads_country(fair: Leads) -> None:
    """As the import reads a row's phone in its country: the Spanish and the German lead each get their own
    country's number, not a US one; a number valid in none of their countries is refused."""
    two = ("--where", "country in ES, DE")
    result = fair.json("bulk", "set", "phone", "612 345 678", *two, "--json")
    assert (result["matched"], result["changed"]) == (2, 2)
    phones = {lead["country"]: lead["phone"] for lead in fair.json("search", *two, "--json")["leads"]}
    assert phones == {"ES": "+34612345678", "DE": "+49612345678"}
    assert fair.json("bulk", "set", "phone", "+34 612 345 678", *two, "--json")["value"] == "+34612345678"
    assert "phone '12'" in fair.fails("bulk", "set", "phone", "12", *two)


def test_a_phone_set_without_country_code_is_read_in_the_default_region_given(
    leads: Leads, database_url: str, tmp_path: Path
) -> None:
    """A list imported with ``--default-region GB``: its leads without a country have London numbers, and one set
    in bulk was read in the US only and refused ("expected a phone number valid for US"). ``--default-region GB``
    reads it as that import did, for a lead without a country and for one whose country it is no number of; a
    number of the lead's own country is still read there; a region phone numbers are not known for is refused."""
    leads.ok("lists", "create", "uk")
    rows = "email,phone,country\njohn@x.uk,020 7946 0959,\nclaire@x.fr,020 7946 0958,FR\nhans@x.de,030 1234567,DE\n"
    import_text(database_url, tmp_path / "uk.csv", rows, "uk", default_region="GB")
    assert "valid for US" in leads.fails("bulk", "set", "phone", "020 7946 0957", "--where", "country is empty")
    for email, number in [
        ("john@x.uk", "020 7946 0957"),
        ("claire@x.fr", "020 7946 0956"),
        ("hans@x.de", "030 7654321"),
    ]:
        leads.ok("bulk", "set", "phone", number, "--default-region", "GB", "--where", f"email = {email}")
    phones = {lead["email"]: lead["phone"] for lead in leads.json("search", "--json")["leads"]}
    assert phones == {"john@x.uk": "+442079460957", "claire@x.fr": "+442079460956", "hans@x.de": "+49307654321"}
    assert "default region 'XX'" in leads.fails("bulk", "set", "phone", "1", "--list", "uk", "--default-region", "XX")


def _duplicate_keys(database_url: str, key: str) -> list[dict[str, Any]]:
    return sql_rows(
        database_url,
        f"SELECT list_id, {key}_bidx, count(*) AS n FROM leads WHERE {key}_bidx IS NOT NULL AND deleted_at IS NULL"
        f" GROUP BY list_id, {key}_bidx HAVING count(*) > 1",
    )


def test_set_never_gives_two_leads_of_a_list_its_dedupe_key(fair: Leads, database_url: str) -> None:
    """As move and copy do, a lead that would become a duplicate by the list's key keeps its value and is reported;
    the first selected lead (lowest id) takes the value when no other lead of the list has it."""
    two = ("--where", "country in ES, DE")
    ids = sorted((lead["id"] for lead in fair.json("search", *two, "--json")["leads"]), key=int)
    result = fair.json("bulk", "set", "email", "Shared@X.com", *two, "--json")
    assert (result["matched"], result["changed"], result["skipped"]) == (2, 1, 1)
    assert result["skippedAsDuplicates"] == [ids[1]]
    assert _duplicate_keys(database_url, "email") == []
    again = fair.json("bulk", "set", "email", "shared@x.com", *two, "--json")
    assert (again["changed"], again["skipped"], again["skippedAsDuplicates"]) == (0, 2, [ids[1]])

    taken = fair.ok("bulk", "set", "email", "priya.sharma@infosys.example", "--where", "country = DE")
    assert "set email on 0 of 1 selected leads (0 had it already); 1 skipped as duplicates" in taken
    assert _duplicate_keys(database_url, "email") == []

    # phone is not the key of an email list (a switchboard number is shared) ...
    assert fair.json("bulk", "set", "phone", "+1 212 555 0100", *two, "--json")["changed"] == 2
    # ... but it is one of a list deduplicated by phone
    fair.ok("lists", "create", "calls", "--dedupe", "phone")
    fair.ok("bulk", "copy", "--to", "calls", "--list", "fair", "--where", "country in IN, CL")
    result = fair.json("bulk", "set", "phone", "+1 212 555 0100", "--list", "calls", "--json")
    assert (result["matched"], result["changed"], result["skipped"]) == (2, 1, 1)
    fair_id = sql_value(database_url, "SELECT id FROM lists WHERE name = 'fair'")
    assert [r["list_id"] for r in _duplicate_keys(database_url, "phone")] == [fair_id], "two in fair, none in calls"


def test_copy_and_move_find_duplicates_without_a_dedupe_key_as_an_import_does(
    leads: Leads, database_url: str, tmp_path: Path
) -> None:
    """Leads without the target's key are matched by the other contact key, LinkedIn URL, then name + company (a
    lead with a LinkedIn URL only to one without): copying the same leads twice adds nothing the second time."""
    leads.ok("lists", "create", "nasty")
    leads.ok("lists", "create", "target")
    import_text(
        database_url,
        tmp_path / "nasty.csv",
        "First Name,Last Name,Company,Email,Phone,LinkedIn\n"
        "Only,Linked,,,,https://linkedin.com/in/only-linked\n"
        "Has,Both,Acme,,,\n"
        "Phone,Only,,,+1 415 555 0101,\n"
        "Lee,Other,Beta,,,https://linkedin.com/in/lee-two\n"
        "Mail,Person,Gamma,mail@gamma.io,,\n",
        "nasty",
    )
    import_text(
        database_url,
        tmp_path / "target.csv",
        "First Name,Last Name,Company,Email,Phone,LinkedIn\n"
        "Lee,Other,Beta,,,https://linkedin.com/in/lee-one\n"  # another person of the same name
        "Pat,Hub,Hub,pat@hub.io,(415) 555-0101,\n",  # has Phone Only's number
        "target",
    )

    first = leads.json("bulk", "copy", "--to", "target", "--list", "nasty", "--json")
    assert (first["matched"], first["changed"], first["skipped"]) == (5, 4, 1), "Phone Only is Pat's number"
    second = leads.json("bulk", "copy", "--to", "target", "--list", "nasty", "--json")
    assert (second["matched"], second["changed"], second["skipped"]) == (5, 0, 5)
    moved = leads.json("bulk", "move", "--to", "target", "--list", "nasty", "--json")
    assert (moved["changed"], moved["skipped"]) == (0, 5)
    names = sql_rows(
        database_url,
        "SELECT first_name, count(*) AS n FROM leads l JOIN lists s ON s.id = l.list_id WHERE s.name = 'target'"
        " GROUP BY first_name ORDER BY first_name",
    )
    assert [(r["first_name"], r["n"]) for r in names] == [
        ("Has", 1),
        ("Lee", 2),
        ("Mail", 1),
        ("Only", 1),
        ("Pat", 1),
    ]


def test_set_never_writes_an_erased_persons_address_or_number_back(fair: Leads, database_url: str) -> None:
    """Ana was erased: setting her address or number on a lead by hand is refused, as an import of her row is
    (before: written, and she was back in the list)."""
    fair.ok("privacy", "delete", "ana.garcia@acme.es", "--yes")
    before = _snapshot(database_url)
    for field, value in (
        ("email", "Ana.Garcia@acme.es"),
        ("phone", "+34 912 345 678"),
        ("mobile_phone", "+34912345678"),
    ):
        error = fair.fails("bulk", "set", field, value, "--id", "1")
        assert "erased on request" in error and "acme.es" not in error and "912" not in error
    assert _snapshot(database_url) == before
    assert fair.json("bulk", "set", "email", "someone@acme.es", "--id", "1", "--json")["changed"] == 1


def test_ids_that_are_no_lead_the_user_can_edit_are_refused_by_name(
    fair: Leads, database_url: str, tmp_path: Path
) -> None:
    first = str(sql_value(database_url, "SELECT min(id) FROM leads"))
    fair.ok("lists", "create", "mine")
    fair.ok("lists", "create", "shelf")
    import_text(database_url, tmp_path / "shelf.csv", "email\ns@example.com\n", "shelf")
    shelved = str(sql_value(database_url, "SELECT max(id) FROM leads"))
    fair.ok("lists", "archive", "shelf")
    before = _snapshot(database_url)
    for args in (  # each exited 0 having changed nothing ("tagged 0 leads")
        ("bulk", "tag", "t"),
        ("bulk", "untag", "t"),
        ("bulk", "set", "city", "Lyon"),
        ("bulk", "move", "--to", "mine"),
        ("bulk", "copy", "--to", "mine"),
        ("bulk", "delete", "--yes"),
        ("bulk", "delete"),  # refused before the question
        ("bulk", "export"),
    ):
        error = fair.fails(*args, "--id", first, "--id", "999999", "--id", "999998")
        assert "--id: 2 lead id(s) do not exist, are deleted or are in lists you cannot read: 999998, 999999" in error
    for extra in ((), ("--list", "fair")):  # left out by --list, it was left alone
        assert "list 'shelf' is archived" in fair.fails("bulk", "tag", "t", "--id", shelved, *extra)
    fair.ok("lists", "share", "fair", "vic", "--role", "viewer")
    fair.ok("lists", "create", "vics", user="vic")
    error = fair.fails("bulk", "tag", "t", "--id", first, "--list", "vics", user="vic")
    assert "user 'vic' is a viewer of list 'fair'" in error, error
    assert _snapshot(database_url) == before
    assert fair.json("bulk", "tag", "t", "--id", first, "--json")["changed"] == 1


def test_one_lead_tagged_or_exported_is_counted_as_one_lead(fair: Leads, tmp_path: Path) -> None:
    """The summaries said "tagged 1 leads (1 new tags)" and "exported 1 leads"."""
    assert "tagged 1 lead (1 new tag)" in fair.ok("bulk", "tag", "hot", "--where", "email ~ acme")
    assert "tagged 2 leads (3 new tags)" in fair.ok("bulk", "tag", "hot", "emea", "--where", "country in ES, DE")
    out = tmp_path / "one.csv"
    assert "exported 1 lead to" in fair.ok("bulk", "export", "--where", "email ~ acme", "--out", str(out))
