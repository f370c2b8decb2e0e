"""The wheel a user installs holds what the package reads at run time, and nothing of the checkout beside it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from leads_pipeline.lib import runtime
from leads_pipeline_tests.paths import REPO


@pytest.mark.integration  # builds the wheel as pip does (the build backend from PyPI)
def test_the_wheel_carries_the_migrations_and_the_dagster_files_and_no_tests(tmp_path: Path) -> None:
    """Installed from its wheel, ``leads db start`` failed with 'site-packages/sql: migrations folder not found'
    and Dagster, finding no dagster.yaml, kept its runs in SQLite files in site-packages; the wheel also installed
    a top-level package leads_pipeline_tests."""
    source = tmp_path / "source"  # without the checkout's build/, whose leftovers setuptools would put in the wheel
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "out"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path), str(source)],
        check=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("leads_pipeline-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        packaged = runtime.PACKAGED_PROJECT.relative_to(runtime.PROJECT_ROOT / "leads_pipeline").as_posix()
        prefix = f"leads_pipeline/{packaged}/"
        shipped = {name.removeprefix(prefix): archive.read(name) for name in names if name.startswith(prefix)}
    expected = ["dagster.yaml", "workspace.yaml", *(f"sql/{path.name}" for path in (REPO / "sql").glob("*.sql"))]
    assert sorted(shipped) == sorted(expected)
    assert all(shipped[name] == (REPO / name).read_bytes() for name in expected)
    assert {name.split("/")[0] for name in names if not name.startswith("leads_pipeline-")} == {"leads_pipeline"}
