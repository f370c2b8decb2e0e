"""Completion notifications (``notifyOnComplete``): the job summary POSTed as JSON to a webhook, once per job.

A delivery never fails the job: every error is caught, recorded in ``webhook_deliveries`` and logged. The URL
is stored and logged (:func:`safe_url`) with its host and first path segment only: webhook tokens live in the query
string, the credentials, or the rest of the path (Slack's, Discord's, Teams' and Zapier's webhooks). Only public
hosts are posted to and redirects are not followed (``clients.egress``): the URL is any user's choice.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from leads_pipeline.lib.clients.egress import deadline_session
from leads_pipeline.lib.enrichment.jobs import summary
from leads_pipeline.lib.store import enrichment as store
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.wording import plain_number

WEBHOOK_ENV = "LEADS_WEBHOOK_URL"
_QUERY = re.compile(r"\?[^\s'\")]*")
_USERINFO = re.compile(r"://[^/\s'\"@]*@")
TIMEOUT_S = 10.0
DEADLINE_S = 30.0
"""The whole exchange's bound (``TIMEOUT_S`` bounds each wait for data): a receiver sending its answer a byte at
a time would otherwise hold the sensor."""


def safe_url(url: str) -> str:
    """The URL as shown: without credentials or fragment, its query (``?token=...``) as ``?…`` and its path after
    the first segment as ``/…`` (``https://hooks.slack.com/services/T0/B0/SECRET`` becomes
    ``https://hooks.slack.com/services/…``): the host and the kind of hook still say where it went. The host and
    port as written: a port out of range (``LEADS_WEBHOOK_URL`` is not checked as ``--notify`` is) raised."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, _masked_path(parts.path), "…" if parts.query else "", ""))


def _masked_path(path: str) -> str:
    """``/first/…`` for a path with more than its first segment ("/hook/" and "/hook" stay as they are)."""
    first, _, rest = path.lstrip("/").partition("/")
    return f"/{first}/…" if rest else path


def _safe_error(exc: requests.RequestException, url: str) -> str:
    """The exception's text without the URL's secrets: requests names the path and query that failed, and a URL
    it cannot parse (a port out of range) whole, with its ``user:password@``."""
    text = _USERINFO.sub("://", _QUERY.sub("?…", str(exc)))
    first = urlsplit(url).path.lstrip("/").partition("/")[0]
    if first:  # "/services/T0/B0/SECRET" (or its percent-encoded form) -> "/services/…"
        text = re.sub(rf"/{re.escape(first)}/[^\s'\")?]+", f"/{first}/…", text)
    return f"{type(exc).__name__}: {text[:300]}"


def webhook_url(job: store.Job) -> str | None:
    """The job's own URL (from the launch or the list's settings), else ``LEADS_WEBHOOK_URL``."""
    return job.notify_url or os.environ.get(WEBHOOK_ENV) or None


def notify_completion(
    database_url: str, job_id: str, run_id: str, log: Callable[[str], None] = lambda message: None
) -> dict[str, Any] | None:
    """POST the finished job's summary to its webhook unless already delivered; returns the delivery recorded."""
    with connect(database_url) as conn:
        job = store.find_job(conn, job_id)
        if job is None or job.status in ("queued", "processing", "interrupted") or store.delivered(conn, job_id):
            return None
        url = webhook_url(job)
        if url is None:
            return None
        payload = {"event": "enrichment.completed", **summary(conn, job_id)}
    status_code: int | None = None
    error: str | None = None
    with deadline_session(DEADLINE_S) as (http, cut_off):
        try:
            # stream: only the status is wanted, and a body read to its end would let the receiver hold the
            # sensor until the deadline or fill its memory
            with http.post(
                url,
                json=payload,
                timeout=TIMEOUT_S,
                headers={"User-Agent": "leads-pipeline"},
                allow_redirects=False,
                stream=True,
            ) as response:
                status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except requests.RequestException as exc:
            error = _safe_error(exc, url)
        if status_code is None and cut_off.is_set():
            error = f"no answer within {plain_number(DEADLINE_S)} s"
    ok = error is None
    log(f"webhook for job {job_id} to {safe_url(url)}: {'delivered' if ok else error}")
    with connect(database_url) as conn:
        store.record_delivery(
            conn,
            job_id=job_id,
            run_id=run_id,
            url=safe_url(url),
            payload=payload,
            status_code=status_code,
            error=error,
            ok=ok,
        )
    return {"url": safe_url(url), "statusCode": status_code, "error": error, "delivered": ok}
