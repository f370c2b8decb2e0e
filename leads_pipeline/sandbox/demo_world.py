"""The small world ``make demo`` serves, and the sample lead file drawn from it.

The world is generated on the fly, the same every time, never stored: generating it takes about 0.2 s, so
shipping a world file would only add a second copy of the truth that could drift from the generator. A fixed
seed keeps the demo's people, answers and output identical from run to run.

The sample file (``leads_pipeline/data/demo_world_leads.csv``) is shipped, because a newcomer should be able to
open the file the demo imports; ``write_demo_leads`` regenerates it and a test keeps the two in agreement.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import random
import tempfile
from pathlib import Path

from leads_pipeline.sandbox.generate import LEAD_COLUMNS, generate_world, write_leads_csv
from leads_pipeline.sandbox.world import World

DEMO_COMPANIES = 20
DEMO_PEOPLE = 120
DEMO_SEED = 7

DEMO_LEADS_FILE = Path(__file__).resolve().parent.parent / "data" / "demo_world_leads.csv"
DEMO_LEADS = 40
"""The demo world's first people in the sample file: enough for every stage to show something, few enough
that the whole pipeline runs in seconds."""
DEMO_MISSING = {"email": 0.4, "phone": 0.5, "linkedin": 0.5, "website": 0.3}
"""Shares of the sample's rows whose field is blanked, for enrichment to find again."""
DEMO_CSV_SEED = 11
ENGAGEMENT_COLUMNS = ("Lead Source", "Visits", "Email Opens")
"""What a marketing export adds to each row, for scoring's engagement component (``custom.Visits`` and
``custom.Email Opens`` in the shipped configuration; the lead source maps to the canonical ``source``)."""
SOURCES = ("referral", "event", "webinar", "website", "inbound", "linkedin", "google", "cold list")


def demo_world(data_dir: Path | None = None) -> World:
    """The demo world: ``DEMO_COMPANIES`` companies and ``DEMO_PEOPLE`` people from seed ``DEMO_SEED``.

    ``data_dir`` is a copy of ``shared/data`` (default: beside the checkout, as for ``generate_world``).
    """
    return generate_world(DEMO_COMPANIES, DEMO_PEOPLE, DEMO_SEED, data_dir)


def demo_leads_csv(world: World) -> str:
    """The sample lead file as text: the world's first ``DEMO_LEADS`` people with fields blanked and made-up
    engagement (source, visits, email opens), then what a real export also holds, so each stage of the demo
    has work to show:

    - the first row again, same email: the import skips it (the demo list de-duplicates by email);
    - the second person again without email, phone or LinkedIn and with a typo in the last name: no key of the
      import matches it, so it keeps it; duplicate detection finds it (same first name and company, similar
      last name);
    - a row with no name, email, phone or LinkedIn: the import rejects it, naming the row and the rule.
    """
    people = dataclasses.replace(world, people=world.people[:DEMO_LEADS])
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "leads.csv"
        write_leads_csv(people, out, Path(folder) / "truth.json", DEMO_MISSING, DEMO_CSV_SEED)
        rows = list(csv.reader(out.open(encoding="utf-8", newline="")))
    rng = random.Random(DEMO_CSV_SEED)
    header = [*rows[0], *ENGAGEMENT_COLUMNS]
    body = [
        [*row, rng.choice(SOURCES), str(rng.choice((0, 0, 1, 2, 4, 7, 12))), str(rng.randint(0, 5))] for row in rows[1:]
    ]
    column = {name: header.index(name) for name in LEAD_COLUMNS}
    with_email = next(row for row in body if row[column["Email"]])
    renamed = next(row for row in body if row[column["Email"]] and row[column["Last Name"]] and row is not with_email)
    again = list(renamed)
    again[column["Email"]] = again[column["LinkedIn URL"]] = again[column["Phone"]] = ""
    again[column["Last Name"]] += again[column["Last Name"]][-1]
    nobody = [""] * len(header)
    nobody[column["Company"]], nobody[column["Title"]] = "(see attached)", "Head of Something"
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([header, *body, list(with_email), again, nobody])
    return text.getvalue()


def write_demo_leads(path: Path = DEMO_LEADS_FILE, data_dir: Path | None = None) -> Path:
    """Regenerate the sample lead file from the demo world (``python -m leads_pipeline.sandbox.demo_world``)."""
    path.write_text(demo_leads_csv(demo_world(data_dir)), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write_demo_leads())
