"""Email syntax and the flags that need no network: disposable domain, free webmail, role account.

Syntax and normalization come from ``email-validator`` with deliverability checks off (the MX lookup is the
verifier's job, cached per domain). The flags come from the public lists shipped in ``leads_pipeline/data/
email_lists`` (see ATTRIBUTION.md there); refreshed copies in a folder named by ``LEADS_EMAIL_LISTS`` win.
"""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

LISTS_DIR = Path(__file__).resolve().parents[2] / "data" / "email_lists"
DISPOSABLE_FILE = "disposable_email_blocklist.conf"
FREE_FILE = "free_email_provider_domains_freemail.txt"
ROLE_FILE = "role_based_local_parts_mixmax.csv"


@dataclass(frozen=True)
class EmailLists:
    """Domains of disposable and free webmail providers, and local parts of role accounts (info@, sales@)."""

    disposable_domains: frozenset[str]
    free_domains: frozenset[str]
    role_local_parts: frozenset[str]

    @classmethod
    def load(cls, folder: Path = LISTS_DIR) -> EmailLists:
        def lines(name: str) -> frozenset[str]:
            text = (folder / name).read_text(encoding="utf-8")
            return frozenset(
                line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#")
            )

        with (folder / ROLE_FILE).open(encoding="utf-8", newline="") as handle:
            roles = frozenset(row["local_part"].strip().lower() for row in csv.DictReader(handle))
        return cls(lines(DISPOSABLE_FILE), lines(FREE_FILE), roles)


LISTS_ENV_VAR = "LEADS_EMAIL_LISTS"


@functools.cache
def default_lists() -> EmailLists:
    """The lists in ``LEADS_EMAIL_LISTS`` (a folder with refreshed copies of the three files), else the
    packaged ones; read once per process."""
    folder = os.environ.get(LISTS_ENV_VAR)
    return EmailLists.load(Path(folder) if folder else LISTS_DIR)


@dataclass(frozen=True)
class ParsedEmail:
    """An address as the verifier sees it. ``error`` is set (and the rest empty) when the syntax is invalid."""

    email: str
    local: str
    domain: str
    disposable: bool = False
    free: bool = False
    role: bool = False
    error: str | None = None

    @property
    def valid_syntax(self) -> bool:
        return self.error is None

    def flags(self) -> list[str]:
        return [name for name in ("disposable", "free", "role") if getattr(self, name)]


def parse_email(value: str, lists: EmailLists | None = None) -> ParsedEmail:
    """Normalize ``value`` (lower case, IDN domains as Unicode) and flag it; never touches the network."""
    lists = lists or default_lists()
    text = value.strip()
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        return ParsedEmail(text.lower(), "", "", error=f"invalid syntax: {error}")
    email = result.normalized.lower()
    local, _, domain = email.rpartition("@")
    ascii_domain = (result.ascii_domain or domain).lower()
    base_local = local.split("+", 1)[0]
    return ParsedEmail(
        email,
        local,
        domain,
        disposable=ascii_domain in lists.disposable_domains or _parent_listed(ascii_domain, lists.disposable_domains),
        free=ascii_domain in lists.free_domains,
        role=base_local in lists.role_local_parts,
    )


def _parent_listed(domain: str, listed: frozenset[str]) -> bool:
    """Disposable providers hand out sub-domains (x.mailinator.com): a listed parent flags them too."""
    parts = domain.split(".")
    return any(".".join(parts[i:]) in listed for i in range(1, len(parts) - 1))
