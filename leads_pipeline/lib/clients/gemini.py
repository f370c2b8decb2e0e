"""Company research with Google Gemini (``google-genai``) grounded in Google Search, answered as typed JSON.

``google-generativeai`` is end-of-life; ``google-genai`` is its successor. The answer is constrained by
``response_schema=CompanyFacts``, so ``response.parsed`` is a ``CompanyFacts`` instance, or None when the
model's text is not valid JSON for it: the SDK does not raise then, so this module does. Sources are the pages
Google Search grounded the answer in. Structured output combined with the Google Search tool needs a Gemini 3
model: Gemini 2.x rejects that combination with HTTP 400.

Retries are this module's, not the SDK's (its ``HttpRetryOptions`` stay off): the SDK would re-send a 429'd call
after its own backoff, past the caller's rate limiter, into the very window the provider just refused. Here every
request takes a token from the caller's bucket as it goes out (an httpx request hook, so the SDK's
request building, milliseconds of CPU that other threads stretch, lies before the token, not between it and the
send); a 429 pauses that bucket for the provider's Retry-After (header, or the ``RetryInfo`` detail Gemini sends),
so every caller sharing the key waits, not just the one refused; 408/5xx and network errors back off
exponentially with jitter, then pass the bucket again.
"""

from __future__ import annotations

import threading
import time
from contextvars import ContextVar
from typing import Any, ClassVar, Final

import dagster as dg
import httpx
import httpx2
from google import genai
from google.genai import errors, types
from pydantic import BaseModel, Field, PrivateAttr

from leads_pipeline.lib.clients.http import MalformedResponseError, RetryPolicy, parse_retry_after, redact, require
from leads_pipeline.lib.errors import ConfigurationError, LeadsError, PermanentError, TransientError
from leads_pipeline.lib.ratelimit import Pacer
from leads_pipeline.lib.wording import plain_number

_CUT_SHORT: Final = frozenset({None, types.FinishReason.STOP, types.FinishReason.FINISH_REASON_UNSPECIFIED})
"""Finish reasons under which an answer that does not parse was cut or garbled on the way (asked again); any
other (SAFETY, RECITATION, BLOCKLIST, MAX_TOKENS, ...) is the model's own answer for that prompt."""


class CompanyFacts(BaseModel):
    """What the model is asked to return; every field is null when no source supports it."""

    found: bool = Field(description="Whether the company could be identified with confidence.")
    name: str | None = Field(default=None, description="The company's name.")
    website: str | None = Field(default=None, description="Homepage URL.")
    industry: str | None = None
    employee_count: int | None = None
    annual_revenue_usd: float | None = None
    technologies: list[str] = Field(default_factory=list, description="Software the company is known to use.")
    linkedin_url: str | None = None
    twitter_url: str | None = None
    facebook_url: str | None = None
    hq_city: str | None = None
    hq_country: str | None = Field(default=None, description="ISO 3166-1 alpha-2 country code of the headquarters.")


class Source(BaseModel):
    uri: str
    title: str | None = None


class CompanyResearch(CompanyFacts):
    """The model's facts plus where they came from and what the call consumed."""

    sources: list[Source] = Field(default_factory=list)
    search_queries: list[str] = Field(default_factory=list)
    model: str
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None


PROMPT = """Research the company {name}{domain_clause} using Google Search.
Report only facts that a source supports, and null for anything you cannot find; never guess.
Set found to false if you cannot identify this exact company. hq_country is an ISO 3166-1 alpha-2 code;
annual_revenue_usd is in US dollars; employee_count is a number of people."""

RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
NETWORK_ERRORS = (httpx.TimeoutException, httpx.ConnectError, httpx2.TimeoutException, httpx2.ConnectError)
"""What is retried: the statuses and network failures the SDK's own retry covers (connection refused or timed out
before an answer; a connection cut mid-answer is not retried)."""

_PACER: ContextVar[Pacer | None] = ContextVar("gemini_pacer", default=None)
"""The bucket of the call this thread is making; the client's request hook takes a token from it."""


def _pace(request: object) -> None:
    """httpx request hook: wait for a token of the current call's bucket, right before the request is sent."""
    bucket = _PACER.get()
    if bucket is not None:
        bucket.acquire()


class GeminiResource(dg.ConfigurableResource):
    """Gemini API access; ``api_key`` comes from ``GEMINI_API_KEY``."""

    api_key: str | None = Field(default=None, repr=False, description="Gemini API key (secret).")
    base_url: str | None = Field(default=None, description="API root; None means Google's endpoint.")
    api_version: str = Field(default="v1beta", description="The API version the client calls.")
    model: str = Field(default="gemini-3-flash-preview", description="The model that researches companies.")
    timeout_s: float = Field(default=60.0, description="Limit for each call, per attempt.")
    retry_attempts: int = Field(default=5, description="Attempts per call, the first one included.")
    retry_initial_delay_s: float = Field(default=1.0, description="First wait between attempts; it doubles.")
    retry_max_delay_s: float = Field(default=30.0, description="Longest wait between two attempts.")
    retry_after_max_s: float = Field(
        default=60.0, description="Longest Retry-After honoured; a 429 asking for longer fails the call."
    )
    use_google_search: bool = Field(default=True, description="Ground the answers in Google Search results.")

    ENV_VAR: ClassVar[str] = "GEMINI_API_KEY"
    URL_ENV_VAR: ClassVar[str] = "GOOGLE_GEMINI_BASE_URL"  # google-genai reads it itself when base_url is None

    _client: genai.Client | None = PrivateAttr(default=None)
    _client_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def is_configured(self) -> bool:
        return bool(self.api_key)

    def research_company(
        self, name: str, domain: str | None = None, *, limiter: Pacer | None = None
    ) -> CompanyResearch:
        """What Gemini, grounded in Google Search, finds about the company; ``found`` False if nothing.

        ``limiter`` paces every attempt (first ones and retries) of every caller sharing it, and is paused by a 429.
        """
        client = self._api()
        prompt = PROMPT.format(name=name, domain_clause=f" (website domain: {domain})" if domain else "")
        tools: types.ToolListUnion | None = (
            [types.Tool(google_search=types.GoogleSearch())] if self.use_google_search else None
        )
        config = types.GenerateContentConfig(
            tools=tools, response_mime_type="application/json", response_schema=CompanyFacts
        )
        attempt = 0
        while True:  # a cut or unreadable answer is a transport fault: asked again like a 5xx
            try:
                response, facts = self._answer(client, prompt, config, limiter, name)
                break
            except MalformedResponseError:
                attempt += 1
                if attempt >= self.retry_attempts:
                    raise
                time.sleep(self._policy().delay(attempt - 1) or 0.0)
        return CompanyResearch(
            **facts.model_dump(),
            sources=_sources(response),
            search_queries=_queries(response),
            model=self.model,
            prompt_tokens=response.usage_metadata.prompt_token_count if response.usage_metadata else None,
            output_tokens=response.usage_metadata.candidates_token_count if response.usage_metadata else None,
            total_tokens=response.usage_metadata.total_token_count if response.usage_metadata else None,
        )

    def _answer(
        self,
        client: genai.Client,
        prompt: str,
        config: types.GenerateContentConfig,
        limiter: Pacer | None,
        name: str,
    ) -> tuple[types.GenerateContentResponse, CompanyFacts]:
        """One call (with its own retries of 429s, 5xx and network errors) and its parsed facts; errors as the
        project's: a body that is not JSON, or JSON that is not ``CompanyFacts``, is a ``MalformedResponseError``."""
        try:
            response = self._generate(client, prompt, config, limiter)
        except errors.APIError as exc:
            raise self._api_error(exc) from None
        except (httpx.TimeoutException, httpx2.TimeoutException):
            raise TransientError(
                f"Gemini did not answer within {plain_number(self.timeout_s)} s ({self.retry_attempts} attempts)"
            ) from None
        except (httpx.TransportError, httpx2.TransportError) as exc:
            raise TransientError(f"could not reach Gemini: {redact(str(exc), self.api_key)}") from None
        except ValueError as exc:
            raise MalformedResponseError(
                f"Gemini answered with a body that is not valid JSON ({self.retry_attempts} attempts): "
                f"{redact(str(exc), self.api_key)}"
            ) from None
        facts = response.parsed
        candidate = response.candidates[0] if response.candidates else None
        reason = candidate.finish_reason if candidate else None
        if not isinstance(facts, CompanyFacts) and reason not in _CUT_SHORT:
            # The model declined (safety, recitation, a block list): asking again gets the same answer, so it is
            # an answer ("not found", cached as such), not a fault to retry and pay for again.
            return response, CompanyFacts(found=False)
        if not isinstance(facts, CompanyFacts):
            raise MalformedResponseError(
                f"Gemini ({self.model}) did not return JSON matching CompanyFacts for {name!r} "
                f"(finish reason {reason}, {self.retry_attempts} attempts): {(response.text or '')[:200]!r}"
            )
        return response, facts

    def _policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_retries=max(0, self.retry_attempts - 1),
            backoff_base_s=self.retry_initial_delay_s,
            backoff_max_s=self.retry_max_delay_s,
            retry_after_max_s=self.retry_after_max_s,
            statuses=RETRIED_STATUSES,
        )

    def _generate(
        self,
        client: genai.Client,
        prompt: str,
        config: types.GenerateContentConfig,
        limiter: Pacer | None,
    ) -> types.GenerateContentResponse:
        """One ``generateContent``, each attempt sent through ``limiter``; the last failure is raised as is."""
        policy = self._policy()
        pacing = _PACER.set(limiter)  # the request hook paces every send of this call, retries included
        try:
            retry = 0
            while True:
                try:
                    return client.models.generate_content(model=self.model, contents=prompt, config=config)
                except errors.APIError as exc:
                    if exc.code not in policy.statuses or retry >= policy.max_retries:
                        raise
                    hint = _retry_after(exc)
                    delay = policy.delay(retry, hint)
                    if delay is None:  # asks for longer than we wait
                        raise
                    if exc.code == 429 and limiter is not None:
                        # The key's window is full: nobody sends until the time the provider said (no jitter:
                        # the bucket spaces the callers out again after it).
                        asked = parse_retry_after(hint)
                        limiter.pause(delay if asked is None else asked)
                    else:
                        time.sleep(delay)
                except NETWORK_ERRORS:
                    if retry >= policy.max_retries:
                        raise
                    time.sleep(policy.delay(retry) or 0.0)
                retry += 1
        finally:
            _PACER.reset(pacing)

    def _api(self) -> genai.Client:
        key = require(self.api_key, provider="Gemini", env_var=self.ENV_VAR)
        with self._client_lock:
            if self._client is None:
                options = types.HttpOptions(
                    base_url=self.base_url,
                    api_version=self.api_version,
                    timeout=int(self.timeout_s * 1000),
                    client_args={"event_hooks": {"request": [_pace]}},
                )
                self._client = genai.Client(api_key=key, http_options=options)
            return self._client

    def _api_error(self, exc: errors.APIError) -> LeadsError:
        detail = f"HTTP {exc.code} {exc.status}: {redact(str(exc.message), self.api_key)}"
        if exc.code in (401, 403) or (exc.code == 400 and "api key" in str(exc.message).lower()):
            return ConfigurationError(f"Gemini rejected the API key ({detail}); check {self.ENV_VAR}")
        if exc.code == 429:
            return TransientError(
                f"Gemini is still rate limiting (Retry-After: {_retry_after(exc)} s; {self.retry_attempts} attempts "
                f"at most, Retry-After honoured up to {self.retry_after_max_s} s) ({detail})"
            )
        if exc.code == 408 or exc.code >= 500:
            return TransientError(f"Gemini failed after {self.retry_attempts} attempts ({detail})")
        return PermanentError(f"Gemini refused the request for model {self.model} ({detail})")


def _grounding(response: types.GenerateContentResponse) -> types.GroundingMetadata | None:
    candidate = response.candidates[0] if response.candidates else None
    return candidate.grounding_metadata if candidate else None


def _sources(response: types.GenerateContentResponse) -> list[Source]:
    metadata = _grounding(response)
    chunks = metadata.grounding_chunks if metadata and metadata.grounding_chunks else []
    return [Source(uri=c.web.uri, title=c.web.title) for c in chunks if c.web and c.web.uri]


def _queries(response: types.GenerateContentResponse) -> list[str]:
    metadata = _grounding(response)
    return list(metadata.web_search_queries or []) if metadata else []


def _retry_after(exc: errors.APIError) -> str | None:
    """The wait the provider asked for: the Retry-After header, else the ``RetryInfo`` detail ("1.5s")."""
    headers = getattr(exc.response, "headers", None)
    header = headers.get("Retry-After") if headers is not None else None
    if header:
        return str(header)
    error = exc.details.get("error", exc.details) if isinstance(exc.details, dict) else {}
    details: list[Any] = (error.get("details") or []) if isinstance(error, dict) else []
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = str(detail.get("retryDelay", "")).removesuffix("s")
            return delay or None
    return None
