"""``leads dedupe`` and ``leads merges``: clusters within and across lists with reasons, merge, exact undo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from leads_pipeline.commands import common
from leads_pipeline.lib.errors import LeadsError
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.merges import undo_merge
from leads_pipeline_tests.commands.conftest import Leads
from leads_pipeline_tests.support import api_shape_problems, import_text, while_uncommitted

HEADER = "First Name,Last Name,Company,Title,Email,Phone,LinkedIn URL,City,Country\n"
LIST_A = (
    "Ana,García,Acme S.L.,,ana@acme.es,+34 912 345 678,,Madrid,Spain\n"
    "Bob,Stone,Initech,Engineer,bob@initech.example,,,Austin,United States\n"
    "Dana,Scully,FBI,Agent,dana@fbi.example,,https://www.linkedin.com/in/dscully,,United States\n"
    "Zoe,Park,Umbrella,,zoe@umbrella.example,+1 415 555 0100,,,United States\n"
)
LIST_B = (
    "Ana,Garcia,ACME SL,CTO,ana.garcia@gmail.example,,,Madrid,Spain\n"
    "Robert,Stone,Globex,,bob@initech.example,,,,United States\n"
    "Carl,Jung,Acme S.L.,,carl@acme.es,+34 912 345 678,,Madrid,Spain\n"
    "D.,Scully,Bureau,,,,linkedin.com/in/dscully/,,United States\n"
    "Yuri,Kim,Umbrella,,yuri@umbrella.example,+1 415 555 0100,,,United States\n"
)


@pytest.fixture
def two_lists(leads: Leads, database_url: str, tmp_path: Path) -> Leads:
    for name, rows in (("A", LIST_A), ("B", LIST_B)):
        leads.ok("lists", "create", name)
        import_text(database_url, tmp_path / f"{name}.csv", HEADER + rows, name)
    return leads


def _ids(database_url: str) -> dict[str, int]:
    with connect(database_url) as conn:
        return {
            f"{r['first_name']} {r['list']}": r["id"]
            for r in conn.execute(
                "SELECT l.id, l.first_name, s.name AS list FROM leads l JOIN lists s ON s.id = l.list_id"
            )
        }


def _snapshot(database_url: str) -> dict[str, list[dict[str, Any]]]:
    with connect(database_url) as conn:
        return {
            table: list(conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2"))
            for table in ("leads", "lead_facts", "lead_tags")
        }


def test_clusters_within_and_across_lists_with_reasons(two_lists: Leads, database_url: str) -> None:
    ids = _ids(database_url)
    report = two_lists.json("dedupe", "--json")
    clusters = {tuple(c["leadIds"]): c for c in report["clusters"]}
    ana = (str(ids["Ana A"]), str(ids["Ana B"]))
    bob = (str(ids["Bob A"]), str(ids["Robert B"]))
    dana = (str(ids["Dana A"]), str(ids["D. B"]))
    assert set(clusters) == {ana, bob, dana}, "same phone with other names (Carl, Yuri) is not a duplicate"
    assert clusters[bob]["reasons"] == ["same email", "same last name"]
    assert "same LinkedIn URL" in clusters[dana]["reasons"]
    assert {"same first name", "same last name", "same company"} <= set(clusters[ana]["reasons"])
    assert clusters[ana]["score"] >= clusters[ana]["threshold"]
    assert [c["cluster"] for c in report["clusters"]] == [1, 2, 3]
    assert len(clusters[ana]["listIds"]) == 2 and clusters[ana]["lists"] == ["A", "B"], "named, in id order"
    # within one list only: none of these
    assert two_lists.json("dedupe", "--list", "A", "--json")["clusters"] == []
    assert "3 clusters of duplicates" in two_lists.ok("dedupe", "--list", "A", "--list", "B")
    assert "\n1 cluster of duplicates\n" in two_lists.ok("dedupe", "--where", "country = Spain")  # was "1 clusters"


def test_clusters_are_shown_whole_at_80_columns(two_lists: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    """At 80 columns (a pipe, a log) the table cut a cluster's reasons to a few letters. There each cluster
    takes two lines, every value whole; a wide terminal keeps the table."""
    clusters = two_lists.json("dedupe", "--json")["clusters"]
    monkeypatch.setattr(common, "console", Console(width=80))
    shown = two_lists.ok("dedupe").splitlines()
    assert len(shown) == 2 * len(clusters) + 1
    for c in clusters:
        at = shown.index(f"cluster {c['cluster']}: leads {', '.join(c['leadIds'])}")
        lists = ", ".join(c["lists"])  # by name: "in lists 1, 2" needed another command to read
        assert shown[at + 1] == f"  in lists {lists}, score {c['score']:.1f}: {', '.join(c['reasons'])}"
    assert shown[-1] == f"{len(clusters)} clusters of duplicates"
    monkeypatch.setattr(common, "console", Console(width=200))
    assert two_lists.ok("dedupe").startswith("┏")  # the table


def test_merges_are_shown_whole_at_80_columns(
    leads: Leads, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns (a pipe, a log) the table cut the fields a merge filled to a few letters ("last_…"). There
    each merge takes two lines, every value whole; a wide terminal keeps the table."""
    for name, row in (
        ("fair", "Eve,Adams,Initech,CTO,eve@initech.example,,,,\n"),
        ("web", "Eve,,,,eve@initech.example,+1 415 555 0199,https://www.linkedin.com/in/eveadams,Austin,US\n"),
    ):
        leads.ok("lists", "create", name)
        import_text(database_url, tmp_path / f"{name}.csv", HEADER + row, name)
    [merge] = leads.json("dedupe", "--merge", "--json")["merges"]
    [listed] = leads.json("merges", "list", "--json")
    filled = ", ".join(listed["filled"])
    assert len(filled) > 20, filled
    monkeypatch.setattr(common, "console", Console(width=80))
    assert leads.ok("merges", "list").splitlines() == [
        f"merge {merge['mergeId']}: kept lead {merge['survivorId']}, merged {merge['mergedIds'][0]}",
        f"  filled {filled}, by tester at {listed['createdAt'][:16].replace('T', ' ')}",
    ]
    monkeypatch.setattr(common, "console", Console(width=200))
    assert leads.ok("merges", "list").startswith("┏")  # the table


def test_merges_list_pages_back_to_merges_older_than_the_newest_ones(two_lists: Leads) -> None:
    """`merges list` showed the newest 50 merges and said nothing of the others: after a `dedupe --merge` of a few
    hundred clusters the merge to look into or undo was out of sight. `--limit` shows more, `--before ID` the ones
    older than a merge, and a full page says how to see the next."""
    ids = [m["mergeId"] for m in two_lists.json("dedupe", "--merge", "--json")["merges"]]
    assert len(ids) >= 3, ids
    newest = sorted(ids, key=int, reverse=True)

    def listed(*args: str) -> list[str]:
        return [m["id"] for m in two_lists.json("merges", "list", "--json", *args)]

    assert listed() == newest
    assert listed("--limit", "2") == newest[:2]
    assert listed("--before", newest[1]) == newest[2:]
    paged = two_lists.run("merges", "list", "--limit", "2")
    assert paged.exit_code == 0 and paged.stderr.strip() == f"more: --before {newest[1]}"
    assert two_lists.run("merges", "list", "--limit", str(len(ids))).stderr == "", "all of them fit: nothing more"
    assert two_lists.ok("merges", "list", "--before", newest[-1]) == f"no merges before merge {newest[-1]}\n"


def test_merge_fills_keeps_facts_and_undo_restores_exactly(two_lists: Leads, database_url: str) -> None:
    ids = _ids(database_url)
    with connect(database_url) as conn:
        conn.execute(
            "INSERT INTO lead_facts (lead_id, field, value, source, confidence, cost)"
            " VALUES (%s, 'title', 'CTO', 'apify', 70, 0.01)",
            (ids["Ana B"],),
        )
        conn.execute("INSERT INTO lead_tags VALUES (%s, 'hot'), (%s, 'fair')", (ids["Ana B"], ids["Ana A"]))
    before = _snapshot(database_url)
    cluster = next(c for c in two_lists.json("dedupe", "--json")["clusters"] if str(ids["Ana A"]) in c["leadIds"])

    result = two_lists.json("dedupe", "--merge", "--cluster", str(cluster["cluster"]), "--json")
    [merge] = result["merges"]
    assert merge["survivorId"] == str(ids["Ana A"]) and merge["mergedIds"] == [str(ids["Ana B"])]
    assert merge["filled"] == {"title": str(ids["Ana B"])}
    with connect(database_url) as conn:
        survivor = conn.execute("SELECT * FROM leads WHERE id = %s", (ids["Ana A"],)).fetchone()
        merged = conn.execute("SELECT * FROM leads WHERE id = %s", (ids["Ana B"],)).fetchone()
        facts = list(
            conn.execute(
                "SELECT field, value, source, details FROM lead_facts WHERE lead_id = %s ORDER BY id", (ids["Ana A"],)
            )
        )
        tags = [
            r["tag"] for r in conn.execute("SELECT tag FROM lead_tags WHERE lead_id = %s ORDER BY tag", (ids["Ana A"],))
        ]
    assert survivor is not None and merged is not None
    assert survivor["title"] == "CTO" and survivor["email"] == "ana@acme.es"
    assert merged["deleted_at"] is not None and merged["merged_into"] == ids["Ana A"]
    assert [(f["field"], f["source"]) for f in facts] == [("title", "apify"), ("title", "merge")]
    assert facts[1]["details"] == {"from_lead": ids["Ana B"]}
    assert tags == ["fair", "hot"]
    remaining = two_lists.json("dedupe", "--json")["clusters"]
    assert len(remaining) == 2 and all(ids["Ana A"] not in c["leadIds"] for c in remaining)

    history = two_lists.json("merges", "list", "--json")
    assert [h["id"] for h in history] == [merge["mergeId"]]
    assert "restored" in two_lists.ok("merges", "undo", str(merge["mergeId"]))
    assert _snapshot(database_url) == before
    assert "already undone" in two_lists.fails("merges", "undo", str(merge["mergeId"]))
    unknown = two_lists.fails("merges", "undo", "999", user="mallory")
    assert "merge 999: not found or not shared with you (`leads merges list` lists yours)" in unknown
    # a stranger to the lists was told the merge was undone (and, before that, the lists and their owner)
    assert two_lists.fails("merges", "undo", str(merge["mergeId"]), user="mallory") == unknown.replace(
        "999", str(merge["mergeId"])
    )


def test_merge_everything_then_undo_refused_after_a_later_change(two_lists: Leads, database_url: str) -> None:
    result = two_lists.json("dedupe", "--merge", "--json")
    assert len(result["merges"]) == 3
    assert two_lists.json("dedupe", "--json")["clusters"] == []
    survivor = result["merges"][0]["survivorId"]
    two_lists.ok("bulk", "set", "notes", "called", "--id", str(survivor))
    error = two_lists.fails("merges", "undo", str(result["merges"][0]["mergeId"]))
    assert f"lead {survivor} changed after merge" in error
    error = two_lists.fails("dedupe", "--merge", "--cluster", "9")  # every cluster merged: it said "1 to 0"
    assert "--cluster 9: no such cluster; this selection has no clusters of duplicates" in error


def test_two_merges_of_the_same_lists_at_once_merge_each_cluster_once(two_lists: Leads, database_url: str) -> None:
    """Two `leads dedupe --merge` at once (cron jobs that overlap): the second found the clusters before the first
    committed, waited for it, then failed with exit 1 on the first cluster the first had merged ("fewer than two
    of them are live") and merged nothing. Now it skips the clusters merged meanwhile, says so, merges the rest
    and exits 0."""
    from leads_pipeline.lib.store.merges import merge_cluster

    ids = _ids(database_url)
    ana = [ids["Ana A"], ids["Ana B"]]
    first = while_uncommitted(  # the first run has merged Ana's cluster and not committed yet
        database_url,
        lambda conn: merge_cluster(conn, ana, "tester", reasons=["same name"], score=1.0),
        lambda: two_lists.run("dedupe", "--merge", "--json"),
    )
    assert first.exit_code == 0, first.output
    result = json.loads(first.stdout)
    assert not api_shape_problems(result)
    [skipped] = [c for c in result["clusters"] if c["leadIds"] == [str(i) for i in ana]]
    assert result["skipped"] == [skipped["cluster"]]
    assert sorted(m["survivorId"] for m in result["merges"]) == [str(ids["Bob A"]), str(ids["Dana A"])]
    again = two_lists.run("dedupe", "--merge")  # nothing left to merge: exit 0 too
    assert again.exit_code == 0 and "0 clusters of duplicates" in again.stdout
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM merges").fetchone() == {"n": 3}


def test_undoing_a_merge_while_a_bulk_edit_changes_its_survivor_keeps_the_edit(
    two_lists: Leads, database_url: str
) -> None:
    """`leads merges undo` while a `bulk set` on the survivor had not committed yet: the undo read the survivor as
    the merge left it, waited for the edit, then wrote the saved row over it (the note was gone, nothing said so).
    It now waits for the edit first and is refused as after any later change."""
    merge = two_lists.json("dedupe", "--merge", "--json")["merges"][0]
    survivor = merge["survivorId"]

    def undo() -> object:
        with connect(database_url) as conn:
            return undo_merge(conn, merge["mergeId"], "tester")

    with pytest.raises(LeadsError) as refused:
        while_uncommitted(  # as `leads bulk set notes called` writes
            database_url,
            lambda editor: editor.execute(
                "UPDATE leads SET notes = 'called', updated_at = now() WHERE id = %s", (survivor,)
            ),
            undo,
        )

    assert f"lead {survivor} changed after merge" in str(refused.value)
    with connect(database_url) as conn:
        row = conn.execute("SELECT notes, merged_into FROM leads WHERE id = %s", (survivor,)).fetchone()
        assert row == {"notes": "called", "merged_into": None}


def test_a_viewer_cannot_merge_and_nothing_changes(two_lists: Leads, database_url: str) -> None:
    two_lists.ok("lists", "share", "A", "vic", "--role", "viewer")
    two_lists.ok("lists", "share", "B", "vic", "--role", "editor")
    before = _snapshot(database_url)
    assert len(two_lists.json("dedupe", "--json", user="vic")["clusters"]) == 3
    error = two_lists.fails("dedupe", "--merge", user="vic")
    assert "user 'vic' is a viewer of list 'A'" in error and "merging its leads" in error
    assert _snapshot(database_url) == before


def test_a_merge_checks_the_role_before_saying_whether_the_leads_are_live(two_lists: Leads, database_url: str) -> None:
    """Merging leads of which fewer than two are live told anyone so, before the role was checked: a stranger
    learned which lead ids exist and are live. Now a stranger is refused as for ids no lead has, a viewer is
    told the role needed, and only an editor hears that there is nothing to merge."""
    from leads_pipeline.lib.errors import AccessDeniedError, ConfigurationError
    from leads_pipeline.lib.store.merges import merge_cluster

    ids = _ids(database_url)
    ana = [ids["Ana A"], ids["Ana B"]]
    two_lists.ok("lists", "share", "A", "vic", "--role", "viewer")
    two_lists.ok("lists", "share", "B", "vic", "--role", "viewer")
    with connect(database_url) as conn:
        merge_cluster(conn, ana, "tester", reasons=["same name"], score=1.0)  # Ana B is merged: no longer live
        with pytest.raises(AccessDeniedError) as unknown:
            merge_cluster(conn, [999_998, 999_999], "mallory", reasons=[], score=1.0)
        assert str(unknown.value) == "leads 999998, 999999: not found or not shared with you"
        with pytest.raises(AccessDeniedError) as stranger:
            merge_cluster(conn, ana, "mallory", reasons=[], score=1.0)
        assert str(stranger.value) == f"leads {ana[0]}, {ana[1]}: not found or not shared with you"
        with pytest.raises(AccessDeniedError, match="user 'vic' is a viewer of list 'A'; merging its leads needs"):
            merge_cluster(conn, ana, "vic", reasons=[], score=1.0)
        with pytest.raises(ConfigurationError, match="fewer than two of them are live"):
            merge_cluster(conn, ana, "tester", reasons=[], score=1.0)


def test_a_merge_fills_an_extension_only_with_its_own_number(leads: Leads, database_url: str, tmp_path: Path) -> None:
    from leads_pipeline.lib.store.merges import merge_cluster

    leads.ok("lists", "create", "m")
    import_text(
        database_url,
        tmp_path / "m.csv",
        "First Name,Last Name,Company,Email,Phone,Mobile Phone,Title,City,Country\n"
        "Ann,Lee,Acme,s@acme.io,+1 212 555 0101,,CTO,Austin,United States\n"  # the survivor: no extension
        "Ann,Lee,Acme,o1@acme.io,+1 212 555 0199 x 77,,CTO,,\n"  # another number's extension
        "Ann,Lee,Acme,o2@acme.io,+1 212 555 0101 x 5,+1 212 555 0300 x 9,,,\n",  # the same number's
        "m",
    )
    with connect(database_url) as conn:
        ids = [r["id"] for r in conn.execute("SELECT id FROM leads ORDER BY id")]
        result = merge_cluster(conn, ids, "tester", reasons=["same name"], score=1.0)
        survivor = conn.execute("SELECT * FROM leads WHERE id = %s", (ids[0],)).fetchone()
    assert result.survivor_id == ids[0] and survivor is not None
    assert (survivor["phone"], survivor["phone_ext"]) == ("+12125550101", "5")
    assert (survivor["mobile_phone"], survivor["mobile_phone_ext"]) == ("+12125550300", "9")
    assert result.filled["phone_ext"] == ids[2]


def _opted_out(database_url: str, *lead_ids: int) -> list[bool]:
    with connect(database_url) as conn:
        return [
            r["opted_out_at"] is not None
            for r in conn.execute("SELECT opted_out_at FROM leads WHERE id = ANY(%s) ORDER BY id", (list(lead_ids),))
        ]


def test_a_merge_keeps_an_opt_out_and_its_undo_keeps_a_later_one(two_lists: Leads, database_url: str) -> None:
    """Ana opted out under her private address, then her two leads were merged: the survivor is her, opted out
    (before: it was exported and pushed with what it took from her opted-out lead); the undo gives each lead its own
    flag back. Dana opted out after her merge: undoing it keeps her opt-out (before: the survivor's row as it was
    before the merge cleared it)."""
    ids = _ids(database_url)
    two_lists.ok("privacy", "opt-out", "ana.garcia@gmail.example")
    clusters = two_lists.json("dedupe", "--json")["clusters"]
    ana = next(c["cluster"] for c in clusters if str(ids["Ana A"]) in c["leadIds"])
    dana = next(c["cluster"] for c in clusters if str(ids["Dana A"]) in c["leadIds"])
    [merge] = two_lists.json("dedupe", "--merge", "--cluster", str(ana), "--json")["merges"]
    assert merge["survivorId"] == str(ids["Ana A"])
    assert _opted_out(database_url, ids["Ana A"]) == [True]
    assert "ana@acme.es" not in two_lists.ok("bulk", "export", "--list", "A", "--list", "B")
    two_lists.ok("merges", "undo", str(merge["mergeId"]))
    assert _opted_out(database_url, ids["Ana A"], ids["Ana B"]) == [False, True]

    [merge] = two_lists.json("dedupe", "--merge", "--cluster", str(dana), "--json")["merges"]
    assert merge["survivorId"] == str(ids["Dana A"]) and _opted_out(database_url, ids["Dana A"]) == [False]
    two_lists.ok("privacy", "opt-out", "dana@fbi.example")
    two_lists.ok("merges", "undo", str(merge["mergeId"]))
    assert _opted_out(database_url, ids["Dana A"]) == [True], "her opt-out outlives the undo"


def test_undoing_a_merge_keeps_a_stage_set_since(two_lists: Leads, database_url: str) -> None:
    """A person moved the survivor to `sql` after the merge (a stage change touches no field): undoing the merge
    keeps it, as `stage_changes` records it (before: the survivor's row before the merge came back whole, stage
    `new`, and the manual stage was silently lost)."""
    ids = _ids(database_url)
    clusters = two_lists.json("dedupe", "--json")["clusters"]
    ana = next(c["cluster"] for c in clusters if str(ids["Ana A"]) in c["leadIds"])
    [merge] = two_lists.json("dedupe", "--merge", "--cluster", str(ana), "--json")["merges"]
    two_lists.ok("stage", "set", str(merge["survivorId"]), "sql", "--reason", "asked for a demo")
    two_lists.ok("merges", "undo", str(merge["mergeId"]))
    with connect(database_url) as conn:
        row = conn.execute("SELECT stage, title FROM leads WHERE id = %s", (merge["survivorId"],)).fetchone()
    assert row == {"stage": "sql", "title": None}, "the stage stays, the filled title goes"


@pytest.mark.parametrize("removal", ["purge", "retention"])
def test_a_survivor_deleted_for_good_gives_the_other_list_its_merged_lead_back(
    two_lists: Leads, database_url: str, tmp_path: Path, removal: str
) -> None:
    """Ana of list B was merged into Ana of list A, then A was purged (or Ana A expired under a retention policy
    of A): the merge went with the survivor, so B's Ana was deleted for good with nothing to restore her
    (before); she is B's live lead again."""
    from leads_pipeline.lib.store import retention

    ids = _ids(database_url)
    clusters = two_lists.json("dedupe", "--json")["clusters"]
    ana = next(c["cluster"] for c in clusters if str(ids["Ana A"]) in c["leadIds"])
    [merge] = two_lists.json("dedupe", "--merge", "--cluster", str(ana), "--json")["merges"]
    assert merge["survivorId"] == str(ids["Ana A"])
    if removal == "purge":
        two_lists.ok("lists", "delete", "A", "--purge", "--yes")
    else:
        with connect(database_url) as conn:
            old = "now() - interval '40 days'"  # the lead and the facts the merge gave it
            conn.execute(f"UPDATE leads SET updated_at = {old} WHERE id = %s", (ids["Ana A"],))
            conn.execute(f"UPDATE lead_facts SET observed_at = {old} WHERE lead_id = %s", (ids["Ana A"],))
            list_a = conn.execute("SELECT id FROM lists WHERE name = 'A'").fetchone()
            assert list_a is not None
            retention.set_policy(conn, "leads", 30, list_id=list_a["id"], actor="tester")
            assert retention.apply(conn, inbox=tmp_path / "inbox", actor="tester").leads == {"A": 1}
    found = two_lists.json("search", "--list", "B", "--where", "email = ana.garcia@gmail.example", "--json")["leads"]
    assert [lead["id"] for lead in found] == [str(ids["Ana B"])]


PEOPLE = [
    ("Ana", "García", "Acme"),
    ("Bob", "Stone", "Initech"),
    ("Carla", "Jung", "Globex"),
    ("Dmitri", "Ivanov", "Umbrella"),
    ("Emeka", "Okafor", "Hooli"),
    ("Fatima", "Haddad", "Stark"),
    ("Gunnar", "Lindqvist", "Wayne"),
    ("Hiro", "Tanaka", "Cyberdyne"),
]


def test_merging_more_clusters_takes_no_more_statements(
    leads: Leads, database_url: str, tmp_path: Path, statements: list[str]
) -> None:
    """`leads dedupe --merge` merged each cluster on its own, ~18 statements a cluster: 10,000 clusters took
    123 s. A merge of 6 clusters takes the statements a merge of 2 takes, and each is merged as before."""
    sent = {}
    for name, people in (("few", PEOPLE[:2]), ("many", PEOPLE[2:])):
        leads.ok("lists", "create", name)
        rows = [f"{f},{last},{co},,{f.lower()}@{co.lower()}.example,Madrid\n" for f, last, co in people]
        rows += [f"{f},{last},{co},CTO,{f.lower()}.{last.lower()}@mail.example,\n" for f, last, co in people]
        import_text(
            database_url,
            tmp_path / f"{name}.csv",
            "First Name,Last Name,Company,Title,Email,City\n" + "".join(rows),
            name,
        )
        statements.clear()
        result = leads.json("dedupe", "--list", name, "--merge", "--json")
        sent[name] = len(statements)
        assert len(result["merges"]) == len(people) and result["skipped"] == []
        assert all(m["filled"].keys() == {"title"} for m in result["merges"]), (
            "the survivor has the city: more complete"
        )
    assert sent["many"] == sent["few"]
    assert leads.json("dedupe", "--json")["clusters"] == []


def test_clusters_that_share_a_lead_are_merged_one_after_the_other(
    leads: Leads, database_url: str, tmp_path: Path
) -> None:
    """Merged together, two clusters sharing a lead both saw it live: the second would have merged into a lead the
    first had just merged away. Each sees what the one before it left, as merged one by one."""
    from leads_pipeline.lib.dedupe.leads import DuplicateCluster
    from leads_pipeline.lib.store.merges import MergeResult, NothingLeftToMerge, merge_clusters

    leads.ok("lists", "create", "m")
    import_text(
        database_url,
        tmp_path / "m.csv",
        "First Name,Last Name,Company,Email,Title,City\n"
        "Ann,Lee,Acme,ann@acme.io,CTO,Austin\n"  # the most complete: the survivor
        "Ann,Lee,Acme,ann.lee@mail.example,,\n"
        "Ann,Lee,Acme,annie@home.example,,\n",
        "m",
    )
    with connect(database_url) as conn:
        a, b, c = [r["id"] for r in conn.execute("SELECT id FROM leads ORDER BY id")]
        first, second = merge_clusters(
            conn, [DuplicateCluster(1, [a, b], [1], 1.0, []), DuplicateCluster(2, [b, c], [1], 1.0, [])], "tester"
        )
        live = [r["id"] for r in conn.execute("SELECT id FROM leads WHERE deleted_at IS NULL ORDER BY id")]
    assert isinstance(first, MergeResult) and (first.survivor_id, first.merged_ids) == (a, [b])
    assert isinstance(second, NothingLeftToMerge), "lead b was merged away by the first"
    assert live == [a, c]
