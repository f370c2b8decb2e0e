"""The contract other stages build on: asset keys, batch partitions, checks, and the run config users set."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from leads_pipeline.definitions import defs
from leads_pipeline.defs.contacts.assets import (
    EmailContactsConfig,
    LinkedInProfilesConfig,
    PhoneContactsConfig,
    options_from,
    phone_options,
)
from leads_pipeline.defs.contacts.checks import (
    DNC_FRESH_CHECK,
    EMAIL_MX_CHECK,
    LINKEDIN_URL_CHECK,
    PHONE_E164_CHECK,
)
from leads_pipeline.defs.partitions import BATCHES
from leads_pipeline.lib.contacts.email_batch import EmailOptions
from leads_pipeline.lib.contacts.linkedin_batch import LinkedInOptions
from leads_pipeline.lib.contacts.phone_batch import PhoneOptions
from leads_pipeline.lib.contacts.verifier import VerifierSettings


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


@pytest.mark.parametrize(
    ("config", "keys"),
    [
        (
            EmailContactsConfig,
            "overwrite discover max_candidates people_search verifier workers per_host greylist_wait_s chunk_size "
            "cache_days",
        ),
        (PhoneContactsConfig, "overwrite default_region twilio direct_dials workers chunk_size cache_days"),
        (
            LinkedInProfilesConfig,
            "overwrite discover extract threshold queries_per_run profiles_per_run max_concurrent_runs "
            "download_photos media_dir chunk_size cache_days",
        ),
    ],
)
def test_run_config_keys_are_the_published_ones(config: type[dg.Config], keys: str) -> None:
    assert set(config.model_fields) == set(keys.split())


def test_default_run_configs_are_the_lib_defaults() -> None:
    assert options_from(EmailContactsConfig(), EmailOptions) == EmailOptions()
    assert options_from(EmailContactsConfig(), VerifierSettings) == VerifierSettings()
    assert phone_options(PhoneContactsConfig()) == PhoneOptions()
    linkedin = options_from(LinkedInProfilesConfig(), LinkedInOptions, media_dir=LinkedInOptions.media_dir)
    assert linkedin == LinkedInOptions()


def test_a_phone_run_without_default_region_reads_numbers_in_the_configured_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A phone stage launched from the UI read a UK team's national numbers as US ones; it takes
    LEADS_DEFAULT_REGION now, and the run config's value still wins."""
    monkeypatch.setenv("LEADS_DEFAULT_REGION", "gb")
    assert phone_options(PhoneContactsConfig()).default_region == "GB"
    assert phone_options(PhoneContactsConfig(default_region="DE")).default_region == "DE"


def test_every_run_config_value_reaches_the_stage() -> None:
    email = EmailContactsConfig(
        overwrite=True,
        discover=False,
        max_candidates=2,
        people_search=False,
        workers=3,
        per_host=1,
        greylist_wait_s=0.5,
        chunk_size=10,
        cache_days=1,
    )
    assert options_from(email, EmailOptions) == EmailOptions(
        overwrite=True, discover=False, max_candidates=2, people_search=False, chunk_size=10, cache_days=1
    )
    settings = options_from(email, VerifierSettings, probing=False)
    assert settings == VerifierSettings(probing=False, workers=3, per_host=1, greylist_wait_s=0.5)
    phone = PhoneContactsConfig(
        overwrite=True, default_region="GB", twilio="never", direct_dials=False, workers=2, chunk_size=9, cache_days=3
    )
    assert phone_options(phone) == PhoneOptions(**phone.model_dump())
    linkedin = LinkedInProfilesConfig(
        overwrite=True,
        discover=False,
        extract=False,
        threshold=0.5,
        queries_per_run=5,
        profiles_per_run=6,
        max_concurrent_runs=1,
        download_photos=False,
        media_dir="/tmp/photos",
        chunk_size=7,
        cache_days=2,
    )
    built = options_from(linkedin, LinkedInOptions, media_dir=Path("/tmp/photos"))
    assert built == LinkedInOptions(**{**linkedin.model_dump(), "media_dir": Path("/tmp/photos")})
