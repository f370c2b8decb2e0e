"""Scheduled backups: the ``database_backup`` asset writes a new backup and keeps the newest ones; its daily schedule
is off until switched on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from leads_pipeline.definitions import defs
from leads_pipeline.defs.executor import BACKGROUND_PRIORITY
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.defs.security.assets import database_backup
from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.store.backup import read_archive, rotating_backup
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list_if_missing


def test_the_daily_backup_is_off_until_switched_on() -> None:
    """Each backup is a file about a third of the database: written daily without anyone asking, a week of them
    takes room nobody planned for."""
    schedule = defs.resolve_schedule_def("database_backup_daily")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.job_name == "database_backup_job" and schedule.tags == BACKGROUND_PRIORITY
    job = defs.resolve_job_def("database_backup_job")
    assert {node.name for node in job.graph.node_defs} == {"database_backup"}


@pytest.mark.integration
def test_a_materialization_writes_a_backup_and_reports_it(database_url: str, tmp_path: Path) -> None:
    with connect(database_url) as conn:
        create_list_if_missing(conn, "fair", owner="tester")
    result = dg.materialize(
        [database_backup],
        resources={"database": LeadsDatabase(database_url=database_url)},
        run_config={"ops": {"database_backup": {"config": {"folder": str(tmp_path), "keep": 3}}}},
    )
    [written] = list(tmp_path.iterdir())
    assert read_archive(written).migration > 0
    metadata = result.asset_materializations_for_node("database_backup")[0].metadata
    assert metadata["path"] == dg.MetadataValue.path(str(written)) and metadata["lists"] == dg.MetadataValue.int(1)
    assert metadata["bytes"] == dg.MetadataValue.int(written.stat().st_size)
    with connect(database_url) as conn:
        [entry] = conn.execute("SELECT actor, action, object FROM audit_log WHERE action = 'db.backup'").fetchall()
    assert entry == {"actor": "backup-schedule", "action": "db.backup", "object": f"file:{written.name}"}


@pytest.mark.integration
def test_the_newest_backups_are_kept_and_nothing_else_in_the_folder_is_touched(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("kept", encoding="utf-8")
    (tmp_path / "leads-manual.dump").write_text("kept too: not a name the schedule gives", encoding="utf-8")
    first = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    names = []
    for day in range(4):
        made, removed = rotating_backup(database_url, tmp_path, 2, first + timedelta(days=day))
        names.append(made.path.name)
        assert [path.name for path in removed] == names[: max(0, day - 1)][-1:]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        ["notes.txt", "leads-manual.dump", "leads-20261203T020000Z.dump", "leads-20261204T020000Z.dump"]
    )
    with pytest.raises(ConfigurationError, match="keep must be a number >= 1; got 0"):
        rotating_backup(database_url, tmp_path, 0, first + timedelta(days=9))
    assert len(list(tmp_path.iterdir())) == 4
