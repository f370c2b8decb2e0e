"""Shared fixtures: the embedded PostgreSQL (one per test session) and the provider sandbox."""

pytest_plugins = [
    "leads_pipeline_tests.fixtures.postgres",
    "leads_pipeline_tests.fixtures.sandbox",
    "leads_pipeline_tests.fixtures.enrichment",
]
