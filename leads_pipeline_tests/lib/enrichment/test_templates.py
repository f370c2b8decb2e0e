"""Templates: the shipped ones load, and every mistake in a template file is named with its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from leads_pipeline.lib.enrichment.templates import builtin_templates, load_template, load_template_file
from leads_pipeline.lib.errors import ConfigurationError


def test_shipped_templates() -> None:
    templates = builtin_templates()
    assert set(templates) == {"basic", "standard", "premium"}
    assert templates["basic"].providers() == ["domain"]  # offline only: free
    assert templates["standard"].company["industry"].sources == ("gemini",)
    assert templates["standard"].company["website"].sources == ("domain", "gemini")
    premium = templates["premium"]
    assert premium.company["company_linkedin_url"].sources == ("gemini", "apify_search")
    assert premium.company["website"].min_confidence == 70
    assert premium.sources == ("email", "phone", "linkedin", "company")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "expected a YAML mapping at the top, found list"),
        ("name: x\nfoo: 1\n", "unknown key(s) foo"),
        ("description: x\n", "name: expected a non-empty string"),
        ("name: x\nsources: [fax]\n", "sources: expected a list of email, phone, linkedin, company"),
        ("name: x\nmax_credits_per_lead: -1\n", "max_credits_per_lead: expected a number >= 0, found -1"),
        (
            "name: x\ncompany:\n  default: {sources: [oracle]}\n",
            "company.default.sources[0]: unknown provider 'oracle'",
        ),
        ("name: x\ncompany:\n  default: {sources: []}\n", "company.default.sources: expected a non-empty list"),
        ("name: x\ncompany:\n  default: {sources: [gemini, gemini]}\n", "a provider is listed twice"),
        ("name: x\ncompany:\n  default: {sources: [gemini], stop: sometimes}\n", "company.default.stop: expected"),
        (
            "name: x\ncompany:\n  default: {sources: [gemini], stop: {min_confidence: 101}}\n",
            "stop.min_confidence: expected an integer from 0 to 100, found 101",
        ),
        ("name: x\ncompany:\n  fields:\n    colour: {sources: [gemini]}\n", "unknown field(s) colour"),
        (
            "name: x\ncompany:\n  fields:\n    industry: {sources: [domain]}\n",
            "company.fields.industry.sources: domain cannot supply industry",
        ),
        ("name: x\ncompany: {}\n", "the company source is selected but no field has a provider"),
        ("name: x\ncompany:\n  default: {sources: [gemini]\n", "not valid YAML at line"),
    ],
)
def test_invalid_templates_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigurationError) as error:
        load_template_file(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_field_rules_inherit_the_default(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "name: mine\nmax_credits_per_lead: 0.5\ncompany:\n"
        "  default: {sources: [domain, gemini], stop: {min_confidence: 75}}\n"
        "  fields:\n    website: {sources: [apify_search]}\n",
    )
    template = load_template(str(path))
    assert template.company["industry"].sources == ("gemini",)  # domain cannot supply it: dropped from the default
    assert template.company["industry"].min_confidence == 75
    assert template.company["website"].sources == ("apify_search",)
    assert template.affordable("apify_search") and not template.affordable("gemini")


def test_unknown_template_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigurationError, match="shipped templates: basic, premium, standard"):
        load_template("gold")
