"""A fixed industry taxonomy and company size ranges, so leads from different sources compare and score alike.

Providers name industries freely ("Computer Software / Engineering", "information technology and services",
"SaaS"); scoring and segmentation need one closed set. The sectors are LinkedIn's 20 top-level industry groups
(industry taxonomy V2), which sales tools already speak. A provider's label is matched by keywords, first rule
wins; a label no rule knows is left unclassified (kept as the raw label in the fact), never guessed.
"""

from __future__ import annotations

import re

SECTORS: tuple[str, ...] = (
    "Accommodation Services",
    "Administrative and Support Services",
    "Construction",
    "Consumer Services",
    "Education",
    "Entertainment Providers",
    "Farming, Ranching, Forestry",
    "Financial Services",
    "Government Administration",
    "Holding Companies",
    "Hospitals and Health Care",
    "Manufacturing",
    "Oil, Gas, and Mining",
    "Professional Services",
    "Real Estate and Equipment Rental Services",
    "Retail",
    "Technology, Information and Media",
    "Transportation, Logistics, Supply Chain and Storage",
    "Utilities",
    "Wholesale",
)

# (keyword stems, sector): the first rule with a stem that starts a word of the label wins. Order matters where
# labels mix words ("Real Estate / Mortgage" is real estate; "Banking / Mortgage" is financial services).
_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("holding",), "Holding Companies"),
    (("real estate", "commercial real"), "Real Estate and Equipment Rental Services"),
    (
        ("bank", "financ", "insurance", "invest", "capital market", "venture", "accounting", "fund", "fintech"),
        "Financial Services",
    ),
    (
        ("hospital", "health", "medical", "pharma", "biotech", "veterinar", "mental", "alternative medicine"),
        "Hospitals and Health Care",
    ),
    (
        (
            "software",
            "computer",
            "internet",
            "information",
            "telecom",
            "wireless",
            "semiconductor",
            "broadcast",
            "media",
            "publishing",
            "newspaper",
            "online",
            "e - learning",
            "animation",
            "motion picture",
            "saas",
            "technology",
            "it ",
            "network",
            "game",
            "nanotech",
            "program development",
            "writing",
            "translation",
            "photography",
            "printing",
            "music",
            "market research",
            "research",
            "think tank",
            "library",
        ),
        "Technology, Information and Media",
    ),
    (("oil", "mining", "metal", "gas"), "Oil, Gas, and Mining"),
    (("utilit", "renewable", "energy", "solar", "environmental"), "Utilities"),
    (("farm", "ranch", "dairy", "fishery", "forest"), "Farming, Ranching, Forestry"),
    (("construction", "building", "civil engineering", "architecture"), "Construction"),
    (
        (
            "airline",
            "aviation",
            "transport",
            "logistic",
            "freight",
            "package",
            "maritime",
            "shipbuild",
            "warehous",
            "railroad",
            "import",
            "trade",
        ),
        "Transportation, Logistics, Supply Chain and Storage",
    ),
    (("wholesale",), "Wholesale"),
    (("retail", "supermarket", "luxury", "apparel", "cosmetic", "sporting goods", "consumer goods"), "Retail"),
    (("hospitality", "restaurant", "leisure", "travel", "accommodation", "hotel"), "Accommodation Services"),
    (("education", "school", "academ", "training", "e-learning", "higher ed"), "Education"),
    (
        (
            "government",
            "legislat",
            "judiciary",
            "law enforcement",
            "public safety",
            "military",
            "defense",
            "international affairs",
            "political",
            "executive office",
        ),
        "Government Administration",
    ),
    (
        (
            "entertainment",
            "sport",
            "gambling",
            "casino",
            "performing",
            "fine art",
            "museum",
            "arts",
            "recreation",
            "events",
        ),
        "Entertainment Providers",
    ),
    (
        (
            "staffing",
            "recruit",
            "outsourcing",
            "facilities",
            "security",
            "human resources",
            "business supplies",
            "fundrais",
        ),
        "Administrative and Support Services",
    ),
    (
        (
            "manufactur",
            "machinery",
            "chemical",
            "plastic",
            "textile",
            "paper",
            "glass",
            "furniture",
            "electronic",
            "automotive",
            "industrial",
            "packaging",
            "food",
            "beverage",
            "wine",
            "tobacco",
            "equipment",
            "mechanical",
            "hardware",
            "space",
        ),
        "Manufacturing",
    ),
    (
        (
            "consult",
            "legal",
            "law",
            "marketing",
            "advertising",
            "public relations",
            "design",
            "professional",
            "dispute",
            "alternative dispute",
        ),
        "Professional Services",
    ),
    (
        (
            "consumer",
            "individual",
            "family",
            "religious",
            "civic",
            "non - profit",
            "nonprofit",
            "philanthrop",
            "fitness",
            "wellness",
        ),
        "Consumer Services",
    ),
)

_WORDS = re.compile(r"[^a-z0-9& -]+")


def classify_industry(label: str | None) -> str | None:
    """The taxonomy sector of a provider's industry label, or None when no rule recognises it."""
    if not label or not label.strip():
        return None
    if label in SECTORS:
        return label
    text = " " + _WORDS.sub(" ", label.casefold()).strip() + " "
    for stems, sector in _RULES:
        if any(f" {stem}" in text for stem in stems):
            return sector
    return None


SIZE_RANGES: tuple[tuple[int, int | None, str], ...] = (
    (1, 10, "1-10"),
    (11, 50, "11-50"),
    (51, 200, "51-200"),
    (201, 500, "201-500"),
    (501, 1000, "501-1000"),
    (1001, 5000, "1001-5000"),
    (5001, 10000, "5001-10000"),
    (10001, None, "10001+"),
)


def size_range(employees: int | None) -> str | None:
    """The headcount band sales tools filter on (LinkedIn's company size ranges)."""
    if employees is None or employees < 1:
        return None
    return next(label for low, high, label in SIZE_RANGES if employees >= low and (high is None or employees <= high))
