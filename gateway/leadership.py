"""Which gateway consumes the PBX's events: exactly one at a time.

Several gateways may share one PostgreSQL database (the outbox's claims are row locks, so
any of them sends any delivery), but call events must be tracked by one of them only: two
trackers would each route every call's end. The leader is the gateway that holds a
PostgreSQL session-level advisory lock, on a connection of its own kept for as long as it
leads. When that gateway dies (a crash, SIGKILL, a lost machine) its session ends, the
server releases the lock, and a standby, trying every `leader_poll` seconds, takes it.

The leader checks its lock's session every `leader_poll` seconds too: when the session is
gone (the database restarted or unreachable), it steps down at once, because another
gateway may hold the lock by now; it leads again only by taking the lock anew.

SQLite allows one gateway (it is a file on one machine): that gateway always leads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from gateway.supervise import LoopReport

log = logging.getLogger(__name__)

# The advisory lock's key: any constant; advisory locks are scoped to one database, so
# gateways of different deployments on one server (different databases) never meet.
LEADER_LOCK = 0x46_44_41_4D  # "FDAM"
CHECK_TIMEOUT = 2.0  # a lock session that does not answer a check in this time is lost

Hook = Callable[[], Awaitable[None]]


class Leadership(Protocol):
    """Tells the gateway when it starts and stops leading."""

    leading: bool

    async def run(self) -> None: ...

    async def release(self) -> None: ...


def is_postgres(url: str) -> bool:
    return url.split("://", 1)[0] in {"postgres", "postgresql", "asyncpg", "psycopg"}


def asyncpg_dsn(url: str) -> str:
    """tortoise's URL schemes for PostgreSQL, as asyncpg (libpq) spells them."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme != "postgresql" else url


class SoleLeader:
    """SQLite: one gateway, leading from the start (its logins sync with the PBX)."""

    leading = True

    async def run(self) -> None:
        await asyncio.Event().wait()  # nothing to watch: leads until stopped

    async def release(self) -> None:
        return None


class AdvisoryLockLeader:
    """PostgreSQL: lead while holding the advisory lock on a session of our own."""

    def __init__(
        self,
        url: str,
        on_elected: Hook,
        on_deposed: Hook,
        poll: float = 1.0,
        report: LoopReport | None = None,
    ) -> None:
        self._dsn = asyncpg_dsn(url)
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._poll = poll
        self.report = report or LoopReport("leader")
        self.leading = False
        self._conn: Any = None  # asyncpg.Connection holding the lock while leading
        self.elections = 0  # times this gateway took the lead (tests and /healthz)

    async def run(self) -> None:
        """Try for the lead, or check we still hold it, every `poll` seconds; forever."""
        while True:
            try:
                if self.leading:
                    await self._check()
                else:
                    await self._try()
                self.report.ok()
                await asyncio.sleep(self._poll)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away: try again, no faster than poll
                await asyncio.sleep(max(self.report.failed(exc), self._poll))

    async def _try(self) -> None:
        import asyncpg

        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn, timeout=CHECK_TIMEOUT)
        won = await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK)
        if not won:
            return
        self.leading = True
        self.elections += 1
        log.info("this gateway now leads: it consumes the PBX's events")
        try:
            await self._on_elected()
        except Exception:
            # Leading half-started is worse than not leading: give the lock back.
            log.exception("taking the lead failed; stepping down")
            await self._step_down()
            raise

    async def _check(self) -> None:
        try:
            await asyncio.wait_for(self._conn.fetchval("SELECT 1"), CHECK_TIMEOUT)
        except Exception as exc:
            log.error("lost the leader lock's database session (%r): stepping down", exc)
            await self._step_down()
            raise

    async def _step_down(self) -> None:
        self.leading = False
        conn, self._conn = self._conn, None
        try:
            await self._on_deposed()
        finally:
            if conn is not None:
                conn.terminate()  # ends the session, so the lock is surely released

    async def release(self) -> None:
        """Stopping: hand the lead over at once rather than when the session times out."""
        if self.leading:
            await self._step_down()
        elif self._conn is not None:
            self._conn.terminate()
            self._conn = None
