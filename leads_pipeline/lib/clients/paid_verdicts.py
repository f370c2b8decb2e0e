"""What a paid email verifier answers, in the pipeline's one vocabulary (``EmailVerdict``), and the variable that
configures each verifier. Apart from the clients (``verifiers``, Dagster resources) so that the verifier engine
and the email estimate use them without loading Dagster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

VerdictStatus = Literal["valid", "invalid", "catch_all", "unknown", "disposable", "spamtrap", "abuse", "do_not_mail"]


@dataclass(frozen=True)
class EmailVerdict:
    email: str
    status: VerdictStatus
    sub_status: str | None
    provider: Literal["zerobounce", "neverbounce"]
    credits: float
    raw: dict[str, Any]


API_KEY_ENV: Final[dict[str, str]] = {"zerobounce": "ZEROBOUNCE_API_KEY", "neverbounce": "NEVERBOUNCE_API_KEY"}
"""The API key's variable of each paid verifier, in the order ``verifier: auto`` picks the first configured."""
