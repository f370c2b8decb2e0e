"""An erasure leaves out the values of filters on a person's details in Dagster's storage
(``filters.recorded_values_pattern``, applied by PostgreSQL as ``scrub_dagster_storage`` does), with generated
names: whatever characters a value holds, as Dagster's JSON writes them, none of it stays."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from dagster_shared.serdes import serialize_value
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leads_pipeline.lib.filters import HIDDEN, PERSONAL, recorded_values_pattern

FIELDS = st.sampled_from([*sorted(PERSONAL), "custom.Owner", 'custom."Lead Owner"'])
OPS = st.sampled_from(["=", "!=", "~", "!~", "in", "not in"])
VALUES = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1, max_size=16)


@pytest.fixture
def server(postgres_server: str) -> Iterator[psycopg.Connection[tuple[str]]]:
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        yield conn


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # one connection, nothing written
@given(FIELDS, OPS, VALUES.map(str.strip).filter(bool))
@example("last_name", "=", "Müller")  # Dagster writes "M\u00fcller": "\u00fcller" was left
@example("last_name", "=", '"Garcia"')  # a quoted value, written \"Garcia\", was left whole
def test_no_part_of_a_filtered_value_stays_in_a_run_config(
    server: psycopg.Connection[tuple[str]], field: str, op: str, value: str
) -> None:
    config = serialize_value({"where": [f"{field} {op} {value}", "title = Engineer"]})
    row = server.execute("SELECT regexp_replace(%s, %s, %s, 'gi')", (config, recorded_values_pattern(), rf"\1{HIDDEN}"))
    scrubbed = json.loads(row.fetchone()[0])  # type: ignore[index]
    assert scrubbed["where"] == [f"{field} {op} {HIDDEN}", "title = Engineer"]
