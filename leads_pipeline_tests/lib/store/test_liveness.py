"""A run's liveness lock: held by the session of the process running it, let go when that process is done."""

from __future__ import annotations

from typing import Any

from leads_pipeline.lib.store import liveness
from leads_pipeline.lib.store.db import connect


class _SlowToEnd:
    """A session whose backend has not exited yet when ``close`` returns, as a server under load leaves it: the
    connection is closed only after the check."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.closed = False

    def execute(self, query: str) -> Any:
        return self.conn.execute(query)

    def close(self) -> None:
        self.closed = True


def test_a_run_let_go_is_free_for_the_next_process_at_once(database_url: str) -> None:
    """An import's lock was let go by closing its session, which the server does as the backend exits, after the
    close: the drop folder's check right after a finished import found it still held ("import 1 is still running
    in another process"), once in a CI run."""
    with connect(database_url, autocommit=True) as keeper, connect(database_url, autocommit=True) as other:
        assert liveness.claim(keeper, liveness.IMPORT, 1)
        assert not liveness.claim(other, liveness.IMPORT, 1)
        ending = _SlowToEnd(keeper)
        liveness.let_go(ending)  # type: ignore[arg-type]
        assert ending.closed and not keeper.closed  # its backend still there
        assert liveness.claim(other, liveness.IMPORT, 1)


def test_a_broken_session_is_closed_without_an_error(database_url: str) -> None:
    keeper = connect(database_url, autocommit=True)
    assert liveness.claim(keeper, liveness.IMPORT, 2)
    keeper.pgconn.finish()  # the server went away under it
    liveness.let_go(keeper)
    assert keeper.closed
    with connect(database_url, autocommit=True) as other:  # once its backend has seen the socket close and ended
        assert liveness.await_claim(other, liveness.IMPORT, 2, timeout_s=10)
