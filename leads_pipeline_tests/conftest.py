"""Shared fixtures: the embedded PostgreSQL (one per test session) and the provider sandbox; the settings of the
property-based tests (hypothesis)."""

import functools

import typer.testing
from hypothesis import HealthCheck, settings

pytest_plugins = [
    "leads_pipeline_tests.fixtures.postgres",
    "leads_pipeline_tests.fixtures.sandbox",
    "leads_pipeline_tests.fixtures.enrichment",
]

settings.register_profile(
    "leads",
    derandomize=True,  # the same examples on every run and on both xdist workers: CI never flakes on a new one
    database=None,  # no .hypothesis directory of found examples written into the checkout
    max_examples=50,  # each property's share of the suite's time: a few seconds at most
    deadline=5000,  # ms per example: generous, a CI machine's cores are shared with the other worker
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("leads")

# typer's CliRunner builds the click command tree of the app anew on every invoke (~0.2 s of CPU for `leads`'s
# eighty commands: every parameter's type hints evaluated again), a fifth of the time of the CLI tests. The tree
# is the same every time (the app is defined once, at import), so it is built once per session.
typer.testing._get_command = functools.cache(typer.testing._get_command)
