"""Working the CRM erasure queue: each deletion an erasure request owes a CRM, sent through the CRM's own client.

Per connection of the pending requests: the connection file (its CRM object) and the CRM account make a connector
(``Connector.delete``); each request is claimed (row lock, so concurrent processors never send one twice), sent
with retries and backoff (the server's Retry-After honoured) and finished in the same transaction, audited. A
404 counts as done (``absent``): the record is gone, whoever deleted it, so repeating a request is harmless.
What a retry cannot cure (a refusal) is ``failed``; what is still transient after the retries stays pending for
the next run. A connection whose file is missing or whose CRM is not configured leaves its requests pending,
with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from leads_pipeline.lib.crm.base import Connector, RetryableError
from leads_pipeline.lib.crm.connection import Connection, load_connection
from leads_pipeline.lib.crm.registry import limiter_for
from leads_pipeline.lib.crm.resource import CrmResource
from leads_pipeline.lib.crm.sync import RetrySettings
from leads_pipeline.lib.errors import ConfigurationError, LeadsError
from leads_pipeline.lib.store import crm_erasures as queue
from leads_pipeline.lib.store.db import connect, transaction


@dataclass
class ErasureReport:
    """What one pass over the queue did."""

    deleted: int = 0
    absent: int = 0
    failed: int = 0
    retry: int = 0
    blocked: dict[str, str] = field(default_factory=dict)
    """Connection -> why its requests could not be tried."""
    pending: int = 0
    """Requests still pending after the pass."""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def process_queue(
    database_url: str,
    resource_for: Callable[[Connection], CrmResource],
    *,
    actor: str,
    retry: RetrySettings | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ErasureReport:
    """Send every pending deletion; ``resource_for`` gives the CRM account of a connection (Dagster's ``crm``
    resource, or the environment for the CLI)."""
    retry = retry or RetrySettings()
    report = ErasureReport()
    with connect(database_url) as conn:
        names = [r["connection"] for r in conn.execute(
            "SELECT DISTINCT connection FROM crm_erasures WHERE status = 'pending' ORDER BY 1"
        )]  # fmt: skip
    for name in names:
        try:
            connection = load_connection(name)
            account = resource_for(connection)
            limiter = limiter_for(connection, (database_url, account))  # the account's, shared with its syncs
            connector = account.connector(connection, limiter)
        except LeadsError as exc:
            report.blocked[name] = str(exc)
            with transaction(database_url) as conn:
                queue.note_blocked(conn, name, str(exc))
            continue
        with connect(database_url) as conn:
            ids = queue.pending_ids(conn, name)
        try:
            for request_id in ids:
                with transaction(database_url) as conn:
                    request = queue.claim(conn, request_id)
                    if request is None:  # done meanwhile, or another processor holds it
                        continue
                    outcome, attempts, error = _send(connector, request["remote_id"], retry, sleep)
                    queue.finish(conn, request, outcome, attempts, actor, error)
                setattr(report, outcome, getattr(report, outcome) + 1)
        finally:
            limiter.close()
    with connect(database_url) as conn:
        report.pending = queue.counts(conn)["pending"]
    return report


def _send(
    connector: Connector, remote_id: str, retry: RetrySettings, sleep: Callable[[float], None]
) -> tuple[queue.Outcome, int, str | None]:
    """(outcome, calls made, error) of deleting one record, retrying what a retry can cure."""
    for attempt in range(1, retry.attempts + 1):
        try:
            return ("deleted" if connector.delete(remote_id) else "absent"), attempt, None
        except RetryableError as exc:
            if attempt == retry.attempts:
                return "retry", attempt, str(exc)
            sleep(retry.delay(attempt, exc.retry_after_s))
        except ConfigurationError as exc:  # credentials rejected: fixable, so the request stays pending
            return "retry", attempt, str(exc)
        except LeadsError as exc:  # the CRM refused the deletion: retrying will not change its mind
            return "failed", attempt, str(exc)
    raise AssertionError("unreachable: the loop returns on its last attempt")
