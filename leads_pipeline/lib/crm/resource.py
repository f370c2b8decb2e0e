"""What the four CRM resources share: credentials from the environment, the connector they open, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar

import dagster as dg

from leads_pipeline.lib.crm.base import Connector
from leads_pipeline.lib.crm.connection import Connection
from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.ratelimit import Pacer


class CrmResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """A CRM account. Subclasses bind their secret fields to ``dg.EnvVar`` (see defs/resources.py)."""

    timeout_s: float = 30.0

    LABEL: ClassVar[str] = "CRM"
    SECRET_ENV_VARS: ClassVar[tuple[str, ...]] = ()

    @property
    def is_configured(self) -> bool:
        raise NotImplementedError

    def require_configured(self) -> None:
        if not self.is_configured:
            names = " and ".join(self.SECRET_ENV_VARS)
            raise ConfigurationError(f"{self.LABEL} is not configured: set {names} to sync with it")

    def account(self) -> str:
        """What tells this account apart (its credentials, URL, location): its rate limit is the account's, whichever
        connection or run uses it. Only ever hashed into a bucket's key (``lib/ratelimit.py: bucket_key``)."""
        return json.dumps(self.model_dump(exclude={"timeout_s"}), sort_keys=True, default=str)

    def connector(self, connection: Connection, limiter: Pacer) -> Connector:
        """A connector for the connection's object and match key, pacing its requests through ``limiter``."""
        raise NotImplementedError


def parse_time(value: Any) -> datetime | None:
    """A CRM timestamp (ISO 8601 with Z or offset, or epoch milliseconds) as an aware datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":  # Salesforce: +0000
        text = text[:-2] + ":" + text[-2:]
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
