"""Where tests find the shared public data (../shared/data next to the checkout, as in CI)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DATABLIST = SHARED_DATA / "datablist"
EXPORTS = SHARED_DATA / "exports"
DEMO_FILE = REPO / "leads_pipeline" / "data" / "demo_leads.csv"
