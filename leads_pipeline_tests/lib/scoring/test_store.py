"""Scores in PostgreSQL: current score, append-only history, automatic and manual stages, selections."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.abc import Buffer
from psycopg.types.array import ListDumper

from leads_pipeline.lib.errors import NotFoundError
from leads_pipeline.lib.fields import CANONICAL_FIELDS
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.privacy import crypto
from leads_pipeline.lib.scoring.batch import score_leads
from leads_pipeline.lib.scoring.config import load_config, parse_config
from leads_pipeline.lib.scoring.rules import Rules, ScoreResult, score_lead
from leads_pipeline.lib.scoring.selection import create_selection, list_lead_ids
from leads_pipeline.lib.store import scoring as store
from leads_pipeline.lib.store.batches import batch_lead_ids
from leads_pipeline.lib.store.db import connect
from leads_pipeline_tests.lib.scoring.support import ICP, add_leads
from leads_pipeline_tests.support import while_uncommitted, write_while_deleted

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def test_scores_components_stages_and_history(database_url: str) -> None:
    config = parse_config(ICP)
    with connect(database_url) as conn:
        _, (fit, engaged, cold) = add_leads(
            conn,
            [
                {"industry": "Computer Software", "country": "US", "custom": {"Visits": 12}},
                {"industry": "Retail", "country": "US", "custom": {"Visits": "3"}},
                {"industry": "Retail"},
            ],
        )
        summary = score_leads(conn, [fit, engaged, cold], config, now=NOW, batch_id=None)
        assert summary.as_json() | {"configVersion": None} == {
            "scored": 3,
            "distribution": {"hot": 1, "warm": 1, "cold": 1},
            "averageScore": round((100 + 50 + 0) / 3, 2),
            "stages": {"mql": 1, "new": 1, "sql": 1},
            "stageChanges": 2,
            "historyAppended": 3,
            "configVersion": None,
            "modelVersion": None,
        }
        stored = store.current_score(conn, fit)
        assert stored is not None
        assert stored["score"] == 100 and stored["components"]["companyFit"] == 50 and stored["band"] == "hot"
        assert stored["config_version"] == config.version
        assert any("industry Computer Software" in reason for reason in stored["reasons"])
        stages = {r["id"]: r["stage"] for r in conn.execute("SELECT id, stage FROM leads")}
        assert stages == {fit: "sql", engaged: "mql", cold: "new"}
        assert [c["to_stage"] for c in store.stage_history(conn, fit)] == ["sql"]

        again = score_leads(conn, [fit, engaged, cold], config, now=NOW + timedelta(hours=1))
        assert again.history_appended == 0 and again.stage_changes == 0  # same inputs, same rules: nothing new

        conn.execute("UPDATE leads SET custom = '{}' WHERE id = %s", (fit,))
        dropped = score_leads(conn, [fit], config, now=NOW + timedelta(hours=2))
        assert dropped.history_appended == 1 and dropped.stages == {"sql": 1}  # no regression by default
        assert [h["score"] for h in store.score_history(conn, fit)] == [100, 50]

        regress = parse_config({**ICP, "stages": {"regression": True}})
        score_leads(conn, [fit], regress, now=NOW + timedelta(hours=3))
        assert conn.execute("SELECT stage FROM leads WHERE id = %s", (fit,)).fetchone() == {"stage": "mql"}
        history = store.score_history(conn, fit)
        assert [(h["score"], h["stage"], h["config_version"]) for h in history][-1] == (50, "mql", regress.version)


def test_manual_stage_is_recorded_and_respected(database_url: str) -> None:
    config = parse_config({**ICP, "stages": {"regression": True}})
    with connect(database_url) as conn:
        _, [lead] = add_leads(conn, [{"industry": "Retail"}])
        score_leads(conn, [lead], config, now=NOW)
        change = store.set_stage(conn, lead, "sql", user="ana", reason="asked for a demo")
        assert change == {
            "leadId": lead,
            "from": "new",
            "to": "sql",
            "changedBy": "ana",
            "reason": "asked for a demo",
            "changed": True,
        }
        summary = score_leads(conn, [lead], config, now=NOW + timedelta(days=1))
        assert summary.stages == {"sql": 1} and summary.stage_changes == 0  # a person's stage is not lowered
        changes = store.stage_history(conn, lead)
        assert [(c["to_stage"], c["source"], c["changed_by"]) for c in changes] == [("sql", "manual", "ana")]
        assert store.score_history(conn, lead)[-1]["stage"] == "sql"  # the manual change reaches the history
        with pytest.raises(NotFoundError, match="lead 999999: not found or not shared with you"):
            store.set_stage(conn, 999_999, "mql", user="ana", reason=None)


def test_history_is_append_only(database_url: str) -> None:
    with connect(database_url) as conn:
        _, [lead] = add_leads(conn, [{"industry": "Computer Software", "country": "US"}])
        score_leads(conn, [lead], parse_config(ICP), now=NOW)
        conn.commit()
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("UPDATE score_history SET score = 99")
        conn.rollback()
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("UPDATE stage_changes SET to_stage = 'sql'")


def test_technologies_fact_counts_for_company_fit(database_url: str) -> None:
    config = parse_config(
        {
            "weights": {"dataCompleteness": 0, "companyFit": 1, "engagement": 0, "recency": 0},
            "companyFit": {"technologies": ["HubSpot"]},
        }
    )
    with connect(database_url) as conn:
        _, [lead, other] = add_leads(conn, [{}, {}])
        conn.execute(
            "INSERT INTO lead_facts (lead_id, field, value, source, confidence) VALUES"
            " (%s, 'technologies', '[\"AWS\", \"HubSpot\"]', 'gemini', 80),"
            " (%s, 'technologies', 'Shopify; Stripe', 'gemini', 80)",
            (lead, other),
        )
        score_leads(conn, [lead, other], config, now=NOW)
        scores = {r["lead_id"]: r["score"] for r in conn.execute("SELECT lead_id, score FROM lead_scores")}
        assert scores == {lead: 100, other: 0}


def test_the_leads_score_column_follows_the_current_score(database_url: str) -> None:
    with connect(database_url) as conn:
        _, [lead] = add_leads(conn, [{"industry": "Computer Software", "country": "US"}])
        score_leads(conn, [lead], parse_config(ICP), now=NOW)
        assert conn.execute("SELECT score FROM leads").fetchone() == {"score": 50}


def test_scoring_in_chunks_stores_what_one_chunk_stores(database_url: str) -> None:
    """Chunks are written while the next is scored (one pipeline): every chunk's scores, stages and history land,
    and the counts come back from every chunk."""
    config = parse_config(ICP)
    rows = [{"industry": "Computer Software", "country": "US", "custom": {"Visits": i % 12}} for i in range(7)]
    results = []
    for chunk_size in (3, 100):
        with connect(database_url) as conn:
            _, leads = add_leads(conn, rows, list_name=f"chunks-{chunk_size}")
            summary = score_leads(conn, leads, config, now=NOW, chunk_size=chunk_size)
            stored = conn.execute(
                "SELECT l.stage, s.score FROM leads l JOIN lead_scores s ON s.lead_id = l.id WHERE l.id = ANY(%s)"
                " ORDER BY l.id",
                (leads,),
            ).fetchall()
            history = conn.execute("SELECT count(*) AS n FROM score_history WHERE lead_id = ANY(%s)", (leads,))
            results.append((summary.as_json() | {"configVersion": None}, stored, history.fetchone()))
            conn.commit()
    assert results[0] == results[1]
    summary, stored, history = results[0]
    assert summary["scored"] == 7 and summary["historyAppended"] == 7 and summary["stageChanges"] == 7
    assert len(stored) == 7 and history == {"n": 7}


def test_a_chunk_of_scores_is_sent_as_one_document_and_its_reasons_come_back_as_written(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psycopg composes a list parameter value by value in Python (a third of writing 100k scores): none is sent,
    and reasons quoting a lead's values (quotes, backslashes, braces, accents) are stored as they were made."""
    composed: list[object] = []
    dump = ListDumper.dump

    def counted(dumper: ListDumper, value: list[object]) -> Buffer | None:
        composed.append(value)
        return dump(dumper, value)

    monkeypatch.setattr(ListDumper, "dump", counted)
    industry = 'Computer "Soft\\ware" {é}, Inc'
    config = parse_config({**ICP, "companyFit": {"industries": [industry], "countries": ["US"]}})
    with connect(database_url) as conn:
        _, [lead] = add_leads(conn, [{"industry": industry, "country": "US", "custom": {"Visits": 12}}])
        composed.clear()

        score_leads(conn, [lead], config, now=NOW)

        stored = store.current_score(conn, lead)
    assert stored is not None and f"industry {industry} in the ICP (+25)" in stored["reasons"]
    assert sum(stored["components"].values()) == stored["score"] > 0
    assert composed == [[lead]]  # the ids the leads are read by, and nothing else


def test_a_stored_lead_s_columns_are_its_fields_and_nothing_the_query_added(database_url: str) -> None:
    """The row a lead is read in becomes its columns once the query's other values are taken out: the fit model
    trains on every column, so an id, the custom fields or the technologies left in would become features."""
    with connect(database_url) as conn:
        _, [lead] = add_leads(conn, [{"industry": "Retail", "email": "ana@acme.example", "custom": {"Visits": 3}}])
        [stored] = store.load_leads(conn, [lead])
    assert list(stored.lead.columns) == [*CANONICAL_FIELDS, "stage", "created_at", "updated_at"]
    assert (stored.lead.id, stored.lead.custom, stored.stage_source) == (lead, {"Visits": 3}, "auto")
    assert stored.lead.columns["email"] == "ana@acme.example" and stored.lead.columns["industry"] == "Retail"


def test_scoring_a_few_leads_does_not_read_the_whole_table(database_url: str) -> None:
    """Scoring cost follows the leads scored, not the size of the table (every other list's leads)."""
    with connect(database_url) as conn:
        rows = [{"industry": "Computer Software", "custom": {"Visits": i}} for i in range(200)]
        list_id, leads = add_leads(conn, rows)
        conn.execute(
            "INSERT INTO leads (list_id, first_name, industry) SELECT %s, 'other ' || i, 'Retail'"
            " FROM generate_series(1, 30000) i",
            (list_id,),
        )
        conn.execute("ANALYZE leads")

        def full_reads() -> int:
            row = conn.execute("SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'leads'::regclass")
            return int(row.fetchone()["seq_scan"])  # type: ignore[index]

        before = full_reads()
        summary = score_leads(conn, leads, parse_config(ICP), now=NOW)
        assert summary.scored == 200 and summary.stage_changes > 0
        assert full_reads() == before


def test_selection_batches_and_ids_files(database_url: str, tmp_path: Path) -> None:
    with connect(database_url) as conn:
        list_id, ids = add_leads(conn, [{}, {}, {}])
        _, [stranger] = add_leads(conn, [{}], list_name="other")
        assert list_lead_ids(conn, list_id) == ids
        assert list_lead_ids(conn, list_id, [ids[2], ids[0]]) == [ids[0], ids[2]]
        with pytest.raises(NotFoundError, match=f"not live leads of the list: {stranger}"):
            list_lead_ids(conn, list_id, [ids[0], stranger])
        first_two = Selection(lists=("scoring",), ids=tuple(ids[:2]))
        batch = create_selection(conn, first_two, "tester", label="scoring", description="test", now=NOW)
        assert batch.startswith("score-scoring-20261128T120000")
        assert batch_lead_ids(conn, batch) == ids[:2]
        kind = conn.execute("SELECT kind FROM batches WHERE id = %s", (batch,)).fetchone()
        assert kind == {"kind": "selection"}


def test_batch_problems_find_unscored_and_broken_sums(database_url: str) -> None:
    with connect(database_url) as conn:
        _list_id, [a, b] = add_leads(conn, [{"industry": "Computer Software"}, {}])
        batch = create_selection(conn, Selection(ids=(a, b)), "tester", label="x", description="test", now=NOW)
        score_leads(conn, [a], parse_config(ICP), now=NOW, batch_id=batch)
        conn.execute("UPDATE lead_scores SET score = score + 1 WHERE lead_id = %s", (a,))
        problems = store.batch_score_problems(conn, batch)
        assert problems["checked"] == 2
        assert problems["unscored"] == [b]
        assert [r["lead_id"] for r in problems["mismatched"]] == [a]


READ_LEADS = [
    {
        "email": "ana@acme.example",
        "phone": "+14155550100",
        "street": "1 Main St",
        "title": "VP Sales",
        "industry": "Internet",
        "country": "US",
        "employee_count": 120,
        "custom": {"Visits": 4, "Email Opens": "2", "Last Activity Date": "2026-11-20", "Plan": "pro"},
    },
    {"email": "  ", "first_name": " ", "street": "2 High St", "source": " Referral ", "custom": {"Visits": " 12 "}},
    {},
]
"""Leads with sealed fields filled, blank (whitespace only) and missing, numbers as text, blank custom values."""
STREET_SIGNAL = {
    "completeness": {"fields": {"email": 1, "street": 1}},
    "engagement": {"signals": [{"field": "street", "values": {"1 main st": 10}}]},
}
"""A configuration that reads a sealed value itself (an engagement signal on the street)."""


def _opened_while(monkeypatch: pytest.MonkeyPatch, score: Callable[[], object]) -> list[str]:
    """The sealed values opened while ``score`` ran."""
    opened: list[str] = []
    open_many = crypto.Keyring.open_many

    def counted(ring: crypto.Keyring, sealed: Iterable[str]) -> list[str]:
        plain = open_many(ring, sealed)
        opened.extend(plain)
        return plain

    monkeypatch.setattr(crypto.Keyring, "open_many", counted)
    score()
    monkeypatch.undo()
    return opened


def _as_stored(result: ScoreResult) -> tuple[int, dict[str, int], list[str]]:
    """A result as its current score keeps it: score, components, reasons."""
    return result.score, result.components, result.explanation()


@pytest.mark.parametrize(("document", "opened"), [(None, []), (STREET_SIGNAL, ["1 Main St", "2 High St"])])
def test_the_rules_read_only_what_they_use_and_score_as_from_every_column(
    database_url: str, monkeypatch: pytest.MonkeyPatch, document: dict[str, Any] | None, opened: list[str]
) -> None:
    """Scoring reads only the fields its rules use, opens only the sealed values they read (the default counts
    email and phone as filled or not: their blind indexes tell, a blank value included), and scores every lead
    as the rules score it read whole."""
    config = load_config() if document is None else parse_config(document)
    with connect(database_url) as conn:
        _, leads = add_leads(conn, READ_LEADS)
        conn.execute(
            "INSERT INTO lead_facts (lead_id, field, value, source, confidence)"
            " VALUES (%s, 'technologies', '[\"HubSpot\"]', 'gemini', 80)",
            (leads[0],),
        )
        assert _opened_while(monkeypatch, lambda: score_leads(conn, leads, config, now=NOW)) == opened

        stored = {r["lead_id"]: r for r in conn.execute("SELECT * FROM lead_scores")}
        for lead in store.load_leads(conn, leads):
            row = stored[lead.lead.id]
            assert (row["score"], row["components"], row["reasons"]) == _as_stored(score_lead(lead.lead, config, NOW))
    assert stored[leads[0]]["score"] != stored[leads[1]]["score"]


class _FitModel:
    """A stand-in for the fit model that records the values it is given (a probability follows from them)."""

    version = "fit-test"
    features = ("custom.Plan", "industry", "email", "employee_count", "custom.Visits")

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def probabilities(self, rows: Sequence[Mapping[str, Any]]) -> list[float]:
        self.rows.extend(dict(row) for row in rows)
        return [len(repr(sorted(row.items()))) % 100 / 100 for row in rows]


@pytest.mark.parametrize("mode", ["component", "replace"])
def test_the_fit_model_reads_only_its_fields_and_scores_as_from_every_column(
    database_url: str, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """With the fit model (a component, or instead of the rules) every column of the leads was read, every
    sealed value opened; now its fields are read with the rules' (the email it reads opened, the street and
    phone not), and it is given the values it was given from the whole lead."""
    config = parse_config({"model": {"mode": mode}})
    model = _FitModel()
    with connect(database_url) as conn:
        _, leads = add_leads(conn, READ_LEADS)
        store.save_model(conn, model.version, kind="test", features={}, metrics={}, training={}, model=b"")
        opened = _opened_while(monkeypatch, lambda: score_leads(conn, leads, config, now=NOW, model=model))
        assert opened == ["ana@acme.example", "  "]

        stored = {r["lead_id"]: r for r in conn.execute("SELECT * FROM lead_scores")}
        whole = [lead.lead for lead in store.load_leads(conn, leads)]
    expected = [{path: lead.value(path) for path in model.features} for lead in whole]
    assert model.rows == expected
    assert expected[0]["email"] == "ana@acme.example" and expected[1]["email"] is None
    for lead, row in zip(whole, expected, strict=True):
        result = score_lead(lead, config, NOW, model.probabilities([row])[0])
        current = stored[lead.id]
        assert (current["score"], current["components"], current["reasons"]) == _as_stored(result)


def test_a_blank_sealed_value_counts_as_missing_without_being_opened(database_url: str) -> None:
    with connect(database_url) as conn:
        _, leads = add_leads(conn, READ_LEADS)
        rules = Rules(load_config())
        assert "email" in rules.presence_only and "title" not in rules.presence_only
        inputs = list(store.load_rule_inputs(conn, leads, rules))
    email = rules.fields.index("email")
    assert [i.values[email] for i in inputs] == [True, None, None]
    assert [i.values[rules.fields.index("first_name")] for i in inputs] == [None, None, None]


def _row_writes(conn: psycopg.Connection[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows inserted, updated and deleted in this transaction in the tables scoring writes."""
    return conn.execute(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables"
        " WHERE relname IN ('leads', 'lead_scores', 'score_history', 'stage_changes') ORDER BY relname"
    ).fetchall()


def test_a_rescore_that_changes_nothing_writes_no_row(database_url: str) -> None:
    """A current score is rewritten only when its score, components, band, reasons or versions change (every row
    of a 100k-lead list was rewritten by every rescore, for a new scored_at); its scored_at is then when the lead
    got that score."""
    config = parse_config(ICP)
    with connect(database_url) as conn:
        _, [fit, other] = add_leads(
            conn,
            [
                {"industry": "Computer Software", "country": "US", "custom": {"Visits": 12}},
                {"industry": "Retail", "country": "US", "custom": {"Visits": 3}},
            ],
        )
        score_leads(conn, [fit, other], config, now=NOW)
        first = {r["lead_id"]: r for r in conn.execute("SELECT * FROM lead_scores")}
        written = _row_writes(conn)

        again = score_leads(conn, [fit, other], config, now=NOW + timedelta(hours=1), batch_id=None)

        assert _row_writes(conn) == written
        assert (again.scored, again.history_appended, again.stage_changes) == (2, 0, 0)
        assert {r["lead_id"]: r for r in conn.execute("SELECT * FROM lead_scores")} == first

        conn.execute("UPDATE leads SET custom = '{}' WHERE id = %s", (other,))
        score_leads(conn, [fit, other], config, now=NOW + timedelta(hours=2))
        scored_at = {r["lead_id"]: r["scored_at"] for r in conn.execute("SELECT * FROM lead_scores")}
        assert scored_at == {fit: NOW, other: NOW + timedelta(hours=2)}
        assert [h["score"] for h in store.score_history(conn, other)] == [50, 25]


def test_a_rescore_a_day_later_rewrites_no_score_that_stayed(database_url: str) -> None:
    """The daily rescore rewrote most current scores (76k of 100k) though they stayed: their reasons said how many
    days old the data and the last activity were, and recency's points, rounded, drift as they decay. The reasons
    name the days now and are compared without their points; a reason that says something else is written."""
    recency = {"activityField": "custom.Last Activity", "activityShare": 0.5}
    weights = {"dataCompleteness": 0, "companyFit": 50, "engagement": 35, "recency": 15}
    config = parse_config({**ICP, "weights": weights, "recency": recency})
    active = (NOW - timedelta(days=5)).isoformat()
    with connect(database_url) as conn:
        _, [lead] = add_leads(
            conn,
            [{"industry": "Computer Software", "updated_at": NOW, "custom": {"Last Activity": active}}],
        )
        score_leads(conn, [lead], config, now=NOW)
        first = store.current_score(conn, lead)
        assert first is not None and first["reasons"] == [
            "industry Computer Software in the ICP (+25)",
            "data last changed 2026-11-28 (+8)",
            "last activity 2026-11-23 (+7)",
        ]
        written = _row_writes(conn)

        later = score_leads(conn, [lead], config, now=NOW + timedelta(days=1))  # recency's points now +7 and +7

        assert (later.scored, later.history_appended, later.average) == (1, 0, first["score"])
        assert _row_writes(conn) == written
        assert store.current_score(conn, lead) == first

        active = (NOW - timedelta(days=4)).isoformat()
        conn.execute("UPDATE leads SET custom = jsonb_build_object('Last Activity', %s::text)", (active,))
        score_leads(conn, [lead], config, now=NOW + timedelta(days=2))
        current = store.current_score(conn, lead)
        assert current is not None and current["score"] == first["score"]
        assert current["reasons"][1:] == ["data last changed 2026-11-28 (+7)", "last activity 2026-11-24 (+7)"]
        assert current["scored_at"] == NOW + timedelta(days=2)


def test_scores_of_a_lead_deleted_while_it_was_scored_are_left_out(database_url: str) -> None:
    """`leads score` while `leads imports undo` (or a purge) deleted leads it had read: writing the chunk's
    current scores failed on the foreign key, the whole run with it. A lead gone is left out now."""
    with connect(database_url) as conn:
        _list, [gone, kept] = add_leads(conn, [{"first_name": "Pat"}, {"first_name": "Lou"}], "undone")
        version = store.save_config(conn, parse_config(ICP))
    rows = [store.ScoreRow(lead, 40, {"fit": 40}, "cold", ["fit"], "new", "new") for lead in (gone, kept)]

    def write() -> None:
        with connect(database_url) as conn:
            store.write_scores(
                conn, rows, batch_id=None, config_version=version, model_version=None, scored_at=datetime.now(UTC)
            )

    write_while_deleted(database_url, gone, write)
    with connect(database_url) as conn:
        assert [r["lead_id"] for r in conn.execute("SELECT lead_id FROM lead_scores")] == [kept]
        assert [r["lead_id"] for r in conn.execute("SELECT lead_id FROM score_history")] == [kept]


_HOT_AND_COLD = [
    {"industry": "Computer Software", "country": "US", "custom": {"Visits": 12}},
    {"industry": "Retail", "country": "DE"},
]
"""Two leads: the first scores 100 (hot, stage sql), the second 0 (cold, stage new)."""
_ONLY_COLD = {
    "scored": 1,
    "distribution": {"hot": 0, "warm": 0, "cold": 1},
    "averageScore": 0.0,
    "stages": {"new": 1},
    "stageChanges": 0,
    "historyAppended": 1,
    "modelVersion": None,
}
"""The report of scoring the second of :data:`_HOT_AND_COLD` alone."""


def test_a_lead_deleted_while_it_was_scored_is_not_reported(database_url: str) -> None:
    """`leads score --list` racing `leads imports undo` reported the leads it had scored, those removed meanwhile
    included (scored 2, their bands, stages and average), though only one score was stored. The report is what
    was stored now."""
    config = parse_config(ICP)
    with connect(database_url) as conn:
        _list, [gone, kept] = add_leads(conn, _HOT_AND_COLD, "undone")

    def score() -> dict[str, Any]:
        with connect(database_url) as conn:
            return score_leads(conn, [gone, kept], config, now=NOW).as_json()

    report = write_while_deleted(database_url, gone, score)
    with connect(database_url) as conn:
        assert [r["lead_id"] for r in conn.execute("SELECT lead_id FROM lead_scores")] == [kept]
    assert report == _ONLY_COLD | {"configVersion": config.version}


def _committed_before_written(
    monkeypatch: pytest.MonkeyPatch, database_url: str, change: Callable[[psycopg.Connection[dict[str, Any]]], object]
) -> None:
    """Make ``change`` happen, in a transaction of its own committed, once scoring has read a chunk and before
    it writes the chunk's scores: a person's command run while a batch is scored."""
    write = store.write_scores

    def changed_then_written(*args: Any, **kwargs: Any) -> store.ScoreWrites:
        with connect(database_url) as other:
            change(other)
        return write(*args, **kwargs)

    monkeypatch.setattr(store, "write_scores", changed_then_written)


def test_a_lead_deleted_softly_while_it_was_scored_gets_no_score_and_is_not_reported(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leads score --list` racing `leads bulk delete` (a list deleted, a merge: the lead's row stays, deleted_at
    set): the check for leads deleted since the chunk was read asked only whether the row existed, so the deleted
    lead got a current score, a history row and a stage change, and was reported. It is left out now."""
    from leads_pipeline.lib.store import bulk

    config = parse_config(ICP)
    with connect(database_url) as conn:
        _list, [gone, kept] = add_leads(conn, _HOT_AND_COLD, "deleted")
    _committed_before_written(
        monkeypatch, database_url, lambda other: bulk.delete(other, Selection.build(ids=[gone]), "tester")
    )
    with connect(database_url) as conn:
        report = score_leads(conn, [gone, kept], config, now=NOW).as_json()
    with connect(database_url) as conn:
        assert [r["lead_id"] for r in conn.execute("SELECT lead_id FROM lead_scores")] == [kept]
        assert [r["lead_id"] for r in conn.execute("SELECT lead_id FROM score_history")] == [kept]
        assert list(conn.execute("SELECT lead_id FROM stage_changes")) == []
        assert conn.execute("SELECT score, stage FROM leads WHERE id = %s", (gone,)).fetchone() == {
            "score": None,
            "stage": "new",
        }
    assert report == _ONLY_COLD | {"configVersion": config.version}


def test_a_stage_a_person_set_while_the_lead_was_scored_is_the_stage_reported(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leads stage set` while a batch scored the lead: the person's stage was kept (the move is guarded) but the
    report counted the stage the thresholds reached (sql for the first lead, new for the second). It counts the
    stages stored now."""
    config = parse_config(ICP)
    with connect(database_url) as conn:
        _list, [hot, cold] = add_leads(conn, _HOT_AND_COLD)

    def set_stages(other: psycopg.Connection[dict[str, Any]]) -> None:
        store.set_stage(other, hot, "nurture", user="ana", reason="not now")
        store.set_stage(other, cold, "mql", user="ana", reason="asked for a demo")

    _committed_before_written(monkeypatch, database_url, set_stages)
    with connect(database_url) as conn:
        report = score_leads(conn, [hot, cold], config, now=NOW).as_json()
    with connect(database_url) as conn:
        assert {r["id"]: r["stage"] for r in conn.execute("SELECT id, stage FROM leads")} == {
            hot: "nurture",
            cold: "mql",
        }
        assert [store.score_history(conn, lead)[-1]["stage"] for lead in (hot, cold)] == ["nurture", "mql"]
    assert (report["scored"], report["stages"], report["stageChanges"]) == (2, {"mql": 1, "nurture": 1}, 0)
    assert report["distribution"] == {"hot": 1, "warm": 0, "cold": 1}


def test_a_stage_a_person_confirmed_while_the_lead_was_scored_is_not_lowered(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With regression on, a lead whose score fell below its automatic stage (mql) while a person set that same
    stage (`leads stage set ID mql`: the stage is a person's from then on) was lowered to new anyway: the batch had
    read the stage as the thresholds', and the move checked only that the stage was still mql. A lowering now
    also checks that the stage is still the thresholds'."""
    config = parse_config({**ICP, "stages": {"regression": True}})
    with connect(database_url) as conn:
        _list, [lead] = add_leads(conn, [{"industry": "Retail", "country": "US", "custom": {"Visits": 3}}])
        assert score_leads(conn, [lead], config, now=NOW).stages == {"mql": 1}
        conn.execute("UPDATE leads SET custom = '{}', country = 'DE' WHERE id = %s", (lead,))
    _committed_before_written(
        monkeypatch, database_url, lambda other: store.set_stage(other, lead, "mql", user="ana", reason="still keen")
    )
    with connect(database_url) as conn:
        report = score_leads(conn, [lead], config, now=NOW + timedelta(days=1)).as_json()
    with connect(database_url) as conn:
        assert conn.execute("SELECT stage FROM leads WHERE id = %s", (lead,)).fetchone() == {"stage": "mql"}
        changes = [(c["to_stage"], c["source"]) for c in store.stage_history(conn, lead)]
        assert changes == [("mql", "auto"), ("mql", "manual")]
    assert (report["scored"], report["stages"], report["stageChanges"]) == (1, {"mql": 1}, 0)


def test_two_scorings_of_a_list_at_once_append_each_change_to_the_history_once(database_url: str) -> None:
    """`leads score` from a cron job while the daily rescore (or another cron job) scored the same list: each
    compared with the current scores before the other had committed, and every lead's first score was in its
    history twice (`leads show --score-history`). The second scoring waits for the first, then finds nothing
    changed. (Its configuration stored before, and no stage moved: the other writes neither waited.)"""
    config = parse_config(ICP)
    with connect(database_url) as conn:
        _list, ids = add_leads(conn, [{"industry": "Computer Software"}, {"industry": "Retail"}])
        store.save_config(conn, config)

    def scoring(conn: psycopg.Connection[Any]) -> dict[str, Any]:
        return score_leads(conn, ids, config, now=NOW).as_json()

    def second() -> dict[str, Any]:
        with connect(database_url) as conn:
            return scoring(conn)

    first: list[dict[str, Any]] = []
    report = while_uncommitted(database_url, lambda conn: first.append(scoring(conn)), second)
    assert (first[0]["historyAppended"], report["historyAppended"], report["scored"]) == (2, 0, 2)
    with connect(database_url) as conn:
        assert [len(store.score_history(conn, lead)) for lead in ids] == [1, 1]
        assert conn.execute("SELECT array_agg(stage) FROM leads").fetchone() == {"array_agg": ["new", "new"]}


def test_scoring_waits_for_a_soft_delete_in_flight_and_leaves_the_lead_out(database_url: str) -> None:
    """`leads score` writing a chunk while `leads bulk delete` of one of its leads is not committed yet: the chunk
    holds its leads (key share) before writing, and a soft delete holds its leads for update first (as a list
    delete and a merge do), so the chunk waits for the delete and then leaves the lead out; no lock that an import
    would wait for is needed. Without the delete's hold, its update (no key update) is not waited for by a key
    share: the lead was scored, then deleted."""
    from leads_pipeline.lib.store import bulk

    config = parse_config(ICP)
    with connect(database_url) as conn:
        _list, [gone, kept] = add_leads(
            conn,
            [
                {"industry": "Computer Software", "country": "US", "custom": {"Visits": 12}},
                {"industry": "Retail", "country": "DE"},
            ],
            "deleting",
        )

    def scoring() -> dict[str, Any]:
        with connect(database_url) as conn:
            return score_leads(conn, [gone, kept], config, now=NOW).as_json()

    report = while_uncommitted(
        database_url, lambda other: bulk.delete(other, Selection.build(ids=[gone]), "tester"), scoring
    )
    with connect(database_url) as conn:
        assert [r["lead_id"] for r in conn.execute("SELECT lead_id FROM lead_scores")] == [kept]
        assert [r["lead_id"] for r in conn.execute("SELECT lead_id FROM score_history")] == [kept]
    assert report["scored"] == 1
