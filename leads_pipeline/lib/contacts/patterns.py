"""Address patterns: which local-part pattern a domain uses, learned from addresses known there, and the
candidates it gives a person in order of probability (the Hunter approach).

A pattern is a template over the name parts ``{first}``, ``{last}``, ``{f}``, ``{l}`` (initials). Names are
written the way mailboxes spell them: in ASCII (anyascii: José -> jose, Łukasz -> lukasz, Groß -> gross,
Дмитрий -> dmitriy, Γιώργος -> giorgos), apostrophes and spaces dropped (O'Brien -> obrien). A name beyond ASCII
has more than one usual spelling (:func:`spellings`: Jörg Müller as jorg muller and joerg mueller, Дмитрий as
dmitry and dmitriy), each the whole name's, tried in turn. Where mailboxes disagree, variants are cheap to try:
hyphenated names with and without the hyphen or only their first part, surnames without their particles
(van der Berg -> berg), and the common nicknames. Variants rank below the plain spelling.

A domain's shares are its own counts smoothed towards the global shares (the account's counts smoothed
towards ``PRIORS``), so one known address moves the ranking a lot and ten settle it.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from anyascii import anyascii

from leads_pipeline.lib.fields import HAN_COMPOUND_FAMILY_NAMES

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

FAMILY_FIRST_PRIORS: dict[str, float] = {
    "{first}.{last}": 0.26,
    "{last}{first}": 0.23,
    "{first}{last}": 0.13,
    "{last}.{first}": 0.08,
    "{f}{last}": 0.08,
    "{last}{f}": 0.06,
    "{first}_{last}": 0.04,
    "{first}": 0.03,
    "{f}.{last}": 0.03,
    "{first}{l}": 0.02,
    "{last}": 0.01,
    "{first}-{last}": 0.01,
    "{first}.{l}": 0.01,
    "{f}{l}": 0.01,
}
"""The priors of a Chinese name written family name first, spelled in pinyin (王伟: first name wei, last name wang).
Chinese companies write the name as it is said, family name first and joined (wangwei), international ones given
name first (wei.wang, weiwang), and a given name alone is too common to be an address; the Western shares put wangwei
last of fourteen. No published survey gives these: they are an estimate of that order, which a domain's known
addresses correct as they do the global shares."""

PATTERNS = tuple(PRIORS)
PRIOR_WEIGHT = 20.0
"""How many known addresses the priors are worth when smoothing the account-wide shares."""
DOMAIN_WEIGHT = 1.5
"""How many addresses the global shares are worth when smoothing one domain's shares."""
VARIANT_PENALTY = 0.1
"""A variant spelling (nickname, hyphen dropped...) is this much less likely than the plain spelling."""
SPELLING_PENALTY = 0.7
"""A name's second ASCII spelling (joerg mueller after jorg muller) is this much less likely than its first: mail
systems write both, so with the default four guesses both spellings of first.last are tried."""

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
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
_UMLAUT_TLDS = frozenset({"de", "at", "ch", "li"})
"""Where a German name's umlauts are spelled out first (joerg.mueller before jorg.muller): the German-speaking
countries; elsewhere, and for the Swedish, Finnish, Turkish or Hungarian names with the same letters, folded first."""
_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK"})
"""Scripts whose transliteration is the one mail systems use. Arabic and Hebrew (no vowels written), Hangul (the
revised romanization spells 김 gim, mailboxes kim) and Japanese are left out: their names give no guess."""
_PINYIN_BLOCKED_TLDS = frozenset({"jp", "tw", "hk", "mo", "kr"})
"""Where Han characters are not romanized in pinyin (Japanese readings, Wade-Giles in Taiwan, Cantonese in Hong
Kong and Macau): a Han name at such a domain gives no guess rather than a wrong one."""
_GREEK_OU = re.compile(r"\u03bf[\u03c5\u03cd]", re.IGNORECASE)  # omicron-upsilon is ou, not oy letter by letter
_CYRILLIC_ENDING = re.compile(r"(?<=[a-z])[iy]y\b", re.IGNORECASE)


def _script(char: str) -> str:
    return unicodedata.name(char, "").partition(" ")[0]


def _pinyin(first_name: str, last_name: str, domain: str) -> bool:
    """Whether a Han name is Chinese enough to be spelled in pinyin (王 伟 -> wang wei): no kana or Hangul beside
    it, a domain of no country that romanizes Han otherwise, and a family name of one character (most Chinese
    ones; most Japanese ones, 山田 or 佐藤, have two) or a compound Chinese one (欧阳), or a domain in .cn."""
    scripts = {_script(c) for c in first_name + last_name if c.isalpha()}
    if not scripts & {"CJK"} or scripts & {"HIRAGANA", "KATAKANA", "HANGUL"}:
        return False
    tld = domain.lower().rstrip(".").rpartition(".")[2]
    family = last_name.strip()
    return tld not in _PINYIN_BLOCKED_TLDS and (len(family) == 1 or family in HAN_COMPOUND_FAMILY_NAMES or tld == "cn")


def _ascii(name: str, *, pinyin: bool) -> str:
    """``name`` transliterated to ASCII (spaces and hyphens kept), letters of scripts left out dropped."""
    if name.isascii():  # most names, and every word of a search result the LinkedIn matcher spells
        return name
    name = _GREEK_OU.sub("ou", unicodedata.normalize("NFC", name))
    kept = "".join(
        c
        for c in name
        if c.isascii() or unicodedata.combining(c) or _script(c) in _SCRIPTS or (pinyin and _script(c) == "CJK")
    )
    return anyascii(kept)


def spellings(first_name: str, last_name: str, domain: str = "") -> list[tuple[str, str]]:
    """The person's (first, last) name in ASCII as mail systems spell it, the likelier spelling first.

    A name in ASCII has one. Umlauts are folded (jorg muller) or spelled out (joerg mueller), spelled out first
    at a domain of a German-speaking country; a Russian name's -ий/-ый ending is written -y (dmitry) or -iy
    (dmitriy, as BGN and anyascii write it), -y first, the usual spelling in addresses; a Chinese name is its
    pinyin (see :func:`_pinyin`). Each spelling is the whole name's: mail systems do not mix them in one address.
    """
    pinyin = _pinyin(first_name, last_name, domain)
    forms = [(_ascii(first_name, pinyin=pinyin), _ascii(last_name, pinyin=pinyin))]
    if any(c in "äöüÄÖÜ" for c in first_name + last_name):
        spelled_out = (
            _ascii(first_name.translate(_UMLAUTS), pinyin=pinyin),
            _ascii(last_name.translate(_UMLAUTS), pinyin=pinyin),
        )
        tld = domain.lower().rstrip(".").rpartition(".")[2]
        forms = [spelled_out, *forms] if tld in _UMLAUT_TLDS else [*forms, spelled_out]
    if any(_script(c) == "CYRILLIC" for c in first_name + last_name):
        first, last = forms[0]
        forms.insert(0, (_CYRILLIC_ENDING.sub("y", first), _CYRILLIC_ENDING.sub("y", last)))
    return [(first, last) for first, last in dict.fromkeys(forms) if mailbox_name(first) and mailbox_name(last)]


def mailbox_name(name: str) -> str:
    """``name`` as mailboxes spell it: in ASCII (accents folded, Cyrillic and Greek transliterated), lower case,
    letters and digits only; letters of other scripts dropped."""
    return re.sub(r"[^a-z0-9]", "", _ascii(name, pinyin=False).lower())


def name_variants(name: str, *, surname: bool = False, nicknames: bool = True) -> list[str]:
    """Spellings of a name part (in ASCII: one of :func:`spellings`), the plain one first, without duplicates or
    empties."""
    words = [w for w in re.split(r"\s+", name.strip()) if w]
    variants = [mailbox_name(name)]
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


def detect_patterns(first_name: str, last_name: str, local_part: str, domain: str = "") -> list[str]:
    """The patterns that produce ``local_part`` for this person (plain spellings first, then variants)."""
    local = local_part.lower().split("+", 1)[0]
    found: list[str] = []
    for first_spelled, last_spelled in spellings(first_name, last_name, domain):
        for first in name_variants(first_spelled):
            for last in name_variants(last_spelled, surname=True):
                found.extend(p for p in PATTERNS if render(p, first, last) == local)
            if found:
                return list(dict.fromkeys(found))
    return found


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
        self._global_family_first = _smooth(total, FAMILY_FIRST_PRIORS, PRIOR_WEIGHT)

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

    def shares(self, domain: str, *, family_first: bool = False) -> dict[str, float]:
        """The domain's pattern shares, most likely first, summing to 1 (of a Chinese name written family name first
        when ``family_first``: see ``FAMILY_FIRST_PRIORS``)."""
        counts = self.domains.get(domain.lower(), Counter())
        smoothed = _smooth(counts, self._global_family_first if family_first else self._global, DOMAIN_WEIGHT)
        return dict(sorted(smoothed.items(), key=lambda kv: (-kv[1], PATTERNS.index(kv[0]))))

    def candidates(self, first_name: str, last_name: str, domain: str, limit: int = 10) -> list[Candidate]:
        """Addresses for the person at ``domain``, most probable first (at most ``limit``)."""
        shares = self.shares(domain, family_first=_pinyin(first_name, last_name, domain))
        scored: dict[str, tuple[float, str]] = {}
        for s, (first_spelled, last_spelled) in enumerate(spellings(first_name, last_name, domain)):
            firsts = name_variants(first_spelled)
            lasts = name_variants(last_spelled, surname=True)
            earlier_spellings = set(scored)
            for pattern, share in shares.items():
                for i, first in enumerate(firsts):
                    for j, last in enumerate(lasts):
                        if "{last}" not in pattern and "{l}" not in pattern and j:
                            continue
                        if "{first}" not in pattern and "{f}" not in pattern and i:
                            continue
                        local = render(pattern, first, last)
                        probability = share * SPELLING_PENALTY**s * VARIANT_PENALTY ** (min(i, 1) + min(j, 1))
                        if local in earlier_spellings:  # divanov of Dmitry and of Dmitriy Ivanov: one name
                            continue
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
