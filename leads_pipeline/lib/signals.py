"""Signal handlers set for a while and put back after, in the one place that knows the rules.

Only the main thread may set a handler (``leads enrich --wait`` runs its job in another thread, where Dagster sets
none either): elsewhere nothing is set or put back. A handler set outside Python reads as None and cannot be set
again from Python: it is left as it is.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType

Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers


@contextlib.contextmanager
def handlers_restored(numbers: Iterable[int], meanwhile: Handler | None = None) -> Iterator[None]:
    """Each signal of ``numbers`` handled by ``meanwhile`` (when given) inside the block, and given back the
    handler it had before when the block ends, whatever the block (or a library it calls) set meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {number: signal.getsignal(number) for number in numbers}
    try:
        if meanwhile is not None:
            for number in before:
                signal.signal(number, meanwhile)
        yield
    finally:
        for number, handler in before.items():
            if handler is not None:
                signal.signal(number, handler)
