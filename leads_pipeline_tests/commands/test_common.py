"""``commands/common.py``: the one JSON encoding of every output."""

from __future__ import annotations

import json
import os
import pwd
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import dagster as dg
import pytest
from typer.testing import CliRunner

from leads_pipeline.cli import app
from leads_pipeline.commands.common import json_text, print_json
from leads_pipeline.defs.imports.sensors import file_owner
from leads_pipeline_tests.support import api_shape_problems, cli_environment


def test_json_text_writes_decimals_as_numbers_and_dates_as_text() -> None:
    document = {
        "revenue": Decimal("2000000.50"),
        "whole": Decimal("3000000.00"),
        "small": Decimal("0.0025"),
        "count": 1200,
        "day": date(2026, 11, 3),
        "at": datetime(2026, 11, 3, 9, 30, tzinfo=UTC),
        "nan": Decimal("NaN"),
    }
    assert json.loads(json_text(document)) == {
        "revenue": 2000000.5,
        "whole": 3000000,
        "small": 0.0025,
        "count": 1200,
        "day": "2026-11-03",
        "at": "2026-11-03T09:30:00+00:00",
        "nan": "NaN",
    }
    assert '"whole": 3000000,' in json_text(document), "a whole amount is an integer"


def test_json_text_writes_whole_floats_as_integers_and_times_in_iso_form() -> None:
    """Credits are summed as floats (``creditsUsed`` came out as ``19.0``, against README's "a whole amount an
    integer"), and times that reached the encoder as datetimes were written ``2026-11-30 01:33:33+00:00``
    beside the ``...T01:33:33+00:00`` of the outputs formatting their own (``leads sync --json``'s
    ``startedAt`` against ``leads imports show --json``'s ``completedAt``)."""
    document = {
        "creditsUsed": 19.0,
        "rows": [{"credits": 2.0, "share": 0.5}],
        "pair": (3.0, 1.25),
        "startedAt": datetime(2026, 11, 30, 1, 33, 33, 119019, tzinfo=UTC),
        "day": date(2026, 11, 3),
        "flag": True,
    }
    text = json_text(document)
    assert '"creditsUsed": 19,' in text
    assert '"credits": 2,' in text
    assert json.loads(text) == {
        "creditsUsed": 19,
        "rows": [{"credits": 2, "share": 0.5}],
        "pair": [3, 1.25],
        "startedAt": "2026-11-30T01:33:33.119019+00:00",
        "day": "2026-11-03",
        "flag": True,
    }
    assert datetime.fromisoformat(json.loads(text)["startedAt"]) == document["startedAt"]


def test_print_json_writes_camel_case_keys_and_ids_as_strings(capsys: pytest.CaptureFixture[str]) -> None:
    """Several --json outputs wrote snake_case keys (retention apply: dry_run, leads_deleted; merges list:
    survivor_id; verify: provider_cost) and numeric ids (show: leadId; dedupe: leadIds) where the PRD's shapes
    have camelCase and string ids; lead records keep their canonical field names, stored rows stay as stored."""
    print_json(
        {
            "dry_run": True,
            "leads_deleted": 3,
            "leads_deleted_by_list": {"q3_leads": 3},
            "merges": [
                {"id": 7, "survivor_id": 4, "merged_ids": [5, 6], "filled": {"phone_ext": 5}, "created_at": None}
            ],
            "leadIds": [1, 2],
            "leads": [{"id": 1, "list_id": 2, "first_name": "Ann", "custom": {"lead_source": "x"}}],
            "data": {"leads": [{"id": 1, "list_id": 2}]},
            "flag": False,
        }
    )
    document = json.loads(capsys.readouterr().out)
    assert document == {
        "dryRun": True,
        "leadsDeleted": 3,
        "leadsDeletedByList": {"q3_leads": 3},
        "merges": [
            {"id": "7", "survivorId": "4", "mergedIds": ["5", "6"], "filled": {"phone_ext": "5"}, "createdAt": None}
        ],
        "leadIds": ["1", "2"],
        "leads": [{"id": "1", "list_id": "2", "first_name": "Ann", "custom": {"lead_source": "x"}}],
        "data": {"leads": [{"id": 1, "list_id": 2}]},
        "flag": False,
    }
    assert not api_shape_problems(document)
    assert api_shape_problems({"lead_id": 1, "leads": [{"id": 2}]}) == [
        "$.lead_id: snake_case key",
        "$.lead_id: id 1 is not a string",
        "$.leads[].id: id 2 is not a string",
    ]


def test_a_user_without_a_name_acts_as_uid_n_as_the_drop_folder_names_them(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container run with ``-u 1000`` and no USER: the uid has no passwd entry, and every command failed with
    a traceback of getpass (KeyError "uid not found"). The user is ``uid:1000``, the name the drop folder gives
    the owner of a file of that uid, so the lists one creates are the lists the other imports into."""
    cli_environment(monkeypatch, database_url, tmp_path / "home", user=None)
    for name in ("LEADS_USER", "LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid: int) -> NoReturn:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    monkeypatch.setattr(os, "getuid", lambda: 1000)
    result = CliRunner().invoke(app, ["lists", "create", "fair", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["owner"] == "uid:1000" == file_owner(1000)


def test_a_command_checks_migrations_and_keys_on_one_connection(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command applied the migrations on one connection and checked the keys on another (~8 ms each), as
    did each run (the database resource, also set up by the CLI's in-process imports and scorings)."""
    import psycopg

    from leads_pipeline.commands.common import environment
    from leads_pipeline.defs.resources import LeadsDatabase

    cli_environment(monkeypatch, database_url, tmp_path / "home")
    environment()  # anything left to apply or record, first
    opened: list[tuple[Any, ...]] = []
    real_connect = psycopg.connect

    def counted(*args: Any, **kwargs: Any) -> Any:
        opened.append(args)
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(psycopg, "connect", counted)
    environment()
    assert len(opened) == 1
    LeadsDatabase(database_url=database_url).setup_for_execution(dg.build_init_resource_context())
    assert len(opened) == 2
