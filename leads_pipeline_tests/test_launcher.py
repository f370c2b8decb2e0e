"""What the CLI's runs bind: an import or a scoring needs the database alone, and starting one must not wait on
the providers' client libraries."""

from __future__ import annotations

import json
import subprocess
import sys

from leads_pipeline.defs.contacts.assets import email_contacts
from leads_pipeline.defs.imports.assets import batch_leads
from leads_pipeline.defs.scoring.assets import lead_scores
from leads_pipeline.launcher import resources_for

PROVIDER_LIBRARIES = ("google.genai", "apify_client", "hubspot", "simple_salesforce")


def test_imports_and_scores_bind_the_database_alone_and_provider_assets_get_every_resource() -> None:
    assert set(resources_for(batch_leads)) == {"database"}
    assert set(resources_for(lead_scores)) == {"database"}
    bound = resources_for(email_contacts)
    assert email_contacts.required_resource_keys - {"io_manager"} <= bound.keys()
    assert {"database", "apify", "gemini", "crm"} <= bound.keys()  # every resource, as in the Definitions


def test_an_import_run_starts_without_loading_a_provider_client_library() -> None:
    # In a fresh interpreter: this one imported every module of the project already.
    probe = f"""
import json, sys
from leads_pipeline.defs.imports.assets import batch_leads
from leads_pipeline.launcher import resources_for
resources_for(batch_leads)
print(json.dumps([name for name in {PROVIDER_LIBRARIES!r} if name in sys.modules]))
"""
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(loaded.stdout) == []
