"""The email verification providers (``verifier_clients``) as Dagster resources: each makes its client over the
resource's pooled session, paced per API key once a stage calls ``pace``. Apart from the clients so that
``leads verify`` and ``leads find-email`` do not load Dagster.

Default rates, per API key. ZeroBounce allows 80,000 ``/v2/validate`` requests in 10 seconds and blocks the key
for a minute above it (https://www.zerobounce.net/docs/api-dashboard/api-rate-limits/; older copies of the page say
50,000): 100/s stays far inside either. NeverBounce publishes no rate for ``/v4/single/check`` (only that single
checks are for one-off use and that bulk jobs are capped,
https://developers.neverbounce.com/reference/usage-guidelines) and throttles with ``throttle_triggered``: 10/s
is a conservative guess, to be raised with the account's limit.
"""

from typing import ClassVar

import requests
from pydantic import Field

from leads_pipeline.lib.clients.http_resource import RequestsResource
from leads_pipeline.lib.clients.paid_verdicts import EmailVerdict
from leads_pipeline.lib.clients.verifier_clients import (
    NEVERBOUNCE_URL,
    ZEROBOUNCE_URL,
    NeverBounceClient,
    ZeroBounceClient,
    neverbounce_busy,
)


class ZeroBounceResource(RequestsResource):
    """ZeroBounce email validation (``ZeroBounceClient``); ``api_key`` comes from ``ZEROBOUNCE_API_KEY``."""

    api_key: str | None = Field(default=None, repr=False, description="ZeroBounce API key (secret).")
    base_url: str = Field(default=ZEROBOUNCE_URL, description="API root.")
    requests_per_second: float | None = Field(
        default=100.0, description="Most requests a second under this key, from every run at once (published: 8,000)."
    )

    PROVIDER: ClassVar[str] = "zerobounce"
    ENV_VAR: ClassVar[str] = ZeroBounceClient.ENV_VAR
    URL_ENV_VAR: ClassVar[str] = ZeroBounceClient.URL_ENV_VAR
    RATE_ENV_VAR: ClassVar[str] = "ZEROBOUNCE_REQUESTS_PER_SECOND"

    @property
    def is_configured(self) -> bool:
        return bool(self.api_key)

    def credential(self) -> str | None:
        return self.api_key

    def client(self) -> ZeroBounceClient:
        return ZeroBounceClient(self.api_key, self.session(), self.base_url)

    def verify(self, email: str) -> EmailVerdict:
        return self.client().verify(email)

    def credits_remaining(self) -> int:
        return self.client().credits_remaining()


class NeverBounceResource(RequestsResource):
    """NeverBounce single verification (``NeverBounceClient``); key: ``NEVERBOUNCE_API_KEY``. Its in-body
    throttling answers (HTTP 200) are retried like a 429."""

    api_key: str | None = Field(default=None, repr=False, description="NeverBounce API key (secret).")
    base_url: str = Field(default=NEVERBOUNCE_URL, description="API root.")
    requests_per_second: float | None = Field(
        default=10.0, description="Most requests a second under this key, from every run at once (none published)."
    )

    PROVIDER: ClassVar[str] = "neverbounce"
    ENV_VAR: ClassVar[str] = NeverBounceClient.ENV_VAR
    URL_ENV_VAR: ClassVar[str] = NeverBounceClient.URL_ENV_VAR
    RATE_ENV_VAR: ClassVar[str] = "NEVERBOUNCE_REQUESTS_PER_SECOND"

    @property
    def is_configured(self) -> bool:
        return bool(self.api_key)

    def credential(self) -> str | None:
        return self.api_key

    def retry_when(self, response: requests.Response) -> bool:
        return super().retry_when(response) or neverbounce_busy(response)

    def client(self) -> NeverBounceClient:
        return NeverBounceClient(self.api_key, self.session(), self.base_url)

    def verify(self, email: str) -> EmailVerdict:
        return self.client().verify(email)
