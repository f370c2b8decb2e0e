"""The Dagster resource the ``requests``-based provider clients derive from (ZeroBounce, NeverBounce, Twilio): its
settings, one pooled ``RetryingSession`` and the pacing of its requests. Apart from ``http`` so that what uses only
the plumbing (the CRM clients, photo downloads, the contact stages' estimates) does not load Dagster."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import dagster as dg
import requests
from pydantic import Field, PrivateAttr

from leads_pipeline.lib.clients.http import TIMEOUT_S, RetryingSession, RetryPolicy, retrying_session
from leads_pipeline.lib.enrichment.pacing import paced_by_key
from leads_pipeline.lib.ratelimit import Pacer


class RequestsResource(dg.ConfigurableResource):
    """Connection settings shared by the ``requests``-based provider resources."""

    timeout_s: float = Field(default=TIMEOUT_S, description="Limit for each HTTP request, per attempt.")
    max_retries: int = Field(default=4, description="Retries of timeouts, network errors, 429 and 5xx answers.")
    backoff_base_s: float = Field(default=0.5, description="First wait between retries; it doubles on each retry.")
    backoff_max_s: float = Field(default=30.0, description="Longest wait between two retries.")
    retry_after_max_s: float = Field(
        default=60.0, description="Longest Retry-After honoured; an answer asking for longer fails the call."
    )
    trust_env: bool = Field(default=True, description="Take proxies and CA bundles from the environment.")
    ca_bundle: str | None = Field(
        default=None, description="A PEM file of the CAs to trust instead (e.g. the sandbox's); turns trust_env off."
    )

    requests_per_second: float | None = Field(
        default=None,
        description="Most requests a second to the provider under this key, from every run at once; unset: not paced.",
    )

    PROVIDER: ClassVar[str]
    """The provider's name in the rate buckets' keys (``bucket_key``)."""

    _session: RetryingSession | None = PrivateAttr(default=None)
    _session_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def retry_when(self, response: requests.Response) -> bool:
        """Which answers are worth retrying; providers with in-body throttling extend it."""
        return response.status_code in self.policy().statuses

    def throttled(self, response: requests.Response) -> bool:
        """Which answers other than a 429 refuse the key for its rate, pausing its bucket for every caller
        (``RetryingSession``); providers with in-body throttling say which."""
        return False

    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.backoff_base_s, self.backoff_max_s, self.retry_after_max_s)

    def session(self) -> RetryingSession:
        """One session per resource instance (connection pooling), created on first use."""
        with self._session_lock:
            if self._session is None:
                self._session = retrying_session(
                    policy=self.policy(),
                    timeout_s=self.timeout_s,
                    retry_when=self.retry_when,
                    throttled=self.throttled,
                    trust_env=self.trust_env,
                    ca_bundle=self.ca_bundle,
                )
            return self._session

    def credential(self) -> str | None:
        """What the provider counts requests by (its API key or account); the bucket is keyed by its hash."""
        raise NotImplementedError

    @contextmanager
    def paced(self, database_url: str) -> Iterator[Pacer | None]:
        """Within the block every request of this resource, each attempt, takes a slot of the provider's bucket for
        its key, kept in ``database_url`` (``SharedTokenBucket``): a stage's workers and the runs at once together
        keep ``requests_per_second``. Not paced (None) without a rate or a credential."""
        session = self.session()
        with paced_by_key(
            database_url,
            self.PROVIDER,
            self.credential(),
            self.requests_per_second,
            lambda bucket: setattr(session, "pacer", bucket),
        ) as bucket:
            yield bucket
