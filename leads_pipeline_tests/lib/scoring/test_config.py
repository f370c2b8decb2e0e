"""The scoring configuration: defaults, the shipped file, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.scoring.config import Range, load_config, parse_config


def test_shipped_default_file_is_valid_and_versioned() -> None:
    config = load_config()
    assert config.thresholds.mql == 50
    assert config.company_fit.industries
    assert config.version.startswith("cfg-")
    assert load_config().version == config.version


def test_partial_document_keeps_defaults_and_changes_version() -> None:
    base = parse_config({})
    changed = parse_config({"thresholds": {"mql": 40, "sql": 70}})
    assert changed.weights == base.weights
    assert changed.thresholds.mql == 40
    assert changed.version != base.version


def test_prd_body_shape_is_accepted() -> None:
    config = parse_config(
        {
            "weights": {"dataCompleteness": 10, "companyFit": 40, "engagement": 40, "recency": 10},
            "thresholds": {"mql": 55, "sql": 80},
        }
    )
    assert config.component_weights() == {"dataCompleteness": 10, "companyFit": 40, "engagement": 40, "recency": 10}
    assert config.band_floors() == (80, 55)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"weights": {"engagment": 10}}, "weights.engagment: unknown key"),
        ({"weights": {"recency": -1}}, "weights.recency: expected a number of at least 0, got -1"),
        ({"thresholds": {"mql": 80, "sql": 60}}, "thresholds: mql (80) must not be above sql (60)"),
        ({"thresholds": {"sql": 120}}, "thresholds.sql: expected a number of at most 100, got 120"),
        (
            {"weights": {"dataCompleteness": 0, "companyFit": 0, "engagement": 0, "recency": 0}},
            "weights: at least one component weight must be above 0",
        ),
        ({"companyFit": {"countries": ["USA"]}}, "companyFit: countries: 'USA' is not an ISO 3166 alpha-2 code"),
        ({"companyFit": {"weights": {"size": 1}}}, "companyFit: weights.size: unknown criterion"),
        ({"companyFit": {"employees": [{"min": 500, "max": 50}]}}, "companyFit.employees[0]: min (500) must not"),
        (
            {"engagement": {"signals": [{"field": "custom.Visits"}]}},
            "engagement.signals[0]: give exactly one of steps (numeric field) or values",
        ),
        (
            {"engagement": {"signals": [{"field": "vists", "values": {"a": 1}}]}},
            "engagement.signals[0]: unknown lead field 'vists'",
        ),
        (  # pydantic's words alone did not say what the file held
            {"engagement": {"signals": [{"field": "custom.V", "steps": [{"min": "x", "points": 1}]}]}},
            "steps[0].min: expected a number, got 'x'",
        ),
        # pydantic's words named a class of the code ("a valid dictionary or instance of Thresholds")
        ({"thresholds": 5}, "my.yaml: thresholds: expected a mapping of mql, sql, got 5"),
        ({"companyFit": {"countries": "DE"}}, "companyFit.countries: expected a list, got 'DE'"),
        ({"completeness": {"fields": {"email_adress": 1}}}, "completeness: unknown lead field 'email_adress'"),
        ({"completeness": {"fields": {"custom.": 1}}}, "completeness: unknown lead field 'custom.'"),
        ({"completeness": {"fields": {"email": 2, "phone": -1}}}, "completeness: fields.phone: weight must be 0 or"),
        (  # the numbers as written: :g read -1e-05, 2.5e+06 and 1.5e+06
            {"completeness": {"fields": {"email": 2, "phone": -0.00001}}},
            "completeness: fields.phone: weight must be 0 or more; got -0.00001",
        ),
        (
            {"companyFit": {"employees": [{"min": 2500000, "max": 1500000}]}},
            "companyFit.employees[0]: min (2500000) must not be above max (1500000)",
        ),
        ({"completeness": {"fields": {"email": 0, "phone": 0}}}, "completeness: fields: at least one weight must be"),
        ({"model": {"mode": "sometimes"}}, "model.mode: expected 'off', 'component' or 'replace', got 'sometimes'"),
        ({"recency": {"dataHalfLifeDays": 0}}, "recency.dataHalfLifeDays: expected a number above 0, got 0"),
        ({"bands": {"hot": 40, "warm": 60}}, "bands: warm (60) must not be above hot (40)"),
        ([1, 2], "expected a mapping of sections"),
    ],
)
def test_invalid_configuration_names_the_key(document: object, expected: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_config(document, source="my.yaml")
    assert str(raised.value).startswith("my.yaml: ")
    assert expected in str(raised.value)


def test_bad_yaml_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "scoring.yaml"
    path.write_text("weights: {companyFit: [\n")
    with pytest.raises(ConfigurationError, match=r"scoring\.yaml: not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_a_file_keeps_the_shipped_default_for_what_it_leaves_out(tmp_path: Path) -> None:
    """default.yaml's promise: any section left out keeps the shipped defaults (the ICP, the engagement
    signals), and a partial section keeps its other keys; the version is the effective configuration's."""
    shipped = load_config()
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert load_config(empty) == shipped and load_config(empty).version == shipped.version
    partial = tmp_path / "t.yaml"
    partial.write_text("thresholds: {mql: 40}\ncompany_fit: {countries: [US]}\n", encoding="utf-8")
    config = load_config(partial)
    assert config.thresholds.mql == 40 and config.thresholds.sql == shipped.thresholds.sql
    assert config.company_fit.countries == ["US"] and config.company_fit.industries == shipped.company_fit.industries
    assert config.engagement == shipped.engagement and config.version != shipped.version
    assert config.band_floors() == (shipped.thresholds.sql, 40), "bands follow the file's thresholds"
    same = tmp_path / "same.yaml"
    same.write_text("thresholds: {mql: 50}\n", encoding="utf-8")
    assert load_config(same).version == shipped.version


def test_equal_bounds_and_any_field_path_are_accepted() -> None:
    """ "Must not be above": a threshold or a range's bounds may be equal; the fields a rule names may be custom
    columns and the bookkeeping fields, and a completeness section may count no field at all."""
    config = parse_config(
        {
            "thresholds": {"mql": 60, "sql": 60},
            "bands": {"hot": 70, "warm": 70},
            "completeness": {"fields": {"custom.Notes": 1, "stage": 1, "email": 0}},
            "companyFit": {"employees": [{"min": 100, "max": 100}, {"max": 10}, {"min": 5000}]},
            "recency": {"activityField": "updated_at"},
        }
    )
    assert config.band_floors() == (70, 70)
    assert [r.describe() for r in config.company_fit.employees] == ["100-100", "up to 10", "5,000+"]
    assert parse_config({"completeness": {"fields": {}}}).completeness.fields == {}


@pytest.mark.parametrize(
    ("value", "inside"),
    [(49, False), (50, True), (500, True), (500.5, False), (10**9, False)],
)
def test_a_range_holds_its_bounds(value: float, inside: bool) -> None:
    assert Range(min=50, max=500).contains(value) is inside
    assert Range(min=50).contains(value) is (value >= 50)
    assert Range(max=500).contains(value) is (value <= 500)
