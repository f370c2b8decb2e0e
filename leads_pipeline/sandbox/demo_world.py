"""The small world ``make demo`` serves, and the sample lead file drawn from it.

Both are shipped in ``leads_pipeline/data/``: the world (``demo_world.json``) because the generator draws its
names and companies from ``shared/data`` beside a checkout, which an installed package does not have (``leads
demo`` and ``leads sandbox tour`` failed there on the missing datablist files); the sample file because a newcomer
should be able to open the file the demo imports. Neither is edited by hand: ``write_demo_files`` regenerates both
from the seed below, and tests keep them equal to what the generator makes.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import random
import tempfile
from pathlib import Path

from leads_pipeline.sandbox.generate import LEAD_COLUMNS, generate_world, write_leads_csv
from leads_pipeline.sandbox.world import World, load_world, save_world

DEMO_COMPANIES = 20
DEMO_PEOPLE = 120
DEMO_SEED = 7

DEMO_WORLD_FILE = Path(__file__).resolve().parent.parent / "data" / "demo_world.json"
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


def demo_world() -> World:
    """The demo world, read from the shipped ``DEMO_WORLD_FILE`` (about 30 ms; generating it takes 0.3 s)."""
    return load_world(DEMO_WORLD_FILE)


def generate_demo_world(data_dir: Path | None = None) -> World:
    """What the generator makes of ``DEMO_COMPANIES`` companies and ``DEMO_PEOPLE`` people from seed ``DEMO_SEED``:
    the shipped world. ``data_dir`` is a copy of ``shared/data`` (default: beside the checkout, as for
    ``generate_world``)."""
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


def write_demo_files(data_dir: Path | None = None) -> tuple[Path, Path]:
    """Regenerate the shipped world and sample lead file (``python -m leads_pipeline.sandbox.demo_world``)."""
    world = generate_demo_world(data_dir)
    save_world(world, DEMO_WORLD_FILE)
    DEMO_LEADS_FILE.write_text(demo_leads_csv(world), encoding="utf-8")
    return DEMO_WORLD_FILE, DEMO_LEADS_FILE


if __name__ == "__main__":
    print(*write_demo_files(), sep="\n")
