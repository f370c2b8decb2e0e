"""The contract other stages build on: asset keys, batch partitions, checks, and the run config users set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from leads_pipeline.definitions import defs
from leads_pipeline.defs.contacts.assets import (
    EmailContactsConfig,
    LinkedInProfilesConfig,
    PhoneContactsConfig,
    email_contacts,
    linkedin_profiles,
    options_from,
    phone_contacts,
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
from leads_pipeline.lib.store import enrichment as jobs_store
from leads_pipeline.lib.store.db import connect
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.defs.contacts.conftest import WorldBatch, sandbox_resources
from leads_pipeline_tests.support import materialize_batch, step_failure


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


@pytest.mark.parametrize(
    ("asset", "config", "expected"),
    [
        (email_contacts, {"chunk_size": 0}, "chunk_size must be a number >= 1; got 0"),
        (email_contacts, {"workers": -2}, "workers must be a number >= 1; got -2"),
        (email_contacts, {"cache_days": -1}, "cache_days must be a number >= 0; got -1"),
        (phone_contacts, {"chunk_size": 0}, "chunk_size must be a number >= 1; got 0"),
        (linkedin_profiles, {"chunk_size": -5}, "chunk_size must be a number >= 1; got -5"),
        (linkedin_profiles, {"threshold": 1.5}, "threshold must be a number from 0 to 1; got 1.5"),
    ],
)
def test_a_setting_out_of_its_range_fails_the_run_in_one_line_before_any_lead(
    asset: dg.AssetsDefinition,
    config: dict[str, Any],
    expected: str,
    database_url: str,
    world_batch: WorldBatch,
    sandbox: Sandbox,
) -> None:
    """``chunk_size: 0`` in the launchpad failed every contact stage after two retries with Python's "range() arg 3
    must not be zero" and its traceback; a negative one ran over no lead. Each is the step's one line, not
    retried, before the stage's job is made or a lead read."""
    resources = sandbox_resources(sandbox, database_url)
    name = asset.key.to_user_string()
    result = materialize_batch(
        [asset], world_batch.batch_id, dg.DagsterInstance.ephemeral(), resources, {name: config}, raise_on_error=False
    )
    assert step_failure(result) == expected
    assert len(result.get_step_failure_events()) == 1
    assert [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"] == []
    with connect(database_url) as conn:
        assert jobs_store.find_job(conn, world_batch.batch_id) is None
