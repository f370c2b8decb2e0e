"""What a paid email verifier answers, in the pipeline's one vocabulary (``EmailVerdict``), and the variable that
configures each verifier. Apart from the clients (``verifiers``, Dagster resources) so that the verifier engine
and the email estimate use them without loading Dagster."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final, Literal

from leads_pipeline.lib.errors import ConfigurationError

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


def chosen_verifier(choice: str, configured: Collection[str]) -> str | None:
    """The paid verifier a ``verifier`` setting picks among the configured ones ("auto": the first configured in
    ``API_KEY_ENV``'s order; "none": None). The one decision of the email stage, ``leads verify`` and the estimate of
    what the stage will pay (an estimate choosing by itself could price a verifier the stage does not ask); plain
    names so that the estimate decides without loading the Dagster resources."""
    if choice == "none":
        return None
    if choice == "auto":
        return next((name for name in API_KEY_ENV if name in configured), None)
    if choice not in configured:
        raise ConfigurationError(f"verifier {choice!r} was asked for but is not configured: set {API_KEY_ENV[choice]}")
    return choice
