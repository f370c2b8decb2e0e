"""The Dagster resource the ``requests``-based provider clients derive from (ZeroBounce, NeverBounce, Twilio): its
settings and one pooled ``RetryingSession``. Apart from ``http`` so that what uses only the plumbing (the CRM
clients, photo downloads, the contact stages' estimates) does not load Dagster."""

import threading

import dagster as dg
import requests
from pydantic import PrivateAttr

from leads_pipeline.lib.clients.http import TIMEOUT_S, RetryingSession, RetryPolicy, retrying_session


class RequestsResource(dg.ConfigurableResource):
    """Connection settings shared by the ``requests``-based provider resources."""

    timeout_s: float = TIMEOUT_S
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 60.0
    trust_env: bool = True
    ca_bundle: str | None = None

    _session: RetryingSession | None = PrivateAttr(default=None)
    _session_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def retry_when(self, response: requests.Response) -> bool:
        """Which answers are worth retrying; providers with in-body throttling extend it."""
        return response.status_code in self.policy().statuses

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
                    trust_env=self.trust_env,
                    ca_bundle=self.ca_bundle,
                )
            return self._session
