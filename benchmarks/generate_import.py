"""A large lead file derived from the public datablist samples in ../shared/data, for the import benchmark.

Rows recombine real first names, last names, companies, job titles, countries, websites and phone numbers from
the datablist files, so the file looks like a real export (same value shapes, extensions and formatting quirks)
while each row is a distinct lead (its email is unique). A phone number travels with the city and country of the
customer record it came from (about 20k distinct numbers), as in real lists where switchboard numbers repeat; the
importer parses each distinct number once.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
from pathlib import Path

from leads_pipeline.lib.runtime import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT.parent / "shared" / "data" / "datablist"
HEADER = [
    "Index",
    "Account Id",
    "First Name",
    "Last Name",
    "Company",
    "Job Title",
    "Phone 1",
    "Email",
    "Website",
    "City",
    "Country",
    "Source",
    "Notes",
]


def _rows(name: str) -> list[dict[str, str]]:
    path = DATA_DIR / name
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:  # type: ignore[operator]
        return list(csv.DictReader(handle))


def generate(out: Path, rows: int, seed: int = 1) -> Path:
    rng = random.Random(seed)
    people = _rows("people-10000.csv.gz")
    customers = _rows("customers-10000.csv.gz")
    leads = _rows("leads-10000.csv.gz")
    firsts = [r["First Name"] for r in people + customers + leads]
    lasts = [r["Last Name"] for r in people + customers + leads]
    titles = [r["Job Title"] for r in people]
    companies = [(r["Company"], r["Website"]) for r in customers + leads]
    contacts = [(r[k], r["City"], r["Country"]) for r in customers for k in ("Phone 1", "Phone 2")]
    sources = [r["Source"] for r in leads]
    notes = [r["Notes"] for r in leads]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(1, rows + 1):
            first, last = rng.choice(firsts), rng.choice(lasts)
            company, website = rng.choice(companies)
            domain = website.split("//")[-1].strip("/").removeprefix("www.")
            phone, city, country = rng.choice(contacts)
            email = f"{first}.{last}{i}@{domain}".lower().replace(" ", "")
            writer.writerow(
                [
                    i,
                    f"{rng.getrandbits(60):015x}",
                    first,
                    last,
                    company,
                    rng.choice(titles),
                    phone,
                    email,
                    website,
                    city,
                    country,
                    rng.choice(sources),
                    rng.choice(notes),
                ]
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    generate(args.out, args.rows, args.seed)


if __name__ == "__main__":
    main()
