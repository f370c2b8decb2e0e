"""Puts the checkout's top-level files that the package reads at run time into the wheel.

``sql/`` (the migrations), ``dagster.yaml`` and ``workspace.yaml`` stay at the top of the repository (DESIGN.md's
layout, one copy in git); a wheel has no checkout around it, so the build copies them into
``leads_pipeline/project/``, where ``leads_pipeline.lib.runtime.project_files`` finds them. MANIFEST.in puts them
in the sdist, from which pip builds that wheel. Everything else is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROJECT_FILES = ("dagster.yaml", "workspace.yaml", "sql/*.sql")
PACKAGED_FOLDER = Path("leads_pipeline", "project")


class BuildWithProjectFiles(build_py):
    """build_py, then the project files into the package; an editable install reads them from the checkout."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for pattern in PROJECT_FILES:
            for source in sorted(Path().glob(pattern)):
                target = Path(self.build_lib, PACKAGED_FOLDER, source)
                self.mkpath(str(target.parent))
                self.copy_file(str(source), str(target))


setup(cmdclass={"build_py": BuildWithProjectFiles})
