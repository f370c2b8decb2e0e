"""LinkedIn profile discovery: the search query for a lead, and how well a search result matches the lead.

A result is a candidate only if it is a profile URL (``linkedin.com/in/<slug>``). Its score (0-1) weighs what
the result's title and snippet say against the lead: both names (required for any real match), the employer,
then the job title. Names are compared the way mailboxes spell them (accents folded), so "José García" matches
"Jose Garcia". Only candidates at or above a threshold are accepted; the best one wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from leads_pipeline.lib.contacts.patterns import mailbox_name

PROFILE_URL = re.compile(r"^(?:https?://)?(?:[a-z0-9-]+\.)?linkedin\.com/in/(?P<slug>[^/?#\s]+)/?", re.IGNORECASE)
DEFAULT_THRESHOLD = 0.75
WEIGHTS = {"name": 0.6, "company": 0.3, "title": 0.1}


def canonical_profile_url(url: str) -> str | None:
    """``https://www.linkedin.com/in/<slug>`` for a profile URL in any spelling, else None."""
    match = PROFILE_URL.match(url.strip())
    return f"https://www.linkedin.com/in/{match.group('slug')}" if match else None


def search_query(lead: dict[str, Any]) -> str | None:
    """``site:linkedin.com/in "First Last" Company`` for a lead with a name; None without one."""
    first, last = (lead.get("first_name") or "").strip(), (lead.get("last_name") or "").strip()
    if not (first and last):
        return None
    employer = (lead.get("company") or lead.get("company_domain") or "").strip()
    return " ".join(part for part in ("site:linkedin.com/in", first, last, employer) if part)


def _words(text: str) -> set[str]:
    return {mailbox_name(w) for w in re.split(r"[\s,|\-\u2013\u2014\u00b7()/]+", text) if mailbox_name(w)}


@dataclass(frozen=True)
class ScoredProfile:
    url: str
    score: float
    matched: tuple[str, ...]
    title: str


def score_result(lead: dict[str, Any], url: str, title: str, description: str | None) -> ScoredProfile | None:
    """The result's match with the lead, or None when it is not a profile URL."""
    canonical = canonical_profile_url(url)
    if canonical is None:
        return None
    text = _words(f"{title} {description or ''}")
    slug = mailbox_name(canonical.rsplit("/", 1)[-1])
    first = mailbox_name(lead.get("first_name") or "")
    last = mailbox_name(lead.get("last_name") or "")
    matched = []
    name_in_text = bool(first and last and first in text and last in text)
    name_in_slug = bool(first and last and slug.startswith(first) and last in slug)
    if name_in_text or name_in_slug:
        matched.append("name")
    company_words = _words(lead.get("company") or "") - {"inc", "llc", "ltd", "gmbh", "co", "the", "and", "group"}
    domain_label = mailbox_name((lead.get("company_domain") or "").split(".")[0])
    if (company_words and company_words <= text) or (domain_label and domain_label in text):
        matched.append("company")
    title_words = _words(lead.get("title") or "")
    if title_words and len(title_words & text) >= max(1, len(title_words) // 2):
        matched.append("title")
    score = sum(WEIGHTS[m] for m in matched) if "name" in matched else 0.0
    return ScoredProfile(canonical, round(score, 3), tuple(matched), title)


def best_profile(
    lead: dict[str, Any], results: list[tuple[str, str, str | None]], threshold: float = DEFAULT_THRESHOLD
) -> tuple[ScoredProfile | None, list[ScoredProfile]]:
    """(the accepted profile or None, every scored candidate best first) for (url, title, description) results."""
    scored = [s for s in (score_result(lead, *r) for r in results) if s is not None]
    ranked = sorted(scored, key=lambda s: -s.score)
    accepted = ranked[0] if ranked and ranked[0].score >= threshold else None
    if accepted and len(ranked) > 1 and ranked[1].score == accepted.score and ranked[1].url != accepted.url:
        accepted = None  # two equally good people: do not guess
    return accepted, ranked
