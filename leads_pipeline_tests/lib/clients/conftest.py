"""The provider emulators a client test module talks to over the wire: its ``WORLD`` with its ``SETTINGS``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leads_pipeline.sandbox.http import HttpEmulator, build_http_app
from leads_pipeline_tests.support import served


@pytest.fixture(scope="module")
def emulators(request: pytest.FixtureRequest) -> Iterator[tuple[HttpEmulator, str]]:
    """The module's emulators and their base URL, served for the whole module (``app`` resets them per test)."""
    app = build_http_app(request.module.WORLD, request.module.SETTINGS)
    with served(app) as url:
        yield app, url


@pytest.fixture
def app(emulators: tuple[HttpEmulator, str]) -> HttpEmulator:
    """The module's emulators with their state and log reset, so that a test sees only its own requests."""
    emulators[0].reset()
    return emulators[0]
