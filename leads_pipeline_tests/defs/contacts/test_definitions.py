"""The contract other stages build on: asset keys, batch partitions, checks, and an ``overwrite`` config field."""

from __future__ import annotations

import dagster as dg
import pytest

from leads_pipeline.definitions import defs
from leads_pipeline.defs.contacts.assets import EmailContactsConfig, LinkedInProfilesConfig, PhoneContactsConfig
from leads_pipeline.defs.contacts.checks import (
    DNC_FRESH_CHECK,
    EMAIL_MX_CHECK,
    LINKEDIN_URL_CHECK,
    PHONE_E164_CHECK,
)
from leads_pipeline.defs.partitions import BATCHES


@pytest.mark.parametrize(
    ("key", "checks"),
    [
        ("email_contacts", {EMAIL_MX_CHECK}),
        ("phone_contacts", {PHONE_E164_CHECK, DNC_FRESH_CHECK}),
        ("linkedin_profiles", {LINKEDIN_URL_CHECK}),
    ],
)
def test_contact_assets_are_batch_partitioned_with_their_checks(key: str, checks: set[str]) -> None:
    graph = defs.resolve_asset_graph()
    asset_key = dg.AssetKey(key)
    node = graph.get(asset_key)
    assert isinstance(node.partitions_def, dg.DynamicPartitionsDefinition) and node.partitions_def.name == BATCHES
    assert node.group_name == "contacts"
    assert {check.name for check in graph.get_check_keys_for_assets({asset_key})} == checks


@pytest.mark.parametrize("config", [EmailContactsConfig, PhoneContactsConfig, LinkedInProfilesConfig])
def test_every_contact_config_keeps_verified_values_by_default(config: type[dg.Config]) -> None:
    assert config().overwrite is False  # type: ignore[attr-defined]
