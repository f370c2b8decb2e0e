"""Address patterns: which local-part pattern a domain uses, learned from addresses known there, and the
candidates it gives a person in order of probability (the Hunter approach).

A pattern is a template over the name parts ``{first}``, ``{last}``, ``{f}``, ``{l}`` (initials). Names are
written the way mailboxes spell them: accents folded (José -> jose), apostrophes and spaces dropped
(O'Brien -> obrien). Where mailboxes disagree, variants are cheap to try: hyphenated names with and without
the hyphen or only their first part, German umlauts as ``ue`` as well as ``u``, surnames without their
particles (van der Berg -> berg), and the common nicknames. Variants rank below the plain spelling.

A domain's shares are its own counts smoothed towards the global shares (the account's counts smoothed
towards ``PRIORS``), so one known address moves the ranking a lot and ten settle it.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PRIORS: dict[str, float] = {
    "{first}.{last}": 0.42,
    "{f}{last}": 0.20,
    "{first}": 0.10,
    "{first}{l}": 0.06,
    "{first}_{last}": 0.05,
    "{first}{last}": 0.05,
    "{last}{f}": 0.03,
    "{f}.{last}": 0.03,
    "{last}.{first}": 0.02,
    "{last}": 0.01,
    "{first}-{last}": 0.01,
    "{first}.{l}": 0.01,
    "{f}{l}": 0.005,
    "{last}{first}": 0.005,
}
"""Global shares of address patterns at companies, rounded from published surveys of B2B addresses (first.last
is the most common by far, then initial+last, then first name alone); the account's own addresses refine them."""

PATTERNS = tuple(PRIORS)
PRIOR_WEIGHT = 20.0
"""How many known addresses the priors are worth when smoothing the account-wide shares."""
DOMAIN_WEIGHT = 1.5
"""How many addresses the global shares are worth when smoothing one domain's shares."""
VARIANT_PENALTY = 0.1
"""A variant spelling (nickname, hyphen dropped...) is this much less likely than the plain spelling."""

_PARTICLES = frozenset({"van", "von", "der", "den", "de", "del", "della", "di", "da", "du", "la", "le", "dos", "das"})
_NICKNAMES: dict[str, tuple[str, ...]] = {
    "william": ("bill", "will"),
    "robert": ("bob", "rob"),
    "richard": ("rick", "rich"),
    "james": ("jim",),
    "michael": ("mike",),
    "thomas": ("tom",),
    "christopher": ("chris",),
    "daniel": ("dan",),
    "matthew": ("matt",),
    "joseph": ("joe",),
    "elizabeth": ("liz", "beth"),
    "katherine": ("kate", "kathy"),
    "catherine": ("cathy", "kate"),
    "jennifer": ("jen",),
    "alexander": ("alex",),
    "alexandra": ("alex",),
    "benjamin": ("ben",),
    "nicholas": ("nick",),
    "anthony": ("tony",),
    "andrew": ("andy",),
    "steven": ("steve",),
    "stephen": ("steve",),
    "jonathan": ("jon",),
    "samuel": ("sam",),
    "edward": ("ed",),
    "margaret": ("maggie", "peg"),
    "patricia": ("pat",),
}
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue"})


def mailbox_name(name: str) -> str:
    """``name`` as mailboxes spell it: accents folded, lower case, letters and digits only."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def name_variants(name: str, *, surname: bool = False, nicknames: bool = True) -> list[str]:
    """Spellings of a name part, the plain one first, without duplicates or empties."""
    words = [w for w in re.split(r"\s+", name.strip()) if w]
    variants = [mailbox_name(name)]
    variants.append(mailbox_name(name.translate(_UMLAUTS)))
    if "-" in name:
        parts = [p for p in name.split("-") if p.strip()]
        variants.append("-".join(mailbox_name(p) for p in parts))
        variants.append(mailbox_name(parts[0] if not surname else parts[-1]))
        if surname:
            variants.append(mailbox_name(parts[0]))
    if surname and len(words) > 1:
        kept = [w for w in words if w.lower() not in _PARTICLES]
        if kept:
            variants.append(mailbox_name(" ".join(kept)))
            variants.append(mailbox_name(kept[-1]))
    if not surname and len(words) > 1:
        variants.append(mailbox_name(words[0]))
    if nicknames and not surname:
        variants.extend(_NICKNAMES.get(mailbox_name(name), ()))
    return [v for v in dict.fromkeys(variants) if v]


def render(pattern: str, first: str, last: str) -> str:
    """The local part ``pattern`` gives the already-spelled name parts."""
    return pattern.format(first=first, last=last, f=first[:1], l=last[:1])


def detect_patterns(first_name: str, last_name: str, local_part: str) -> list[str]:
    """The patterns that produce ``local_part`` for this person (plain spellings first, then variants)."""
    local = local_part.lower().split("+", 1)[0]
    firsts = name_variants(first_name)
    lasts = name_variants(last_name, surname=True)
    found: list[str] = []
    for first in firsts:
        for last in lasts:
            if not first or not last:
                continue
            found.extend(p for p in PATTERNS if render(p, first, last) == local)
        if found:
            break
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Candidate:
    """A guessed address: its probability under the domain's shares, its pattern and its rank (0 = best)."""

    email: str
    pattern: str
    probability: float
    rank: int


class PatternModel:
    """Pattern shares per domain, from evidence counts per (domain, pattern)."""

    def __init__(self, evidence: Mapping[str, Mapping[str, int]] | None = None) -> None:
        self.domains: dict[str, Counter[str]] = {d.lower(): Counter(c) for d, c in (evidence or {}).items()}
        total: Counter[str] = Counter()
        for counts in self.domains.values():
            total.update(counts)
        self._global = _smooth(total, PRIORS, PRIOR_WEIGHT)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, int]]) -> PatternModel:
        """From (domain, pattern, count) rows, as the store returns them."""
        evidence: dict[str, Counter[str]] = {}
        for domain, pattern, count in rows:
            evidence.setdefault(domain.lower(), Counter())[pattern] += count
        return cls(evidence)

    def add(self, domain: str, pattern: str) -> None:
        """Count one more known address (discoveries within a run teach the next leads of the domain)."""
        self.domains.setdefault(domain.lower(), Counter())[pattern] += 1

    def known(self, domain: str) -> int:
        return sum(self.domains.get(domain.lower(), Counter()).values())

    def shares(self, domain: str) -> dict[str, float]:
        """The domain's pattern shares, most likely first, summing to 1."""
        counts = self.domains.get(domain.lower(), Counter())
        smoothed = _smooth(counts, self._global, DOMAIN_WEIGHT)
        return dict(sorted(smoothed.items(), key=lambda kv: (-kv[1], PATTERNS.index(kv[0]))))

    def candidates(self, first_name: str, last_name: str, domain: str, limit: int = 10) -> list[Candidate]:
        """Addresses for the person at ``domain``, most probable first (at most ``limit``)."""
        firsts = name_variants(first_name)
        lasts = name_variants(last_name, surname=True)
        if not firsts or not lasts:
            return []
        scored: dict[str, tuple[float, str]] = {}
        for pattern, share in self.shares(domain).items():
            for i, first in enumerate(firsts):
                for j, last in enumerate(lasts):
                    if "{last}" not in pattern and "{l}" not in pattern and j:
                        continue
                    if "{first}" not in pattern and "{f}" not in pattern and i:
                        continue
                    local = render(pattern, first, last)
                    probability = share * (VARIANT_PENALTY ** (min(i, 1) + min(j, 1)))
                    # two patterns can spell the same address (first "al", last "b": alb): add them up
                    earlier, earlier_pattern = scored.get(local, (0.0, pattern))
                    scored[local] = (earlier + probability, earlier_pattern if earlier >= probability else pattern)
        ranked = sorted(scored.items(), key=lambda kv: (-kv[1][0], PATTERNS.index(kv[1][1])))[:limit]
        return [
            Candidate(f"{local}@{domain.lower()}", pattern, round(p, 4), rank)
            for rank, (local, (p, pattern)) in enumerate(ranked)
        ]


def _smooth(counts: Mapping[str, int], prior: Mapping[str, float], weight: float) -> dict[str, float]:
    """(count + weight * prior) / (n + weight) for every pattern of the prior."""
    n = sum(counts.values())
    return {p: (counts.get(p, 0) + weight * share) / (n + weight) for p, share in prior.items()}
