"""``leads lists``: folders, tags, sharing and roles, archive, delete and purge, as users run them."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from leads_pipeline.commands import common
from leads_pipeline.lib.store.db import connect
from leads_pipeline_tests.commands.conftest import Leads
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import import_file, import_text, live_leads, sql_value, while_uncommitted


def test_create_with_folder_and_tags_then_show_everything(leads: Leads, database_url: str) -> None:
    created = leads.json(
        "lists", "create", "Q3 EMEA", "--folder", "/Sales/ EMEA /Q3/", "--tag", "hot", "--tag", "fair", "--json"
    )
    assert created["folder"] == "Sales/EMEA/Q3"
    assert created["tags"] == ["hot", "fair"]
    import_file(database_url, DEMO_FILE, "Q3 EMEA")
    shown = leads.json("lists", "show", "q3 emea", "--json")
    assert shown["listId"] == created["listId"] and shown["leadCount"] == 33
    assert shown["byStage"] == {"new": 33}
    assert shown["byEnrichment"] == {"enriched": 0, "notEnriched": 33}
    assert shown["members"] == [{"user": "tester", "role": "owner"}]
    assert shown["settings"] == {"deduplication": "email"}
    with connect(database_url) as conn:  # two stages, two enriched leads (one twice), one lead deleted
        ids = [r["id"] for r in conn.execute("SELECT id FROM leads ORDER BY id LIMIT 4")]
        conn.execute("UPDATE leads SET stage = 'mql' WHERE id = ANY(%s)", (ids[:3],))
        conn.execute(
            "INSERT INTO lead_facts (lead_id, field, value, source, confidence) SELECT i, f, '\"x\"', 'test', 1"
            " FROM unnest(%s::bigint[]) i, unnest(ARRAY['title', 'industry']) f",
            (ids[1:4],),
        )
        conn.execute("UPDATE leads SET deleted_at = now() WHERE id = %s", (ids[3],))
    shown = leads.json("lists", "show", "q3 emea", "--json")
    assert (shown["leadCount"], shown["byStage"]) == (32, {"mql": 3, "new": 29})
    assert shown["byEnrichment"] == {"enriched": 2, "notEnriched": 30}


def test_create_if_missing_leaves_the_list_a_rerun_of_a_script_finds(leads: Leads, database_url: str) -> None:
    """A script re-run creating its list (`leads lists create NAME`) failed with exit 1, the list existing, and
    there was no idempotent form. `--if-missing` creates it once and then leaves it as it is with exit 0, also
    when another run creates it at once; a list of that name with another dedupe key, or not shared with the
    user, is still refused."""
    from leads_pipeline.lib.store.lists import create_list

    created = leads.json("lists", "create", "nightly", "--dedupe", "phone", "--if-missing", "--json")
    assert created["created"] is True
    again = leads.json("lists", "create", "NIGHTLY", "--dedupe", "phone", "--if-missing", "--tag", "x", "--json")
    assert (again["created"], again["listId"], again["tags"]) == (False, created["listId"], [])
    shown = leads.ok("lists", "create", "nightly", "--dedupe", "phone", "--if-missing")
    assert shown == f"list nightly exists (id {created['listId']}, dedupe by phone): left as it is\n"
    assert "already exists" in leads.fails("lists", "create", "nightly")  # without it, as before
    error = leads.fails("lists", "create", "nightly", "--if-missing")  # the default dedupe key: email
    assert "list 'nightly' dedupes by phone, not email" in error
    leads.ok("lists", "create", "mine", user="mallory")
    assert "a list named 'mine' already exists" in leads.fails("lists", "create", "mine", "--if-missing")

    def hold(conn: Any) -> None:  # another run of the script, not committed yet
        create_list(conn, "at once", owner="tester")

    at_once = while_uncommitted(
        database_url, hold, lambda: leads.run("lists", "create", "at once", "--if-missing", "--json")
    )
    assert at_once.exit_code == 0, at_once.output
    assert json.loads(at_once.stdout)["created"] is False


def test_ls_filters_by_nested_folder_tag_and_hides_archived(leads: Leads) -> None:
    leads.ok("lists", "create", "a", "--folder", "Sales/EMEA/Q3", "--tag", "hot")
    leads.ok("lists", "create", "b", "--folder", "Sales/US")
    leads.ok("lists", "create", "c", "--folder", "Salesforce")
    leads.ok("lists", "create", "d")
    names = lambda *args: [r["name"] for r in leads.json("lists", "ls", "--json", *args)]  # noqa: E731
    assert names() == ["d", "a", "b", "c"]
    assert names("--folder", "Sales") == ["a", "b"], "nested folders count, Salesforce is not inside Sales"
    assert names("--folder", "Sales/EMEA") == ["a"]
    assert names("--tag", "hot") == ["a"]
    leads.ok("lists", "archive", "a")
    assert names("--folder", "Sales") == ["b"]
    assert names("--folder", "Sales", "--archived") == ["a", "b"]
    table = leads.ok("lists", "ls", "--archived")
    assert "a (archived)" in table and "[dim]" not in table, "the marker is text, not markup shown as written"
    leads.ok("lists", "unarchive", "a")
    assert names("--tag", "hot") == ["a"]
    assert "Sales/US" in leads.ok("lists", "ls")


def test_ls_shows_each_list_whole_at_80_columns(leads: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    """At 80 columns (a pipe, a log) a long list name was split over two rows of the table, and grepping the
    output for it found nothing. There each list takes two lines, every value whole; a wide terminal keeps the
    table."""
    name = "Q3 EMEA Trade Fair Leads 2026 (Frankfurt, Hall 4)"
    leads.ok("lists", "create", name, "--folder", "Events/2026", "--tag", "fair")
    monkeypatch.setattr(common, "console", Console(width=80))
    created = leads.json("lists", "show", name, "--json")["createdAt"][:10]
    assert leads.ok("lists", "ls").splitlines() == [
        f"{name} in folder Events/2026",
        f"  0 leads, tags fair, owner, dedupe by email, created {created}",
    ]
    monkeypatch.setattr(common, "console", Console(width=200))
    [row] = [line for line in leads.ok("lists", "ls").splitlines() if name in line]
    assert [cell.strip() for cell in row.strip("│ ").split("│")][:3] == ["Events/2026", name, "0"]


def test_show_shows_each_value_whole_at_80_columns(leads: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    """At 80 columns (a pipe, cron's mail) the value column broke a long list name over two lines, and grepping
    the output for it found nothing. There each field takes one line, its value whole; a wide terminal keeps the
    table."""
    name = "Q3 EMEA Trade Fair Leads 2026 (Frankfurt Messe, Hall 4, Stand B17)"
    leads.ok("lists", "create", name, "--folder", "Events/2026/Frankfurt Messe", "--tag", "fair")
    monkeypatch.setattr(common, "console", Console(width=80))
    shown = leads.ok("lists", "show", name).splitlines()
    assert f"name: {name}" in shown
    assert "folder: Events/2026/Frankfurt Messe" in shown and "members: tester (owner)" in shown
    monkeypatch.setattr(common, "console", Console(width=200))
    [row] = [line for line in leads.ok("lists", "show", name).splitlines() if name in line]
    assert [cell.strip() for cell in row.strip("│ ").split("│")] == ["name", name]


def test_show_says_a_missing_description_or_folder_as_a_dash(leads: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    """A list created without a description or folder showed ``description: None`` and ``folder: None``, Python's
    word for nothing (a description "None" read the same), where no tags were ``-``. Both are ``-`` now."""
    leads.ok("lists", "create", "plain")
    monkeypatch.setattr(common, "console", Console(width=40))  # narrower than the table: a line a field
    shown = leads.ok("lists", "show", "plain").splitlines()
    assert "description: -" in shown and "folder: -" in shown and "tags: -" in shown
    assert not [line for line in shown if "None" in line]
    assert "archived: no" in shown  # was Python's "False"
    leads.ok("lists", "archive", "plain")
    assert "archived: yes" in leads.ok("lists", "show", "plain").splitlines()


def test_rename_move_tag_untag(leads: Leads) -> None:
    leads.ok("lists", "create", "fair", "--tag", "x")
    leads.ok("lists", "rename", "fair", "Spring Fair")
    leads.ok("lists", "move", "Spring Fair", "--folder", "Events/2026")
    leads.ok("lists", "tag", "Spring Fair", "y", "z", "x")
    leads.ok("lists", "untag", "Spring Fair", "x")
    shown = leads.json("lists", "show", "spring fair", "--json")
    assert (shown["name"], shown["folder"], shown["tags"]) == ("Spring Fair", "Events/2026", ["y", "z"])
    leads.ok("lists", "move", "Spring Fair", "--folder", "/")
    assert leads.json("lists", "show", "spring fair", "--json")["folder"] is None
    leads.ok("lists", "create", "other")
    assert "already exists" in leads.fails("lists", "rename", "other", "SPRING FAIR")
    assert "empty segment" in leads.fails("lists", "move", "other", "--folder", "a//b")
    assert "list 'fair': not found or not shared with you" in leads.fails("lists", "rename", "fair", "x")


def test_a_list_or_user_name_with_control_characters_is_refused(leads: Leads) -> None:
    """A line break, tab or terminal escape in a list's name, or the name of a user it is shared with, was stored,
    and every table of lists, leads or members printed it to each member's terminal; spaces inside and accents
    stay allowed."""
    leads.ok("lists", "create", "fair")
    for name in ("Q3\nEMEA", "Q3\tEMEA", "\x1b[31mred", "bell\x07"):
        expected = f"error: a list name cannot hold control characters (line breaks, tabs, escapes); got {name!r}"
        assert leads.fails("lists", "create", name) == expected
        assert leads.fails("lists", "rename", "fair", name) == expected
        user = name.replace("Q3", "ana")  # a member's name is printed in the list's members and audit entries
        expected = f"error: a user name cannot hold control characters (line breaks, tabs, escapes); got {user!r}"
        assert leads.fails("lists", "share", "fair", user, "--role", "editor") == expected
    assert [lst["name"] for lst in leads.json("lists", "ls", "--json")] == ["fair"]
    assert [m["user"] for m in leads.json("lists", "show", "fair", "--json")["members"]] == ["tester"]
    # named as stored, trimmed, in the message and the audit entry too (both quoted the name as typed)
    assert leads.ok("lists", "share", "fair", " José ").splitlines() == ["José is now viewer of list 'fair'"]
    assert [m["user"] for m in leads.json("lists", "show", "fair", "--json")["members"]] == ["tester", "José"]
    shares = [e["details"] for e in leads.json("audit", "--action", "list", "--json") if e["action"] == "list.share"]
    assert shares == [{"user": "José", "role": "viewer"}]
    assert leads.ok("lists", "unshare", "fair", " José ").strip() == "José no longer has access to list 'fair'"
    audit = leads.json("audit", "--action", "list", "--json")
    assert [e["details"] for e in audit if e["action"] == "list.unshare"] == [{"user": "José"}]
    leads.ok("lists", "rename", "fair", "  Messe München 2026 ")
    assert leads.json("lists", "show", "messe münchen 2026", "--json")["name"] == "Messe München 2026"


def test_sharing_roles_and_refusals_change_nothing(leads: Leads, database_url: str) -> None:
    leads.ok("lists", "create", "fair")
    import_file(database_url, DEMO_FILE, "fair")
    # not a member: cannot even see it
    refusal = leads.fails("lists", "show", "fair", user="vic")  # not who owns it either
    assert "list 'fair': not found or not shared with you" in refusal and "tester" not in refusal
    assert leads.json("lists", "ls", "--json", user="vic") == []
    leads.ok("lists", "share", "fair", "vic", "--role", "viewer")
    leads.ok("lists", "share", "fair", "eve", "--role", "editor")
    assert leads.json("lists", "show", "fair", "--json", user="vic")["leadCount"] == 33
    assert [r["role"] for r in leads.json("lists", "ls", "--json", user="vic")] == ["viewer"]

    # a viewer cannot import, delete, tag, rename, share or archive
    refusals = {
        ("import", str(DEMO_FILE), "--list", "fair"): "importing into it needs the role editor or owner",
        ("lists", "delete", "fair", "--purge", "--yes"): "deleting it needs the role owner",
        ("lists", "tag", "fair", "x"): "tagging it needs the role editor or owner",
        ("lists", "rename", "fair", "mine"): "renaming it needs the role editor or owner",
        ("lists", "share", "fair", "vic", "--role", "owner"): "sharing it needs the role owner",
        ("lists", "archive", "fair"): "archiving it needs the role owner",
    }
    for args, message in refusals.items():
        error = leads.fails(*args, user="vic")
        assert "user 'vic' is a viewer of list 'fair'" in error and message in error, error
        assert "leads lists share fair vic --role" in error
    # an editor can tag but not delete or share
    leads.ok("lists", "tag", "fair", "checked", user="eve")
    assert "user 'eve' is an editor of list 'fair'; deleting it needs the role owner" in leads.fails(
        "lists", "delete", "fair", "--yes", user="eve"
    )
    assert "needs the role owner" in leads.fails("lists", "share", "fair", "vic", "--role", "editor", user="eve")
    shown = leads.json("lists", "show", "fair", "--json")
    assert (shown["name"], shown["tags"], shown["leadCount"], shown["archived"]) == ("fair", ["checked"], 33, False)
    assert shown["members"] == [
        {"user": "tester", "role": "owner"},
        {"user": "eve", "role": "editor"},
        {"user": "vic", "role": "viewer"},
    ]
    # unshare; the only owner cannot leave
    leads.ok("lists", "unshare", "fair", "vic")
    assert "not found or not shared with you" in leads.fails("lists", "show", "fair", user="vic")
    assert "only owner" in leads.fails("lists", "unshare", "fair", "tester")
    assert "--role must be one of viewer, editor, owner" in leads.fails("lists", "share", "fair", "x", "--role", "boss")


def test_archived_list_is_read_only(leads: Leads, database_url: str) -> None:
    leads.ok("lists", "create", "fair")
    leads.ok("lists", "archive", "fair")
    error = leads.fails("import", str(DEMO_FILE), "--list", "fair")
    assert "archived and read-only" in error and "leads lists unarchive fair" in error
    assert "archived and read-only" in leads.fails("lists", "tag", "fair", "x")
    assert leads.json("lists", "show", "fair", "--json")["archived"] is True
    leads.ok("lists", "unarchive", "fair")
    leads.ok("import", str(DEMO_FILE), "--list", "fair")
    assert live_leads(database_url) == 33


def test_the_question_before_a_purge_names_the_list_as_written(leads: Leads) -> None:
    """The question before purging ':fire: Fair' asked to remove list '🔥 Fair': emoji codes in a name, a value
    or an answer written to the terminal became emoji (markup was already off there)."""
    leads.ok("lists", "create", ":fire: Fair [red]2026")
    purged = leads.run("lists", "delete", ":fire: Fair [red]2026", "--purge", stdin=":fire:\n")
    asked = "remove list ':fire: Fair [red]2026' and its 0 leads for good? [y/N]: :fire:\n"
    assert purged.exit_code == 1 and purged.stderr.startswith(asked), purged.stderr


@pytest.mark.parametrize("purge", [False, True])
def test_delete_soft_or_purge(leads: Leads, database_url: str, purge: bool) -> None:
    leads.ok("lists", "create", "fair")
    import_file(database_url, DEMO_FILE, "fair")
    if purge:
        assert "nothing deleted" in leads.fails("lists", "delete", "fair", "--purge", stdin="n\n")
        assert "pass --yes" in leads.fails("lists", "delete", "fair", "--purge", stdin="")  # no answer to read
        assert live_leads(database_url) == 33
        leads.ok("bulk", "delete", "--list", "fair", "--where", "country in CL, ES", "--yes")
        purged = leads.run("lists", "delete", "fair", "--purge", stdin="y\n")
        assert purged.stderr == "remove list 'fair' and its 31 leads (33 with the deleted ones) for good? [y/N]: y\n"
        assert purged.stdout == "deleted list 'fair' and purged 33 leads for good\n"
    else:
        assert "33 leads soft-deleted" in leads.ok("lists", "delete", "fair")
    assert live_leads(database_url) == 0
    assert sql_value(database_url, "SELECT count(*) FROM leads") == (0 if purge else 33)
    assert "list 'fair': not found or not shared with you" in leads.fails("lists", "show", "fair")
    leads.ok("lists", "create", "fair")  # the name is free again
    assert "rename it" in leads.fails("lists", "restore", "fair")


def test_a_purge_leaves_no_raw_row_of_its_imports(leads: Leads, database_url: str, tmp_path: Path) -> None:
    """A row the list's import rejected never became a lead, so purging the leads left it, raw, in the import
    errors (before: name, address and number kept for ever); its cells go with the purge, the error stays. So do
    the column names of its finished imports (a file without a header row had a person's name and details read
    as them), which the purge kept where retention cleared them."""
    leads.ok("lists", "create", "fair")
    import_text(
        database_url,
        tmp_path / "rejected.csv",
        "First Name,Last Name,Email\nAna,Garcia,ana@acme.es,one field too many\nJo,Li,jo@li.example\n",
        "fair",
    )
    with connect(database_url) as conn:  # as such a file imported before the header check left it
        conn.execute("""UPDATE imports SET mapping = '{"Ana": null, "Garcia": null}'""")
    leads.ok("lists", "delete", "fair", "--purge", "--yes")
    with connect(database_url) as conn:
        errors = list(conn.execute("SELECT value, subjects, reason FROM import_errors"))
        mappings = [r["mapping"] for r in conn.execute("SELECT mapping FROM imports")]
    assert [(e["value"], e["subjects"]) for e in errors] == [(None, None)] and "expected 3" in errors[0]["reason"]
    assert mappings == [{}]


def test_a_deleted_list_is_restored_with_the_leads_deleted_with_it(leads: Leads, database_url: str) -> None:
    leads.ok("lists", "create", "fair")
    import_file(database_url, DEMO_FILE, "fair")
    leads.ok("bulk", "delete", "--list", "fair", "--where", "country in CL, ES", "--yes")  # deleted before: stay
    leads.ok("lists", "delete", "fair")
    refused = leads.fails("lists", "restore", "fair", user="mallory")
    assert "deleted list 'fair': not found or not shared with you" in refused
    assert "restored list 'fair' with 31 leads" in leads.ok("lists", "restore", "fair")
    assert leads.json("lists", "show", "fair", "--json")["leadCount"] == 31 == live_leads(database_url)
    assert "deleted list 'fair': not found or not shared with you" in leads.fails("lists", "restore", "fair")
    assert [e["action"] for e in leads.json("audit", "--action", "list", "--json")][-1] == "list.restore"


def test_a_list_named_in_either_unicode_form_is_one_list(leads: Leads, database_url: str) -> None:
    """A list name written decomposed (NFD: a drop folder made on macOS or over SMB, "Été" as E, accent, t, e) was
    another list than the name typed composed: ``--list Été`` found none, and a second list of the same name could
    be created. Names are stored composed and looked up in either form, an older decomposed one too."""
    composed, decomposed = "Été", unicodedata.normalize("NFD", "Été")
    assert composed != decomposed
    leads.ok("lists", "create", decomposed)
    assert sql_value(database_url, "SELECT name FROM lists") == composed
    assert leads.json("lists", "show", composed, "--json")["name"] == composed
    assert "already exists" in leads.fails("lists", "create", composed)
    with connect(database_url) as conn:  # as an earlier version stored it
        conn.execute("UPDATE lists SET name = %s", (decomposed,))
    assert leads.json("lists", "show", composed, "--json")["name"] == decomposed
    leads.ok("lists", "delete", composed, "--yes")
    assert "restored list" in leads.ok("lists", "restore", composed)


@pytest.mark.parametrize(
    "command",
    [
        ("search", "--list", "{}"),
        ("lists", "show", "{}"),
        ("lists", "rename", "{}", "renamed"),
        ("lists", "share", "{}", "eve"),
        ("import", str(DEMO_FILE), "--list", "{}"),
        ("import", str(DEMO_FILE), "--list", "{}", "--dry-run"),
        ("imports", "list", "--list", "{}"),
        ("bulk", "copy", "--to", "{}", "--list", "mine"),
        ("score", "--list", "{}"),
        ("retention", "set", "leads", "30", "--list", "{}"),
    ],
    ids=lambda command: "-".join(a for a in command[:3] if not a.startswith("/")),
)
def test_a_list_not_shared_is_refused_as_one_that_does_not_exist(leads: Leads, command: tuple[str, ...]) -> None:
    """Naming a list nobody made and naming one not shared with you give the same refusal (``lists create``
    alone says a name is taken): "no list named 'nope' (... existing lists: fair)" against "list 'fair': not
    found ..." told anyone which names exist, and the stored spelling of the name."""
    leads.ok("lists", "create", "Fair")
    leads.ok("lists", "create", "mine", user="bob")

    def refusal(name: str) -> str:
        return leads.fails(*(arg.format(name) for arg in command), user="bob")

    unknown = refusal("nope")
    assert unknown.startswith("error: list 'nope': not found or not shared with you (`leads lists ls` shows"), unknown
    assert refusal("fair") == unknown.replace("'nope'", "'fair'")
    assert "Fair" not in unknown + refusal("fair") and "tester" not in refusal("fair")


def test_restoring_a_list_deleted_by_others_is_refused_as_one_never_deleted(leads: Leads) -> None:
    leads.ok("lists", "create", "gone")
    leads.ok("lists", "delete", "gone")
    unknown = leads.fails("lists", "restore", "nope", user="bob")
    assert "deleted list 'nope': not found or not shared with you" in unknown
    assert leads.fails("lists", "restore", "gone", user="bob") == unknown.replace("'nope'", "'gone'")
