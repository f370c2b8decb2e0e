"""Gemini API emulator: ``generateContent`` answering company-research prompts from the world.

``POST /v1beta/models/{model}:generateContent`` (and ``/v1/...``), key in ``x-goog-api-key`` or ``?key=``. The
emulator finds the company the prompt is about (a domain the world knows, else the company's name or alias
when the prompt gives no company domain) and answers with JSON text that fills the request's
``responseSchema`` (OpenAPI style, upper-case types) or ``responseJsonSchema`` (JSON Schema). Only properties
it recognises get world facts; everything else, and everything about a company the world does not know, is
null (or an empty list, or ``found: false``): the emulator never invents data. ``groundingMetadata`` cites the
pages the facts came from, and ``usageMetadata`` counts tokens (about four characters each).

Like the real API, Gemini 1.x/2.x models reject a Google Search tool combined with a JSON response MIME type.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from leads_pipeline.sandbox.http.common import EmulatorSettings, Request, Response, SeededIds
from leads_pipeline.sandbox.world import Company, World

_PLATFORM_DOMAINS = frozenset({"linkedin.com", "twitter.com", "x.com", "facebook.com", "google.com"})
"""Domains a research prompt names when it asks for social profiles; they never identify the company."""

_DOMAIN = re.compile(r"\b((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,})\b")

_ALIASES: dict[str, tuple[str, ...]] = {
    "found": ("found", "is_found", "exists", "company_found"),
    "name": ("name", "company_name", "legal_name"),
    "domain": ("domain", "company_domain", "primary_domain"),
    "website": ("website", "website_url", "homepage", "company_website", "url"),
    "industry": ("industry", "sector"),
    "employee_count": (
        "employee_count",
        "employees",
        "headcount",
        "number_of_employees",
        "company_size",
        "size",
    ),
    "annual_revenue": ("annual_revenue", "annual_revenue_usd", "revenue", "revenue_usd"),
    "technologies": ("technologies", "tech_stack", "technology_stack"),
    "linkedin_url": ("linkedin_url", "linkedin"),
    "twitter_url": ("twitter_url", "twitter", "x_url"),
    "facebook_url": ("facebook_url", "facebook"),
    "hq_city": ("hq_city", "city", "headquarters_city"),
    "hq_country": ("hq_country", "country", "country_code", "headquarters_country"),
    "hq_location": ("hq_location", "headquarters", "location", "hq"),
    "social_profiles": ("social_profiles", "socials", "social_links", "social_media"),
    "sources": ("sources", "source_urls"),
}
_CANONICAL = {alias: key for key, aliases in _ALIASES.items() for alias in aliases}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).casefold().replace("-", "_")


class GeminiEmulator:
    name = "gemini"

    def __init__(self, world: World, settings: EmulatorSettings, ids: SeededIds) -> None:
        self._world = world
        self._settings = settings
        self._ids = ids
        longest_first = sorted(world.companies, key=lambda c: -len(c.name))
        self._names = [(tuple(_words(n) for n in (c.name, *c.aliases)), c) for c in longest_first]

    def api_key(self, request: Request) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query.get("key")

    def error(self, status: int, retry_after_s: int | None) -> Response:
        if status == 429:
            retry = retry_after_s or 1
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry}s"}]
            message = "You exceeded your current quota, please check your plan and billing details."
            return _error(429, "RESOURCE_EXHAUSTED", message, details, [("Retry-After", str(retry))])
        if status == 503:
            return _error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        return _error(status, "INTERNAL", "An internal error has occurred. Please retry or report it.")

    def handle(self, request: Request) -> Response:
        key = self.api_key(request)
        if not key:
            return _error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers. Set an API key.")
        if not self._settings.for_provider(self.name).accepts(key):
            return _error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        match = re.fullmatch(r"/(v1|v1beta)/models/([^/:]+):generateContent", request.path)
        if request.method != "POST" or match is None:
            return _error(404, "NOT_FOUND", f"{request.method} {request.path} is not found.")
        version, model = match.groups()
        if not model.startswith("gemini-"):
            return _error(404, "NOT_FOUND", f"models/{model} is not found for API version {version}.")
        try:
            body = request.json() or {}
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        return self._generate(model, body)

    def _generate(self, model: str, body: dict[str, Any]) -> Response:
        config = body.get("generationConfig") or {}
        wants_json = config.get("responseMimeType") == "application/json"
        searches = any("googleSearch" in tool or "google_search" in tool for tool in body.get("tools") or [])
        if wants_json and searches and re.match(r"gemini-[12]\b", model):
            message = "Tool use with a response mime type: 'application/json' is unsupported"
            return _error(400, "INVALID_ARGUMENT", message)
        prompt = _prompt_text(body)
        company = self._identify(prompt)
        facts = _facts(company)
        schema = config.get("responseSchema") or config.get("responseJsonSchema")
        if schema is not None:
            text = json.dumps(_fill(schema, facts, schema))
        elif wants_json:
            text = json.dumps(facts)
        else:
            text = _prose(company)
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
        if searches:
            candidate["groundingMetadata"] = _grounding(company, prompt)
        prompt_tokens, answer_tokens = _tokens(prompt), _tokens(text)
        payload = {
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": answer_tokens,
                "totalTokenCount": prompt_tokens + answer_tokens,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
            },
            "modelVersion": model,
            "responseId": self._ids.new(22),
        }
        return Response.json(200, payload, cost=prompt_tokens + answer_tokens, cost_unit="tokens")

    def _identify(self, prompt: str) -> Company | None:
        """The company the prompt asks about, or None: a named domain decides; names only without one."""
        domains = [d for d in _DOMAIN.findall(prompt.casefold()) if d.removeprefix("www.") not in _PLATFORM_DOMAINS]
        for domain in domains:
            if company := self._world.company(domain.removeprefix("www.")):
                return company
        if domains:
            return None
        text = _words(prompt)
        return next((company for names, company in self._names if any(n in text for n in names)), None)


def _words(text: str) -> str:
    """Lower-case words, single-spaced and padded: ``_words(name) in _words(prompt)`` matches whole words."""
    return " " + " ".join(re.findall(r"[a-z0-9&]+", text.casefold())) + " "


def _error(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    error: dict[str, Any] = {"code": status, "message": message, "status": code}
    if details:
        error["details"] = details
    return Response.json(status, {"error": error}, headers or [])


def _prompt_text(body: dict[str, Any]) -> str:
    contents = list(body.get("contents") or [])
    if system := body.get("systemInstruction"):
        contents.append(system)
    return "\n".join(
        str(part.get("text", "")) for content in contents for part in content.get("parts") or [] if "text" in part
    )


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _facts(company: Company | None) -> dict[str, Any]:
    """What the world knows about the company, under the canonical keys of ``_ALIASES`` (None: unknown)."""
    if company is None:
        return {"found": False}
    location = ", ".join(p for p in (company.hq_city, company.hq_country) if p) or None
    socials = {
        "linkedin": company.linkedin_url,
        "twitter": company.twitter_url,
        "facebook": company.facebook_url,
    }
    return {
        "found": True,
        "name": company.name,
        "domain": company.domain,
        "website": f"https://www.{company.domain}",
        "industry": company.industry,
        "employee_count": company.employee_count,
        "annual_revenue": company.annual_revenue,
        "technologies": list(company.technologies),
        "linkedin_url": company.linkedin_url,
        "twitter_url": company.twitter_url,
        "facebook_url": company.facebook_url,
        "hq_city": company.hq_city,
        "hq_country": company.hq_country,
        "hq_location": location,
        "social_profiles": {k: v for k, v in socials.items() if v},
        "sources": [page for page in (f"https://www.{company.domain}", company.linkedin_url) if page],
    }


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` and pick the non-null branch of ``anyOf``/``oneOf`` (JSON Schema's nullable)."""
    while True:
        if ref := schema.get("$ref"):
            target: Any = root
            for part in str(ref).lstrip("#/").split("/"):
                target = target[part]
            schema = target
            continue
        branches = schema.get("anyOf") or schema.get("oneOf")
        if branches:
            typed = [b for b in branches if str(b.get("type", "")).lower() != "null"]
            schema = typed[0] if typed else branches[0]
            continue
        return schema


def _type(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "")
    if not kind and "properties" in schema:
        kind = "object"
    return str(kind).lower()


def _fill(schema: dict[str, Any], facts: dict[str, Any], root: dict[str, Any], key: str | None = None) -> Any:
    """A value for ``schema`` from ``facts``; ``key`` is the canonical fact the enclosing property maps to."""
    schema = _resolve(schema, root)
    kind = _type(schema)
    if kind == "object":
        properties: dict[str, Any] = schema.get("properties") or {}
        return {name: _fill(sub, facts, root, _CANONICAL.get(_snake(name))) for name, sub in properties.items()}
    value = facts.get(key) if key else None
    if kind == "array":
        return _fill_array(schema, value, facts, root)
    if value is None or isinstance(value, (dict, list)):
        return None
    return _coerce(kind, value)


def _fill_array(schema: dict[str, Any], value: Any, facts: dict[str, Any], root: dict[str, Any]) -> list[Any]:
    items = _resolve(schema.get("items") or {}, root)
    if isinstance(value, dict):  # e.g. social profiles asked for as a list
        if _type(items) == "object":
            names = [_snake(n) for n in items.get("properties") or {}]
            label = next((n for n in names if n in ("platform", "network", "name", "type", "site")), None)
            url = next((n for n in names if "url" in n or n == "link"), None)
            return [{**({label: k} if label else {}), **({url: v} if url else {})} for k, v in value.items()]
        value = list(value.values())
    if not isinstance(value, list):
        return []
    return [_coerce(_type(items), v) for v in value]


_COERCE: dict[str, Callable[[Any], Any]] = {
    "string": str,
    "integer": lambda v: round(float(v)),
    "number": float,
    "boolean": bool,
}


def _coerce(kind: str, value: Any) -> Any:
    convert = _COERCE.get(kind)
    return convert(value) if convert else value


def _grounding(company: Company | None, prompt: str) -> dict[str, Any]:
    query = f"{company.name} company profile" if company else " ".join(prompt.split()[:12])
    chunks = [{"web": {"uri": url, "title": url.split("/")[2]}} for url in _facts(company).get("sources", [])]
    return {"webSearchQueries": [query], "groundingChunks": chunks}


def _prose(company: Company | None) -> str:
    if company is None:
        return "I could not find reliable information about this company."
    facts = [f"{company.name} ({company.domain})"]
    if company.industry:
        facts.append(f"works in {company.industry}")
    if company.hq_city:
        facts.append(f"is headquartered in {company.hq_city}")
    return " ".join(facts) + "."
