"""The leads a contact stage's providers could not answer for (outage, 5xx, rate limit after the client's retries).

A stage that only logged these reported them like leads with nothing to find, so a run against a provider that was
down looked like a clean run with no data. Each failed lead is kept with why (the provider and the error class,
plus the client's message, whose credentials the clients already redact); the asset counts them as
``failed_leads``, warns per provider, and records them on the job, so `leads jobs show` counts them failed, not
"no data", and the user knows to run the stage again. A failed lead gets no "nothing found" fact, so that rerun
asks again.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from leads_pipeline.lib.store.audit import mask


@dataclass
class Failures:
    reasons: dict[int, str] = field(default_factory=dict)
    """Lead id -> why it failed (the last failure when a lead met several)."""
    by_cause: Counter[str] = field(default_factory=Counter)
    """"provider (ErrorClass)" -> the leads it failed."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, provider: str, error: Exception, lead_ids: Iterable[int]) -> None:
        self.add_reason(f"{provider} ({type(error).__name__})", str(error), lead_ids)

    def add_reason(self, cause: str, message: str, lead_ids: Iterable[int]) -> None:
        """``cause`` names the provider and error class; ``message`` is masked (it may quote an address)."""
        reason = f"{cause}: {mask(message)}"
        with self.lock:
            for lead_id in lead_ids:
                self.reasons[lead_id] = reason
                self.by_cause[cause] += 1

    def __contains__(self, lead_id: object) -> bool:
        return lead_id in self.reasons

    def __len__(self) -> int:
        return len(self.reasons)
