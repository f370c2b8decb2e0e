"""The email verification providers (``verifier_clients``) as Dagster resources: each makes its client over the
resource's pooled session, paced per API key once a stage calls ``pace``. Apart from the clients so that
``leads verify`` and ``leads find-email`` do not load Dagster.

Their default rates per API key are the clients' (``REQUESTS_PER_SECOND``, with why).
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
    neverbounce_throttled,
)


class ZeroBounceResource(RequestsResource):
    """ZeroBounce email validation (``ZeroBounceClient``); ``api_key`` comes from ``ZEROBOUNCE_API_KEY``."""

    api_key: str | None = Field(default=None, repr=False, description="ZeroBounce API key (secret).")
    base_url: str = Field(default=ZEROBOUNCE_URL, description="API root.")
    requests_per_second: float | None = Field(
        default=ZeroBounceClient.REQUESTS_PER_SECOND,
        description="Most requests a second under this key, from every run at once (published: 8,000).",
    )

    PROVIDER: ClassVar[str] = ZeroBounceClient.PROVIDER
    ENV_VAR: ClassVar[str] = ZeroBounceClient.ENV_VAR
    URL_ENV_VAR: ClassVar[str] = ZeroBounceClient.URL_ENV_VAR
    RATE_ENV_VAR: ClassVar[str] = ZeroBounceClient.RATE_ENV_VAR

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
        default=NeverBounceClient.REQUESTS_PER_SECOND,
        description="Most requests a second under this key, from every run at once (none published).",
    )

    PROVIDER: ClassVar[str] = NeverBounceClient.PROVIDER
    ENV_VAR: ClassVar[str] = NeverBounceClient.ENV_VAR
    URL_ENV_VAR: ClassVar[str] = NeverBounceClient.URL_ENV_VAR
    RATE_ENV_VAR: ClassVar[str] = NeverBounceClient.RATE_ENV_VAR

    @property
    def is_configured(self) -> bool:
        return bool(self.api_key)

    def credential(self) -> str | None:
        return self.api_key

    def retry_when(self, response: requests.Response) -> bool:
        return super().retry_when(response) or neverbounce_busy(response)

    def throttled(self, response: requests.Response) -> bool:
        return neverbounce_throttled(response)

    def client(self) -> NeverBounceClient:
        return NeverBounceClient(self.api_key, self.session(), self.base_url)

    def verify(self, email: str) -> EmailVerdict:
        return self.client().verify(email)
