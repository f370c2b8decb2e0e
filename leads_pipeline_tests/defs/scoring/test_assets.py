"""Materializing ``lead_scores`` for a batch and ``lead_fit_model`` on a labelled sample, through Dagster."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.defs.scoring import assets as scoring_assets
from leads_pipeline.defs.scoring.assets import lead_fit_model, lead_scores
from leads_pipeline.defs.scoring.checks import SCORES_CHECK
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.importer import INTERRUPTED
from leads_pipeline.lib.scoring.selection import create_selection
from leads_pipeline.lib.store import access
from leads_pipeline.lib.store.db import connect
from leads_pipeline_tests.lib.scoring.support import ICP, add_leads
from leads_pipeline_tests.paths import SHARED_DATA
from leads_pipeline_tests.support import materialize_batch, step_failure

pytestmark = pytest.mark.integration
LEADS_CSV = SHARED_DATA / "lead_scoring" / "Leads.csv"


def materialize(
    database_url: str,
    instance: dg.DagsterInstance,
    asset: dg.AssetsDefinition,
    config: dict[str, Any],
    partition: str | None = None,
    tags: dict[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    resources = {"database": LeadsDatabase(database_url=database_url)}
    return materialize_batch(
        [asset], partition, instance, resources, {asset.key.path[-1]: config}, tags=tags, raise_on_error=False
    )


def metadata(result: dg.ExecuteInProcessResult, node: str) -> dict[str, Any]:
    [materialization] = result.asset_materializations_for_node(node)
    return {key: value.value for key, value in materialization.metadata.items()}


def _selection(database_url: str) -> tuple[str, list[int]]:
    with connect(database_url) as conn:
        _list_id, ids = add_leads(
            conn,
            [
                {"industry": "Computer Software", "country": "US", "custom": {"Visits": 12}},
                {"industry": "Retail", "country": "US", "custom": {"Visits": 2}},
                {"industry": "Retail"},
            ],
        )
        return create_selection(conn, Selection(ids=tuple(ids)), "tester", label="scoring", description="test"), ids


def test_lead_scores_reports_the_prd_shape_and_passes_its_check(database_url: str) -> None:
    batch, _ids = _selection(database_url)
    with dg.instance_for_test() as instance:
        result = materialize(database_url, instance, lead_scores, ICP, batch)
        assert result.success
        meta = metadata(result, "lead_scores")
        assert meta["scored"] == 3
        assert meta["distribution"] == {"hot": 1, "warm": 1, "cold": 1}
        assert meta["averageScore"] == 50.0
        assert "| 90-100 | 1 |" in meta["histogram"]
        [check] = result.get_asset_check_evaluations()
        assert check.check_name == SCORES_CHECK and check.passed
        assert check.metadata["leads_checked"].value == 3

        rerun = materialize(database_url, instance, lead_scores, ICP, batch)
        assert metadata(rerun, "lead_scores")["history_appended"] == 0


def test_a_partition_no_import_wrote_is_refused_in_words_a_user_can_act_on(database_url: str) -> None:
    """The partition of a dropped file whose import was refused before it wrote anything: scoring it said "no batch
    ...; create it with `leads score --list NAME` or an import", as if the user had mistyped it, where enriching it
    says what the partition is (one line for the three stages)."""
    result = materialize(database_url, dg.DagsterInstance.ephemeral(), lead_scores, {}, "import-fair-0e6ccb-empty")
    assert not result.success
    assert step_failure(result) == (
        "batch 'import-fair-0e6ccb-empty' has no leads to score: it is no import's (one refused before it wrote"
        " anything, as its batch_leads run says, leaves none) and no selection's; import a file, or score a list"
        " with `leads score --list NAME`"
    )


def test_bad_configuration_fails_the_run_with_the_key(database_url: str) -> None:
    batch, _ = _selection(database_url)
    with dg.instance_for_test() as instance:
        result = materialize(database_url, instance, lead_scores, {"thresholds": {"mql": 90, "sql": 10}}, batch)
        assert not result.success
        failure = step_failure(result)
        assert "thresholds: mql (90) must not be above sql (10)" in failure


def test_an_interrupted_scoring_is_not_retried_and_ends_canceled(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C on `leads score` (the step runs in the command's process) was retried by lead_scores' RetryPolicy,
    which Dagster applies to interrupts too: the scoring went on and the command said it completed. The interrupt
    now ends the run canceled with one line, not retried (its one transaction leaves nothing written)."""
    batch, _ = _selection(database_url)
    calls: list[int] = []

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise dg.DagsterExecutionInterruptedError  # what SIGINT raises in a step

    monkeypatch.setattr(scoring_assets, "score_leads", interrupted)
    with dg.instance_for_test() as instance:
        result = materialize(database_url, instance, lead_scores, ICP, batch)
        assert not result.success
        assert calls == [1]
        assert [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"] == []
        failure = step_failure(result)
        assert failure == INTERRUPTED
        assert result.dagster_run.status == dg.DagsterRunStatus.CANCELED


def test_config_file_and_overrides(database_url: str, tmp_path: Path) -> None:
    batch, _ids = _selection(database_url)
    config_file = tmp_path / "scoring.yaml"
    config_file.write_text(
        "weights: {dataCompleteness: 0, companyFit: 1, engagement: 0, recency: 0}\n"
        # the file is laid over the shipped ICP: empty lists turn its other criteria off
        "companyFit: {industries: [Retail], employees: [], revenue: [], countries: [], titles: [], seniorities: [],"
        " departments: [], technologies: []}\n"
    )
    with dg.instance_for_test() as instance:
        result = materialize(
            database_url,
            instance,
            lead_scores,
            {"config_file": str(config_file), "thresholds": {"mql": 10, "sql": 90}},
            batch,
        )
        assert result.success
        assert metadata(result, "lead_scores")["stages"] == {"sql": 2, "new": 1}  # Retail = 100 points


def _sample(path: Path, rows: int) -> Path:
    """The first ``rows`` leads of Leads.csv (a small labelled sample)."""
    with LEADS_CSV.open(newline="", encoding="utf-8") as source, path.open("w", newline="", encoding="utf-8") as out:
        reader = csv.reader(source)
        writer = csv.writer(out)
        for i, row in enumerate(reader):
            if i > rows:
                break
            writer.writerow(row)
    return path


def test_fit_model_trains_on_a_labelled_sample_and_scores_with_it(database_url: str, tmp_path: Path) -> None:
    sample = _sample(tmp_path / "sample.csv", 400)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("Prospect ID: null\nLead Number: null\nTotal Time Spent on Website: custom.Time On Site\n")
    with dg.instance_for_test() as instance:
        result = materialize(
            database_url, instance, lead_fit_model, {"labelled_file": str(sample), "mapping_file": str(mapping)}
        )
        assert result.success, result.get_step_failure_events()
        meta = metadata(result, "lead_fit_model")
        assert meta["version"].startswith("fit-")
        assert 0.6 < meta["accuracy"] <= 1 and 0.6 < meta["auc"] <= 1
        assert 0 <= meta["calibration_error"] < 0.3 and "observed rate" in meta["calibration"]
        assert "custom.Time On Site" in meta["features"]["numeric"]
        assert meta["holdout_rows"] == 120 and meta["holdout_seed"] == 0  # the split the metrics come from
        assert meta["settings"] == "depth-6 + catboost-500"  # the models averaged

        with connect(database_url) as conn:
            _list_id, ids = add_leads(
                conn,
                [
                    {"custom": {"Time On Site": "1500", "Lead Origin": "Lead Add Form", "Tags": "Closed by Horizzon"}},
                    {"custom": {"Time On Site": "0", "Lead Origin": "API", "Tags": "Ringing"}},
                ],
            )
            batch = create_selection(conn, Selection(ids=tuple(ids)), "tester", label="fit", description="test")
        scored = materialize(database_url, instance, lead_scores, {"model": {"mode": "replace"}}, batch)
        assert scored.success
        assert metadata(scored, "lead_scores")["model_version"] == meta["version"]
        with connect(database_url) as conn:
            scores = {r["lead_id"]: r for r in conn.execute("SELECT * FROM lead_scores")}
            history = conn.execute("SELECT DISTINCT model_version FROM score_history").fetchall()
        assert scores[ids[0]]["score"] > scores[ids[1]]["score"]
        assert set(scores[ids[0]]["components"]) == {"fitModel"}
        assert history == [{"model_version": meta["version"]}]


def test_fit_model_reads_a_labelled_list_only_for_its_members(database_url: str) -> None:
    """labelled_list was read for anyone launching the asset; a user who is no member of the list is now told
    what the name of a list that does not exist is told, and a viewer may train on it."""
    rows = [
        {"industry": ["Retail", "Computer Software"][i % 2], "custom": {"Visits": i % 10, "Won": ["no", "yes"][i % 2]}}
        for i in range(120)
    ]
    with connect(database_url) as conn:
        list_id, _ids = add_leads(conn, rows, list_name="history")
    with dg.instance_for_test() as instance:
        descriptions = []
        for name in ("history", "no such list"):
            config = {"labelled_list": name, "label_column": "custom.Won", "user": "mallory"}
            result = materialize(database_url, instance, lead_fit_model, config)
            assert not result.success
            failure = step_failure(result)
            descriptions.append(failure.replace(repr(name), "NAME"))
        assert descriptions[0] == descriptions[1] and "not found or not shared with you" in descriptions[0]
        with connect(database_url) as conn:
            access.grant(conn, list_id, "mallory", "viewer", granted_by="tester")
        config = {"labelled_list": "history", "label_column": "custom.Won", "user": "mallory"}
        trained = materialize(database_url, instance, lead_fit_model, config)
        assert trained.success, trained.get_step_failure_events()


def test_fit_model_refuses_a_bad_label(database_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("Lead,Converted\na,1\nb,maybe\n")
    with dg.instance_for_test() as instance:
        result = materialize(database_url, instance, lead_fit_model, {"labelled_file": str(bad)})
        assert not result.success
        failure = step_failure(result)
        assert "line 3, column 'Converted'" in failure


def test_fit_model_refuses_a_split_it_cannot_make_in_one_line(database_url: str, tmp_path: Path) -> None:
    """A ``holdout`` outside 0-1 in the launchpad's run config, or one leaving a part too small, and a file with
    one converted lead failed the run with scikit-learn's InvalidParameterError or ValueError and its traceback:
    each is now the step's one line naming the setting or the file."""
    sample = _sample(tmp_path / "sample.csv", 100)
    one_converted = tmp_path / "one.csv"
    one_converted.write_text("Visits,Converted\n" + "".join(f"{i},{int(i == 0)}\n" for i in range(60)))
    cases = [
        ({"labelled_file": str(sample), "holdout": 1.5}, "holdout: expected a fraction between 0 and 1"),
        ({"labelled_file": str(sample), "holdout": 0.0}, "holdout: expected a fraction between 0 and 1"),
        ({"labelled_file": str(sample), "holdout": 0.01}, "holdout: 0.01 of 100 labelled rows holds out 1 and"),
        ({"labelled_file": str(sample), "holdout": 0.99}, "holds out 99 and trains on 1;"),
        ({"labelled_file": str(one_converted)}, "only 1 labelled row converted; training needs at least 2 of each"),
    ]
    with dg.instance_for_test() as instance:
        for config, expected in cases:
            result = materialize(database_url, instance, lead_fit_model, config)
            assert not result.success
            assert expected in step_failure(result), config


def test_scoring_with_the_model_before_training_says_how_to_train(database_url: str) -> None:
    batch, _ = _selection(database_url)
    with dg.instance_for_test() as instance:
        result = materialize(database_url, instance, lead_scores, {"model": {"mode": "component"}}, batch)
        assert not result.success
        failure = step_failure(result)
        assert "materializing the lead_fit_model asset" in failure


def test_fit_model_trains_on_outcomes_stored_with_leads(database_url: str) -> None:
    rows = [
        {
            "industry": ["Retail", "Computer Software"][i % 2],
            "custom": {"Visits": i % 10, "Won": "yes" if i % 2 else "no"},
        }
        for i in range(120)
    ]
    rows.append({"industry": "Retail", "custom": {"Visits": 3}})  # no outcome yet: left out
    with connect(database_url) as conn:
        add_leads(conn, rows, list_name="history")
    with dg.instance_for_test() as instance:
        result = materialize(
            database_url, instance, lead_fit_model, {"labelled_list": "history", "label_column": "custom.Won"}
        )
        assert result.success, result.get_step_failure_events()
        meta = metadata(result, "lead_fit_model")
        assert meta["training_rows"] == 120 and meta["accuracy"] == 1.0
        assert "industry" in meta["features"]["categorical"]
        both = materialize(
            database_url, instance, lead_fit_model, {"labelled_list": "history", "labelled_file": "x.csv"}
        )
        assert not both.success
