"""``leads score``, ``leads show``, ``leads stage set`` and ``leads model train``: scoring from a terminal.

Scoring and training run through Dagster (the ``lead_scores`` and ``lead_fit_model`` assets) so every run shows up
in the UI with its metadata and checks; showing a lead and setting a stage read and write the store directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leads_pipeline.commands.common import (
    Table,
    acting_user,
    console,
    environment,
    print_json,
    print_line,
    print_table,
    require_every_list,
    run_or_fail,
)
from leads_pipeline.commands.selection import WhereOption
from leads_pipeline.lib.wording import counted, plain_number

if TYPE_CHECKING:
    from leads_pipeline.lib.store.access import Role

stage_app = typer.Typer(help="Qualification stages (new, mql, sql, ...): set one by hand.", no_args_is_help=True)
model_app = typer.Typer(help="The learned fit model: train it on historical outcomes.", no_args_is_help=True)


def run_cli_score(
    database_url: str,
    list_name: str,
    *,
    ids_file: Path | None = None,
    where: list[str] | None = None,
    config_file: Path | None = None,
    user: str | None = None,
) -> dict[str, Any]:
    """Record the selection as a batch, materialize ``lead_scores`` for it and return the PRD's response.

    Scoring moves stages, so it needs the editor role on the list; ``where`` is the search filter language. The
    batch's members are released when the run ends (its scores check, in the run, is their last reader: a score
    is not resumed, another `leads score` makes a new batch); each run kept ~200 bytes a lead for good."""
    from leads_pipeline.launcher import materialize_scores
    from leads_pipeline.lib.filters import Selection, read_ids_file
    from leads_pipeline.lib.scoring.config import load_config
    from leads_pipeline.lib.scoring.selection import create_selection, list_lead_ids
    from leads_pipeline.lib.store import access
    from leads_pipeline.lib.store.batches import release_members
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.lists import get_list

    actor = user or acting_user()
    if config_file is not None:
        load_config(config_file)  # a bad file fails here, naming the key, before any batch is created
    only = read_ids_file(ids_file) if ids_file else None
    selection = Selection.build(lists=[list_name], where=where, ids=only)
    with connect(database_url) as conn:
        lead_list = get_list(conn, list_name, actor)
        access.require(conn, lead_list.id, actor, "editor", "scoring its leads")
        if only is not None:
            list_lead_ids(conn, lead_list.id, only)  # an id outside the list is an error naming it
        what = (
            f"list {lead_list.name}"
            + (f", ids from {ids_file.name}" if ids_file else "")
            + (f", where {'; '.join(f.describe() for f in selection.where)}" if where else "")
        )
        batch = create_selection(conn, selection, actor, label=lead_list.name, description=what)
    run_config = {"config_file": str(config_file.resolve())} if config_file else {}
    try:
        result = materialize_scores(batch, run_config)
    finally:
        with connect(database_url) as conn:
            release_members(conn, batch)
    [materialization] = result.asset_materializations_for_node("lead_scores")
    response: dict[str, Any] = dict(materialization.metadata["response"].value)  # type: ignore[arg-type]
    return {**response, "batchId": batch}


def score(
    list_name: Annotated[str, typer.Option("--list", help="Score the live leads of this list.")],
    ids_file: Annotated[
        Path | None, typer.Option("--ids", help="Only these leads of the list: a file of lead ids, one per line.")
    ] = None,
    where: WhereOption = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="Scoring configuration (YAML); default: the shipped one.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the PRD's JSON response.")] = False,
) -> None:
    """Score leads 0-100 (through the Dagster asset lead_scores) and move stages as thresholds are crossed."""
    env = run_or_fail(environment)
    document = run_or_fail(
        lambda: run_cli_score(env.database_url, list_name, ids_file=ids_file, where=where, config_file=config_file)
    )
    if as_json:
        print_json(document)
        return
    bands = document["distribution"]
    print_line(
        f"scored {counted(document['scored'], 'lead')} (batch {document['batchId']}):"
        f" average {document['averageScore']}, "
        f"{bands['hot']:,} hot, {bands['warm']:,} warm, {bands['cold']:,} cold"
    )
    stages = ", ".join(f"{count:,} {stage}" for stage, count in document["stages"].items())
    print_line(f"stages now: {stages}; {document['stageChanges']:,} moved by this run")


def _checked_lead(conn: Any, lead_id: int, needed: Role, action: str, *, write: bool) -> dict[str, Any]:
    """The live lead, once the acting user is known to hold the role ``needed`` on its list (else the same
    ``AccessDeniedError`` as ``leads search`` on that list)."""
    from leads_pipeline.lib.store import access
    from leads_pipeline.lib.store import scoring as store

    lead = store.get_lead(conn, lead_id)
    access.require(conn, lead["list_id"], acting_user(), needed, action, write=write, subject=f"lead {lead_id}")
    return lead


def _lead_document(conn: Any, lead: dict[str, Any], with_history: bool) -> dict[str, Any]:
    from leads_pipeline.lib.fields import SHOWN_FIELDS
    from leads_pipeline.lib.store import scoring as store

    lead_id = int(lead["id"])
    current = store.current_score(conn, lead_id)
    document: dict[str, Any] = {
        "leadId": lead_id,
        "list": lead["list_name"],
        "stage": lead["stage"],
        "fields": {name: lead[name] for name in SHOWN_FIELDS if lead[name] is not None},
        "custom": lead["custom"],
        "tags": [
            r["tag"] for r in conn.execute("SELECT tag FROM lead_tags WHERE lead_id = %s ORDER BY tag", (lead_id,))
        ],
        "score": None,
    }
    if current is not None:
        document["score"] = {
            "score": current["score"],
            "band": current["band"],
            "components": current["components"],
            "explanation": current["reasons"],
            "configVersion": current["config_version"],
            "modelVersion": current["model_version"],
            "scoredAt": current["scored_at"],
        }
    if with_history:
        document["scoreHistory"] = [_camel_keys(h) for h in store.score_history(conn, lead_id)]
        document["stageChanges"] = [_camel_keys(c) for c in store.stage_history(conn, lead_id)]
    return document


def _camel_keys(row: dict[str, Any]) -> dict[str, Any]:
    """A history row with camelCase keys (``scored_at`` -> ``scoredAt``), like the rest of the lead's JSON."""
    return {key.split("_")[0] + "".join(p.title() for p in key.split("_")[1:]): v for key, v in row.items()}


def _print_value(name: str, value: Any) -> None:
    """A field as ``  name: value``; a value in several lines (notes) with its later lines indented under it: they
    began at the left margin, where they read as the next fields, and a CR alone sent the cursor back over the
    name."""
    first, *others = str(value).splitlines() or [""]
    print_line(f"  {name}: {first}")
    for line in others:
        print_line(f"    {line}")


def _print_lead(document: dict[str, Any]) -> None:
    # the values as written, not read as markup (a company "[link=https://evil.example]Acme[/link]"); a long list's
    # name whole, however narrow (a pipe: 80 columns)
    print_line((f"lead {document['leadId']}", "bold"), f" in {document['list']}: stage {document['stage']}")
    for name, value in document["fields"].items():  # each whole on its line, however narrow (a pipe: 80 columns)
        _print_value(name, value)
    for name, value in document["custom"].items():  # a file's other columns, named as --where and exports name them
        _print_value(f"custom.{name}", value)
    if document["tags"]:
        print_line(f"  tags: {', '.join(document['tags'])}")
    current = document["score"]
    if current is None:
        console.print("  not scored yet (leads score --list NAME)")
    else:
        parts = ", ".join(f"{name} {points}" for name, points in current["components"].items())
        print_line(f"  score {current['score']} ({current['band']}): {parts}")
        for reason in current["explanation"]:
            print_line(f"    - {reason}")
    # narrower than a table (80 columns: a pipe, a log) its columns were cut to a few letters ("company_…",
    # "company/…") or broken over lines: each row takes two lines, every value whole
    if "scoreHistory" in document:
        history = Table("scored at", "score", "band", "stage", "components", "config", "model", title="score history")
        lines = []
        for h in document["scoreHistory"]:
            at, components = f"{h['scoredAt']:%Y-%m-%d %H:%M}", " ".join(f"{k}={v}" for k, v in h["components"].items())
            model = h["modelVersion"] or ""
            history.add_row(at, str(h["score"]), h["band"], h["stage"], components, h["configVersion"], model)
            lines.append((
                f"{at}: score {h['score']} ({h['band']}), stage {h['stage']}",
                f"{components}, config {h['configVersion']}" + (f", model {model}" if model else ""),
            ))  # fmt: skip
        print_table(history, lines)
        changes = Table("when", "from", "to", "by", "reason", title="stage changes")
        lines = []
        for c in document["stageChanges"]:
            who = c["changedBy"] if c["source"] == "manual" else "thresholds"
            when = f"{c['changedAt']:%Y-%m-%d %H:%M}"
            changes.add_row(when, c["fromStage"], c["toStage"], who, c["reason"] or "")
            lines.append((f"{when}: {c['fromStage']} to {c['toStage']}, by {who}", c["reason"] or "no reason given"))
        print_table(changes, lines)
    if "facts" in document:
        facts = Table(
            "field", "value", "source", "confidence", "cost", "observed", "won", title="where values came from"
        )
        lines = []
        for entry in document["facts"]:
            for fact in entry["facts"]:
                value = "" if fact["value"] is None else str(fact["value"])
                confidence, cost = str(fact.get("confidence", "")), plain_number(fact.get("cost", 0))
                observed, note = str(fact.get("observedAt", ""))[:19], fact.get("note")
                won = "yes" if fact["won"] else (note or "no")
                facts.add_row(entry["field"], value, fact["source"], confidence, cost, observed, won)
                lost = f"lost ({note})" if note else "lost"
                lines.append((
                    f"{entry['field']}: {value}",
                    f"{fact['source']}, confidence {confidence}, cost {cost}, observed {observed}, "
                    + ("won" if fact["won"] else lost),
                ))  # fmt: skip
        print_table(facts, lines)


def show(
    lead_id: Annotated[int, typer.Argument(help="The lead's id.")],
    score_history: Annotated[
        bool, typer.Option("--score-history", help="Also every score change and stage change.")
    ] = False,
    facts: Annotated[
        bool,
        typer.Option("--facts", help="Also where each field's value came from: source, confidence, cost, losers."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a lead: its fields, stage, current score with components and the reasons for it."""
    from leads_pipeline.lib.store import enrichment
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def fetch() -> dict[str, Any]:
        with connect(env.database_url) as conn:
            lead = _checked_lead(conn, lead_id, "viewer", "reading its leads", write=False)
            document = _lead_document(conn, lead, score_history)
            if facts:
                document["facts"] = enrichment.lead_attribution(conn, lead_id)["fields"]
            return document

    document = run_or_fail(fetch)
    if as_json:
        print_json(document)
    else:
        _print_lead(document)


@stage_app.command("set")
def stage_set(
    lead_id: Annotated[int, typer.Argument(help="The lead's id.")],
    stage: Annotated[str, typer.Argument(help="new, mql, sql, customer, disqualified or nurture.")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the stage history).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Set a lead's stage by hand; automatic progression never moves it below this stage afterwards."""
    from leads_pipeline.lib.scoring.stages import check_manual_stage
    from leads_pipeline.lib.store import scoring as store
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def change() -> dict[str, Any]:
        chosen = check_manual_stage(stage)
        with connect(env.database_url) as conn:
            _checked_lead(conn, lead_id, "editor", "setting its leads' stages", write=True)
            return store.set_stage(conn, lead_id, chosen, user=acting_user(), reason=reason)

    document = run_or_fail(change)
    if as_json:
        print_json(document)
    elif not document["changed"]:
        print_line(f"lead {lead_id}: already {document['to']} (set by {document['changedBy']}); nothing changed")
    else:
        print_line(f"lead {lead_id}: {document['from']} -> {document['to']} (by {document['changedBy']})")


@model_app.command("train")
def model_train(
    labelled_file: Annotated[Path, typer.Argument(help="CSV of past leads with an outcome column.")],
    label: Annotated[str, typer.Option(help="The outcome column (1/0, yes/no, won/lost).")] = "Converted",
    mapping_file: Annotated[
        Path | None, typer.Option("--mapping", help="YAML {column: lead field or null}; others: custom.<column>.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Train the fit model (through the Dagster asset lead_fit_model) and print its held-out metrics. There is one
    model, which the scoring of every list using it (and the daily rescore) takes up: an instance-wide change."""
    from leads_pipeline.launcher import materialize_fit_model

    env = run_or_fail(environment)
    run_or_fail(lambda: require_every_list(env.database_url, "training the fit model every list's scoring uses"))
    config: dict[str, Any] = {"labelled_file": str(labelled_file.resolve()), "label_column": label}
    if mapping_file is not None:
        config["mapping_file"] = str(mapping_file.resolve())
    result = run_or_fail(lambda: materialize_fit_model(config))
    [materialization] = result.asset_materializations_for_node("lead_fit_model")
    meta = {key: value.value for key, value in materialization.metadata.items()}
    document = {key: meta[key] for key in ("version", "accuracy", "auc", "brier", "calibration_error", "holdout_rows")}
    if as_json:
        print_json(document)
    else:
        print_line(
            f"trained {document['version']}: accuracy {document['accuracy']}, AUC {document['auc']}, "
            f"calibration error {document['calibration_error']} on {document['holdout_rows']:,} held-out leads"
        )
        console.print("use it with `model: {mode: component}` (or replace) in the scoring configuration")
