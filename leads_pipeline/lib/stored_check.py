"""The stored-lead schema run on what an import stored: on each chunk's new leads as it commits, on the import's
workers, and at the end on the batch's leads whose stored row changed since (and those the import did not create).

Run all at once at the end, beside the import's index builds, the check took ~6 CPU-s of the importing process and
~1.5 of the server for 1M leads, on a machine whose two cores the builds keep busy. While the chunks merge, the
workers wait on the import's one merging backend: they read each chunk's leads back once it is committed. A lead
whose row version (``frames.ROW_VERSION``) is the one read then is unchanged since, and is not read again.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Executor, Future
from dataclasses import dataclass

import pandas as pd

from leads_pipeline.lib.privacy.crypto import Keyring, keyring
from leads_pipeline.lib.schemas import SCHEMA_COLUMNS, SchemaFailure, validate_leads
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.frames import (
    ROW_VERSION,
    batch_lead_frames,
    batch_lead_versions,
    import_leads_between,
    newest_lead_id,
)
from leads_pipeline.lib.store.lists import Connection


@dataclass(frozen=True)
class CheckedLeads:
    """Leads the schema ran on: the row version of each as it was read (by lead id), and their failures."""

    versions: pd.Series
    failures: list[SchemaFailure]


def check_created_between(database_url: str, batch_id: str, after: int, upto: int, ring: Keyring) -> CheckedLeads:
    """The schema on the live leads the batch's import created with ids in (``after``, ``upto``]. Runs in a
    worker process: ``ring`` is the importing process's keyring (a worker's environment may name another home)."""
    versions: list[pd.Series] = []
    failures: list[SchemaFailure] = []
    with connect(database_url, autocommit=True) as conn:
        for frame in import_leads_between(conn, batch_id, after, upto, SCHEMA_COLUMNS, ring=ring):
            versions.append(frame.pop(ROW_VERSION))
            failures.extend(validate_leads(frame))
    return CheckedLeads(pd.concat(versions) if versions else pd.Series(dtype="int64"), failures)


class MergedLeadsCheck:
    """Checks the new leads of each chunk an import commits (``merged``) on its workers; ``checked`` gathers them.
    Without workers (a small import) nothing is checked early: the check at the end reads every lead."""

    def __init__(self, database_url: str, batch_id: str) -> None:
        self._database_url = database_url
        self._batch_id = batch_id
        self._conn: Connection | None = None
        self._after = 0
        self._ring = keyring()
        self._pending: list[Future[CheckedLeads]] = []

    def __enter__(self) -> MergedLeadsCheck:
        self._conn = connect(self._database_url, autocommit=True)
        self._after = newest_lead_id(self._conn)  # the import's leads come after; any before are checked at the end
        return self

    def __exit__(self, *_: object) -> None:
        for future in self._pending:
            future.cancel()
        if self._conn is not None:
            self._conn.close()

    def merged(self, workers: Executor | None) -> None:
        """A chunk was committed: the leads created since the last one are checked on ``workers``."""
        if workers is None or self._conn is None:
            return
        upto = newest_lead_id(self._conn)
        if upto > self._after:
            picklable = Keyring(dict(self._ring.keys), self._ring.active)  # without its ciphers
            self._pending.append(
                workers.submit(check_created_between, self._database_url, self._batch_id, self._after, upto, picklable)
            )
            self._after = upto

    def checked(self) -> CheckedLeads:
        """The leads checked so far (waiting for the checks under way; a check's error is raised here)."""
        results = [future.result() for future in self._pending]
        versions = [r.versions for r in results if len(r.versions)]
        return CheckedLeads(
            pd.concat(versions) if versions else pd.Series(dtype="int64"), [f for r in results for f in r.failures]
        )


def stored_failures(
    conn: Connection, batch_id: str, checked: CheckedLeads | None = None
) -> tuple[int, list[SchemaFailure]]:
    """The live leads of the batch as they are stored now, and the schema's failures on them (by lead id). Of the
    leads ``checked`` already, those whose stored row is still the one read are not read again: their failures
    stand; every other lead is read and validated."""
    if checked is None or not len(checked.versions):
        leads, failures = _validated(conn, batch_id)
    else:
        current = batch_lead_versions(conn, batch_id)
        unchanged = checked.versions.reindex(current.index).eq(current)
        stands = unchanged.reindex(pd.Index([f.index for f in checked.failures]), fill_value=False).to_numpy()
        failures = [f for f, kept in zip(checked.failures, stands, strict=True) if kept]
        changed = current.index[~unchanged.to_numpy()]
        if len(changed):
            failures += _validated(conn, batch_id, changed)[1]
        leads = len(current)
    failures.sort(key=lambda f: int(f.index))  # type: ignore[call-overload]
    return leads, failures


def _validated(conn: Connection, batch_id: str, ids: Iterable[int] | None = None) -> tuple[int, list[SchemaFailure]]:
    """The schema's failures on the live leads of the batch (with ``ids``, those of them), and how many it read."""
    read = 0
    failures: list[SchemaFailure] = []
    for frame in batch_lead_frames(conn, batch_id, SCHEMA_COLUMNS, ids=ids):
        read += len(frame)
        failures.extend(validate_leads(frame))
    return read, failures
