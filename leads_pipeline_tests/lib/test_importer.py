"""Planning an import (the import itself runs against PostgreSQL in store/test_imports.py and the CLI tests)."""

from __future__ import annotations

from leads_pipeline.lib.importer import ImportOptions, plan_import
from leads_pipeline_tests.paths import DEMO_FILE


def test_an_import_plans_the_same_mapping_as_a_dry_run_without_preparing_a_preview() -> None:
    dry_run = plan_import(DEMO_FILE, ImportOptions())
    importing = plan_import(DEMO_FILE, ImportOptions(), preview=False)

    assert importing.mapping == dry_run.mapping
    assert importing.layout == dry_run.layout
    assert {p["row"] for p in dry_run.sample_problems} == {33, 35, 36}
    assert importing.sample_problems == []
