"""Source names on the command line and the assets behind them."""

from __future__ import annotations

import pytest

from leads_pipeline.lib.enrichment.providers import parse_sources, require_assets
from leads_pipeline.lib.errors import ConfigurationError


def test_all_means_every_source_in_order_and_duplicates_collapse() -> None:
    assert parse_sources("all") == ["email", "phone", "linkedin", "company"]
    assert parse_sources(" Company, email,company ") == ["company", "email"]


def test_a_source_whose_asset_is_not_deployed_is_named() -> None:
    with pytest.raises(ConfigurationError, match=r"email \(asset email_contacts\).*enrich with company instead"):
        require_assets(["email", "company"], {"company_profiles"})
    assert require_assets(["company", "email"], {"company_profiles", "email_contacts"}) == [
        "company_profiles",
        "email_contacts",
    ]
