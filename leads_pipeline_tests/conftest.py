"""Shared fixtures: the embedded PostgreSQL (one per test session) and the provider sandbox; the settings of the
property-based tests (hypothesis)."""

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
