"""Scoring benchmark: accuracy on a real labelled lead set, and scoring speed.

Accuracy uses ../shared/data/lead_scoring/Leads.csv (9,240 leads of an education company, ``Converted`` 0/1) with
its columns mapped onto lead fields as ``LEADS_CSV_MAPPING`` says, on a stratified 30% holdout:

- rules: a configuration tuned on the training 70% only (``lib/scoring/tuning.py``): accuracy of
  "stage MQL or above predicts Converted";
- the learned fit model (``lib/scoring/model.py``, trained by the ``lead_fit_model`` asset): accuracy and AUC;
- the reference: an off-the-shelf ``HistGradientBoostingClassifier(categorical_features="from_dtype",
  random_state=0)`` on the CSV as pandas reads it (every column but "Prospect ID", text columns as categories);

each with all columns and "at signup" (without the columns a salesperson fills in after contact).

Two figures. ``anchor_split`` is seed 7 (``train_test_split(rows in file order, test_size=0.3, stratify=Converted,
random_state=7)``): the one split on which the reference reproduces the issue's anchor exactly (0.9571 / 0.9882
with all columns), so the model and the rules are compared with the anchor on the anchor's own split; the stored
leads are put back in the file's row order (by "Lead Number") so that seed 7 selects the very same rows. The mean
over seeds 0..N-1 (``all_columns``, ``at_signup``) is the robustness figure: on other seeds the reference moves
between about 0.943 and 0.955, so one split alone says little. Nothing is tuned on any holdout. At signup the
reference on seed 7 without ``AFTER_CONTACT`` gives 0.829 / 0.892, not the issue's 0.823 / 0.878 (which no
variant of the excluded columns tried reproduces); both are reported.

Speed: rule scoring in memory (leads/s) and end to end in PostgreSQL (leads read, scored, stored with history and
stages).

Run alone: ``python -m benchmarks.scoring [--seeds 5] [--leads 100000]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "lead_scoring" / "Leads.csv"
OUT = Path(__file__).resolve().parent / "out"

LEADS_CSV_MAPPING: dict[str, str | None] = {
    "Email": "email",
    "Lead Source": "source",
    "Country": "country",
    "City": "city",
}
"""Leads.csv onto lead fields, as the import's own suggestion maps it: source, country and city are canonical
fields; every other column is an engagement or profile signal the import keeps as ``custom.<column>``. "Lead
Number" stays: it is assigned in signup order, so it carries when the lead arrived. The file has no way to reach
a lead, which an import requires, so each row gets a placeholder address (``Email``, an identity field: never a
model feature); "Prospect ID" is kept as a custom field and left out of the features as an identifier."""

AFTER_CONTACT = (
    "Tags",
    "Lead Quality",
    "Lead Profile",
    "Asymmetrique Activity Index",
    "Asymmetrique Profile Index",
    "Asymmetrique Activity Score",
    "Asymmetrique Profile Score",
    "Last Activity",
    "Last Notable Activity",
)
"""Columns filled in after sales contact; left out for the "at signup" measurement."""


def _split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The stratified 30% holdout of ``lead_fit_model`` (``model.train``) for the same seed."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(len(labels)), test_size=0.3, stratify=labels, random_state=seed)
    return np.asarray(train), np.asarray(test)


def import_labelled_file(path: Path, database_url: str, list_name: str) -> None:
    """Import Leads.csv into a list with the project's importer (with its placeholder addresses), as a user would."""
    from leads_pipeline.lib.importer import ImportOptions, run_import

    with path.open(newline="", encoding="utf-8") as source:
        rows = list(csv.reader(source))
    staged = OUT / "Leads_with_email.csv"
    number = rows[0].index("Lead Number")
    with staged.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow([*rows[0], "Email"])
        writer.writerows([*row, f"lead-{row[number]}@example.com"] for row in rows[1:])
    status = run_import(
        database_url,
        batch_id=f"bench-{list_name}",
        path=staged,
        list_name=list_name,
        options=ImportOptions(mapping_overrides=LEADS_CSV_MAPPING, workers=1, create_list=True),
        user="bench",
    )
    if status.get("status") != "completed":
        raise RuntimeError(f"importing {staged} failed: {status}")


ANCHOR_SEED = 7
"""The split on which the off-the-shelf reference gives exactly the issue's anchor (see the module docstring)."""

ISSUE_ANCHOR = {"all_columns": {"accuracy": 0.957, "auc": 0.988}, "at_signup": {"accuracy": 0.823, "auc": 0.878}}


def reference_hgb(path: Path, exclude: tuple[str, ...], seed: int) -> dict[str, float]:
    """The issue's anchor model on one split: scikit-learn's histogram gradient boosting, untuned, on the CSV as
    pandas reads it (every column but the "Prospect ID" identifier; text columns as categories, "Select" kept)."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import accuracy_score, roc_auc_score

    frame = pd.read_csv(path)
    labels = frame.pop("Converted").to_numpy()
    frame = frame.drop(columns=["Prospect ID", *exclude])
    for column in frame.select_dtypes(exclude="number").columns:
        frame[column] = frame[column].astype("category")
    train, test = _split(labels, seed)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    probabilities = model.fit(frame.iloc[train], labels[train]).predict_proba(frame.iloc[test])[:, 1]
    return {
        "accuracy": round(float(accuracy_score(labels[test], probabilities >= 0.5)), 4),
        "auc": round(float(roc_auc_score(labels[test], probabilities)), 4),
    }


def in_file_order(leads: list[Any], path: Path) -> tuple[list[Any], bool]:
    """The stored leads in the CSV's row order (matched by "Lead Number", unique per row), and whether they were
    already in it: seeded splits select the same rows as on the file only if the rows come in the same order."""
    with path.open(newline="", encoding="utf-8") as source:
        position = {row["Lead Number"]: i for i, row in enumerate(csv.DictReader(source))}
    ordered = sorted(leads, key=lambda lead: position[str(lead.value("custom.Lead Number"))])
    if len(ordered) != len(position):
        raise RuntimeError(f"{len(ordered)} stored leads for {len(position)} rows of {path}")
    return ordered, [lead.id for lead in ordered] == [lead.id for lead in leads]


def accuracy_benchmark(path: Path, seeds: int) -> dict[str, Any]:
    """Leads.csv imported into the database, the fit model trained on the stored leads by ``lead_fit_model`` (the
    asset's held-out metrics are the benchmark's), the rules tuned on the same stored leads' training part; on
    the anchor's split (seed 7) and as the mean over seeds 0..seeds-1."""
    from leads_pipeline.lib.runtime import prepare_environment
    from leads_pipeline.lib.scoring.model import infer_spec, labelled_leads
    from leads_pipeline.lib.scoring.selection import list_lead_ids
    from leads_pipeline.lib.store import scoring as store
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.lists import get_list
    from leads_pipeline.lib.store.migrations import apply_migrations

    os.environ.setdefault("LEADS_HOME", str(OUT / "home"))
    env = prepare_environment()
    apply_migrations(env.database_url)
    OUT.mkdir(parents=True, exist_ok=True)
    list_name = f"bench-leads-csv-{datetime.now(UTC):%Y%m%d%H%M%S}"
    import_labelled_file(path, env.database_url, list_name)
    with connect(env.database_url) as conn:
        stored = [s.lead for s in store.load_leads(conn, list_lead_ids(conn, get_list(conn, list_name, None).id))]
    leads, stored_in_file_order = in_file_order(stored, path)
    now = datetime.now(UTC)
    report: dict[str, Any] = {
        "file": str(path),
        "list": list_name,
        "holdout": 0.3,
        "seeds": seeds,
        "stored_order_is_file_order": stored_in_file_order,
        "anchor_split": {"seed": ANCHOR_SEED, "issue_anchor": ISSUE_ANCHOR},
    }
    for name, exclude in (("all_columns", ()), ("at_signup", AFTER_CONTACT)):
        data = labelled_leads(leads, "custom.Converted", source=list_name, exclude=exclude)
        spec = infer_spec(data.rows)
        report["rows"] = len(data.rows)
        anchor = _measure(data, spec, list_name, exclude, ANCHOR_SEED, now)
        reference = reference_hgb(path, exclude, ANCHOR_SEED)
        report["anchor_split"][name] = {
            "rules_mql_accuracy": anchor["rules"],
            "model_accuracy": anchor["accuracy"],
            "model_auc": anchor["auc"],
            "model_calibration_error": anchor["calibration_error"],
            "model_settings": anchor["settings"],
            "reference_hgb_accuracy": reference["accuracy"],
            "reference_hgb_auc": reference["auc"],
        }
        runs = [_measure(data, spec, list_name, exclude, seed, now) for seed in range(seeds)]
        references = [reference_hgb(path, exclude, seed) for seed in range(seeds)]
        (OUT / f"leads_csv_rules_{name}.json").write_text(json.dumps(runs[0]["config"], indent=1))
        report[name] = {
            "features": len(spec.columns),
            "rules_mql_accuracy": round(mean(r["rules"] for r in runs), 4),
            "rules_mql_accuracy_per_seed": [r["rules"] for r in runs],
            "rules_mql_threshold": [r["threshold"] for r in runs],
            "rules_method": [r["method"] for r in runs],
            "model_accuracy": round(mean(r["accuracy"] for r in runs), 4),
            "model_auc": round(mean(r["auc"] for r in runs), 4),
            "model_accuracy_per_seed": [r["accuracy"] for r in runs],
            "model_auc_per_seed": [r["auc"] for r in runs],
            "model_calibration_error": round(mean(r["calibration_error"] for r in runs), 4),
            "model_settings": [r["settings"] for r in runs],
            "reference_hgb_accuracy": round(mean(r["accuracy"] for r in references), 4),
            "reference_hgb_auc": round(mean(r["auc"] for r in references), 4),
        }
    return report


def _measure(
    data: Any, spec: Any, list_name: str, exclude: tuple[str, ...], seed: int, now: datetime
) -> dict[str, Any]:
    """One seed's split: the rules tuned on its training part and the fit model trained by ``lead_fit_model`` on
    the same split (the asset's held-out metrics), both measured on its holdout."""
    from leads_pipeline.launcher import materialize_fit_model
    from leads_pipeline.lib.scoring.rules import Rules
    from leads_pipeline.lib.scoring.tuning import choose_method, lead_input, tune_rules

    train, test = _split(data.labels, seed)
    train_rows = [data.rows[i] for i in train]
    method, _ = choose_method(train_rows, data.labels[train], spec)  # cross-validated on the 70% only
    config = tune_rules(train_rows, data.labels[train], spec, now=now, method=method)
    rules = Rules(config)
    scores = np.array([rules.score(lead_input(int(i), data.rows[i]), now).score for i in test])
    trained = materialize_fit_model(
        {
            "labelled_list": list_name,
            "label_column": "custom.Converted",
            "exclude_columns": list(exclude),
            "holdout": 0.3,
            "seed": seed,
        }
    )
    [materialization] = trained.asset_materializations_for_node("lead_fit_model")
    metrics = {key: value.value for key, value in materialization.metadata.items()}
    return {
        "rules": round(float(((scores >= config.thresholds.mql) == data.labels[test].astype(bool)).mean()), 4),
        "threshold": config.thresholds.mql,
        "method": str(method),
        "config": config.as_document(),
        "accuracy": float(metrics["accuracy"]),
        "auc": float(metrics["auc"]),
        "calibration_error": float(metrics["calibration_error"]),
        "settings": str(metrics["settings"]),
    }


def _synthetic_leads(count: int) -> list[dict[str, Any]]:
    """Lead rows with every field the default configuration reads, varied so every rule branch runs."""
    rng = np.random.default_rng(7)
    industries = ["Computer Software", "Retail", "Internet", "Hospital & Health Care", None]
    titles = ["VP Sales", "Engineer", "Head of Marketing", "Intern", None]
    sources = ["referral", "google", "cold list", "webinar", None]
    rows = []
    for i in range(count):
        rows.append(
            {
                "email": f"lead{i}@example.com",
                "phone": "+14155550123" if i % 3 else None,
                "first_name": "Ada",
                "last_name": "Lovelace" if i % 5 else None,
                "title": titles[i % len(titles)],
                "company": "Acme",
                "industry": industries[int(rng.integers(0, len(industries)))],
                "employee_count": int(rng.integers(1, 20000)),
                "annual_revenue": float(rng.integers(0, 10**8)),
                "country": ["US", "DE", "IN", None][i % 4],
                "source": sources[i % len(sources)],
                "seniority": ["vp", "entry", "director", None][i % 4],
                "department": ["sales", "engineering", None][i % 3],
                "custom": json.dumps({"Visits": int(rng.integers(0, 30)), "Email Opens": int(rng.integers(0, 5))}),
            }
        )
    return rows


def _sealed(row: dict[str, Any]) -> dict[str, Any]:
    """A synthetic row with its email and phone stored as every writer stores them (``crypto.lead_columns``:
    sealed, with the blind index and the email's domain)."""
    from leads_pipeline.lib.privacy.crypto import lead_columns

    sealed = dict(row)
    for name in ("email", "phone"):
        sealed.update(lead_columns(name, row[name]))
    return sealed


def speed_benchmark(count: int) -> dict[str, Any]:
    from leads_pipeline.lib.runtime import prepare_environment
    from leads_pipeline.lib.scoring.batch import score_leads
    from leads_pipeline.lib.scoring.config import load_config
    from leads_pipeline.lib.scoring.rules import LeadInput, Rules
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.lists import create_list
    from leads_pipeline.lib.store.migrations import apply_migrations

    config = load_config()
    rows = _synthetic_leads(count)
    now = datetime.now(UTC)
    leads = [LeadInput(i, r, json.loads(r["custom"]), ("HubSpot",), now) for i, r in enumerate(rows)]
    started = time.perf_counter()
    rules = Rules(config)
    for lead in leads:
        rules.score(lead, now)
    in_memory = time.perf_counter() - started

    os.environ.setdefault("LEADS_HOME", str(OUT / "home"))
    env = prepare_environment()
    apply_migrations(env.database_url)
    stored = [_sealed(r) for r in rows]
    columns = list(stored[0])
    with connect(env.database_url) as conn:
        lead_list = create_list(conn, f"bench-score-{now:%Y%m%d%H%M%S}", owner="bench")
        with conn.cursor().copy(f"COPY leads (list_id, {', '.join(columns)}) FROM STDIN") as copy:
            for r in stored:
                copy.write_row([lead_list.id, *r.values()])
        ids = [int(r["id"]) for r in conn.execute("SELECT id FROM leads WHERE list_id = %s", (lead_list.id,))]
        conn.commit()
        started = time.perf_counter()
        first = score_leads(conn, ids, config, now=now)
        conn.commit()
        first_seconds = time.perf_counter() - started
        started = time.perf_counter()
        score_leads(conn, ids, config, now=now)
        conn.commit()
        rescore_seconds = time.perf_counter() - started
    return {
        "leads": count,
        "rules_in_memory_leads_per_second": round(count / in_memory),
        "database_first_scoring_seconds": round(first_seconds, 2),
        "database_first_scoring_leads_per_second": round(count / first_seconds),
        "database_rescore_unchanged_seconds": round(rescore_seconds, 2),
        "database_rescore_leads_per_second": round(count / rescore_seconds),
        "distribution": first.as_json()["distribution"],
    }


def scoring_benchmark(seeds: int = 5, leads: int = 100_000) -> dict[str, Any]:
    return {"accuracy": accuracy_benchmark(SHARED, seeds), "speed": speed_benchmark(leads)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--leads", type=int, default=100_000)
    args = parser.parse_args()
    report = scoring_benchmark(args.seeds, args.leads)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "scoring.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
