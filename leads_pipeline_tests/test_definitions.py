"""The project's one Definitions object loads, with the import asset, its checks, the sensor and the resource."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest

from leads_pipeline.definitions import defs
from leads_pipeline.defs.executor import SPENDS_CREDITS_TAG, executor
from leads_pipeline.defs.imports.checks import DUPLICATES_CHECK, SCHEMA_CHECK
from leads_pipeline.defs.partitions import BATCHES
from leads_pipeline_tests.paths import REPO


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)


def test_asset_graph_has_the_import_asset_partitioned_by_batch_with_its_checks() -> None:
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey("batch_leads")
    assert key in graph.get_all_asset_keys()
    node = graph.get(key)
    assert isinstance(node.partitions_def, dg.DynamicPartitionsDefinition)
    assert node.partitions_def.name == BATCHES
    assert node.group_name == "imports"
    assert {check.name for check in graph.get_check_keys_for_assets({key})} == {SCHEMA_CHECK, DUPLICATES_CHECK}
    spec = defs.resolve_assets_def(key).specs_by_key[key]
    assert spec.description and "leads of one batch" in spec.description
    assert {"postgres", "csv"} <= set(spec.kinds)


def test_sensor_and_jobs_resolve() -> None:
    sensor = defs.resolve_sensor_def("inbox_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    for name in ("daily_rescore", "retention_daily", "crm_erasures_hourly"):  # run without anyone switching them on
        assert defs.resolve_schedule_def(name).default_status == dg.DefaultScheduleStatus.RUNNING, name
    job = defs.resolve_implicit_job_def_def_for_assets([dg.AssetKey("batch_leads")])
    assert job is not None  # one global job: the CRM assets are partitioned by connection, not by batch
    assert "database" in job.resource_defs


def test_every_asset_can_be_launched_from_the_ui_without_run_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backfill from the Dagster UI launches its runs with no run config, as does a click on Materialize: every
    run of a backfill of batch_leads failed on 'Missing required config entry "ops"' (path and list_name)."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://leads@/leads")  # resolved by the resources' EnvVar
    job = defs.resolve_implicit_global_asset_job_def()
    assert "batch_leads" in {node.name for node in job.nodes}
    dg.validate_run_config(job, {})


def test_every_config_field_of_every_asset_has_a_description_for_the_launchpad() -> None:
    """The launchpad shows a config field's description beside it and in its autocompletion: not one field of any
    asset had one (the few attribute docstrings written for them reached no one but the code's readers)."""
    job = defs.resolve_implicit_global_asset_job_def()
    ops = job.run_config_schema.config_type.fields["ops"].config_type.fields
    fields = {
        f"{op}.{name}": field.description
        for op, op_field in ops.items()
        for name, field in op_field.config_type.fields["config"].config_type.fields.items()
    }
    assert len(ops) == len(defs.assets or []) and len(fields) > 60
    assert [name for name, description in fields.items() if not description] == []


def test_every_config_field_of_every_resource_has_a_description_for_the_launchpad() -> None:
    """The launchpad's resources section showed 37 provider settings (retries, timeouts, actors, model) without
    a word; Dagster's own io_manager is not the project's."""
    job = defs.resolve_implicit_global_asset_job_def()
    resources = job.run_config_schema.config_type.fields["resources"].config_type.fields
    fields = {
        f"{resource}.{name}": field.description
        for resource, resource_field in resources.items()
        if resource != "io_manager"
        for name, field in resource_field.config_type.fields["config"].config_type.fields.items()
    }
    assert {"database.database_url", "twilio.ca_bundle", "gemini.model"} <= fields.keys()
    assert [name for name, description in fields.items() if not description] == []


def test_every_job_schedule_sensor_asset_and_check_says_what_it_does_in_the_ui() -> None:
    """The UI lists jobs, schedules and sensors with their descriptions: four jobs (crm_sync_job, rescore_leads,
    retention_job, crm_erasures_job) and two schedules (retention_daily, crm_erasures_hourly) showed none."""
    graph = defs.resolve_asset_graph()
    described = {
        **{f"job {job.name}": job.description for job in defs.resolve_all_job_defs() if job.name != "__ASSET_JOB"},
        **{f"schedule {schedule.name}": schedule.description for schedule in defs.schedules or []},
        **{f"sensor {sensor.name}": sensor.description for sensor in defs.sensors or []},
        **{f"asset {key.to_user_string()}": graph.get(key).description for key in graph.get_all_asset_keys()},
        **{f"check {key.name}": graph.get_check_spec(key).description for key in graph.asset_check_keys},
    }
    assert {"job retention_job", "schedule crm_erasures_hourly", "check crm_push_is_valid"} <= described.keys()
    assert [name for name, description in described.items() if not description] == []


def test_launched_runs_start_the_stages_that_spend_credits_one_at_a_time() -> None:
    """A run the daemon or the UI launches starts independent steps side by side; the four paid stages each read
    the job's ledger when they start, so side by side a lead could cost max_credits_per_lead once per stage.
    Every job holding one of them runs on the executor that limits the tagged stages to one at a time, and exactly
    they are tagged (the drop folder's ``import_leads`` runs its one step in the run's process)."""
    paid = {"email_contacts", "phone_contacts", "linkedin_profiles", "company_profiles"}
    asset_job = defs.resolve_implicit_global_asset_job_def()
    assert {n.name for n in asset_job.nodes if SPENDS_CREDITS_TAG in n.definition.tags} == paid
    spending = [job for job in defs.resolve_all_job_defs() if paid & {n.name for n in job.nodes}]
    assert asset_job in spending and all(job.executor_def is executor for job in spending)
    config = executor.config_schema.resolve_config({}).value  # type: ignore[attr-defined]
    assert config["config"]["tag_concurrency_limits"] == [{"key": SPENDS_CREDITS_TAG, "limit": 1}]


def test_definitions_import_without_environment() -> None:
    """Nothing is read from the environment at import time: loading works with no DATABASE_URL at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DAGSTER_", "LEADS_"))}
    code = (
        "import dagster as dg\n"
        "from leads_pipeline.definitions import defs\n"
        "dg.Definitions.validate_loadable(defs)\n"
        "print(sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    names = set(done.stdout.strip().strip("[]").split(", "))
    assert {
        "'batch_leads'",
        "'duplicate_clusters'",
        "'email_contacts'",
        "'company_profiles'",
        "'lead_scores'",
        "'crm_sync'",
    } <= names
