"""Background loops that survive: a failed round is logged and retried after a capped
backoff, and a loop task that ends unexpectedly is restarted (with backoff) and recorded.

Each loop reports its rounds (`round_ok`, `round_failed`); `/healthz` reads `states()`:
  running     the task is alive and its rounds succeed (or fail less than `failing_after`
              times in a row)
  failing     alive, but its last `failing_after` rounds failed (default 1: a round fails
              only after the database refused for its whole busy timeout, or on a bug)
  restarting  the task ended unexpectedly; it is started again after a backoff
  dead        it ended `max_restarts` times in a row without a good round between: given up
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from asyncpg import InterfaceError, OperatorInterventionError, PostgresConnectionError
from tortoise.exceptions import DBConnectionError, OperationalError, TransactionManagementError

log = logging.getLogger(__name__)

LoopFactory = Callable[[], Coroutine[Any, Any, None]]


class LoopState(StrEnum):
    RUNNING = "running"
    FAILING = "failing"
    RESTARTING = "restarting"
    DEAD = "dead"


@dataclass(frozen=True)
class Backoff:
    """Doubling delay after the n-th failure in a row, capped."""

    initial: float = 0.5
    cap: float = 30.0

    def delay(self, failures: int) -> float:
        return min(self.initial * 2 ** max(failures - 1, 0), self.cap)


@dataclass
class _Loop:
    name: str
    factory: LoopFactory
    task: asyncio.Task[None] | None = None
    failures: int = 0  # rounds failed in a row
    deaths: int = 0  # task ends in a row, without a good round between
    restarts: int = 0  # ever, for the operator
    last_error: str = ""
    gave_up: bool = False
    restart: asyncio.TimerHandle | None = None


class Supervisor:
    def __init__(
        self,
        backoff: Backoff | None = None,
        failing_after: int = 1,
        max_restarts: int = 5,
    ) -> None:
        self.backoff = backoff or Backoff()
        self.failing_after = failing_after
        self.max_restarts = max_restarts
        self._loops: dict[str, _Loop] = {}
        self._stopping = False
        # Told (loop name, state) on every change of state; tests wait on it.
        self.observers: list[Callable[[str, LoopState], None]] = []

    # -- running -------------------------------------------------------------------------

    def start(self, name: str, factory: LoopFactory) -> None:
        """Run `factory()` as a task named `name`, restarting it when it ends unexpectedly."""
        loop = _Loop(name, factory)
        self._loops[name] = loop
        self._spawn(loop)

    def _spawn(self, loop: _Loop) -> None:
        loop.restart = None
        if self._stopping:
            return
        loop.task = asyncio.create_task(loop.factory(), name=loop.name)
        loop.task.add_done_callback(lambda task: self._ended(loop, task))
        self._tell(loop)

    def _ended(self, loop: _Loop, task: asyncio.Task[None]) -> None:
        if self._stopping or task.cancelled():
            return
        error = task.exception()
        loop.last_error = repr(error) if error else "returned"
        loop.deaths += 1
        if loop.deaths > self.max_restarts:
            loop.gave_up = True
            log.error(
                "loop %s died %d times in a row (%s): given up",
                loop.name,
                loop.deaths,
                loop.last_error,
                exc_info=error,
            )
            self._tell(loop)
            return
        delay = self.backoff.delay(loop.deaths)
        loop.restarts += 1
        log.error(
            "loop %s died (%s); restart %d in %.1fs",
            loop.name,
            loop.last_error,
            loop.restarts,
            delay,
            exc_info=error,
        )
        loop.restart = asyncio.get_running_loop().call_later(delay, self._spawn, loop)
        self._tell(loop)

    # -- what the loops report -----------------------------------------------------------

    def report(self, name: str) -> LoopReport:
        """What the loop named `name` calls after each round."""
        return LoopReport(name, self)

    def round_ok(self, name: str) -> None:
        loop = self._loops.get(name)
        if loop is None or (loop.failures == 0 and loop.deaths == 0):
            return
        failing = self.state(name) is LoopState.FAILING
        loop.failures = loop.deaths = 0
        if failing:
            log.info("loop %s recovered", name)
            self._tell(loop)

    def round_failed(self, name: str, error: BaseException) -> float:
        """Log a failed round; returns how long the loop should wait before the next."""
        loop = self._loops.get(name)
        failures = 1
        if loop is not None:
            loop.failures += 1
            loop.last_error = repr(error)
            failures = loop.failures
            if failures == self.failing_after:
                self._tell(loop)
        delay = self.backoff.delay(failures)
        log.error(
            "loop %s: round failed (%d in a row), next in %.1fs",
            name,
            failures,
            delay,
            exc_info=error,
        )
        return delay

    # -- health --------------------------------------------------------------------------

    def state(self, name: str) -> LoopState:
        loop = self._loops[name]
        if loop.gave_up:
            return LoopState.DEAD
        if loop.task is None or loop.task.done():
            return LoopState.RESTARTING
        if loop.failures >= self.failing_after:
            return LoopState.FAILING
        return LoopState.RUNNING

    def states(self) -> dict[str, str]:
        return {name: self.state(name).value for name in self._loops}

    def restarts(self) -> dict[str, int]:
        return {name: loop.restarts for name, loop in self._loops.items()}

    def healthy(self) -> bool:
        return all(self.state(name) is LoopState.RUNNING for name in self._loops)

    def task(self, name: str) -> asyncio.Task[None] | None:
        return self._loops[name].task

    # -- stopping ------------------------------------------------------------------------

    async def stop(self, cancel: bool = True, names: list[str] | None = None) -> None:
        """Stop restarting; cancel the tasks (or, cancel=False, wait for them to return)."""
        self._stopping = True
        chosen = [self._loops[n] for n in names] if names is not None else self._loops.values()
        tasks = []
        for loop in chosen:
            if loop.restart is not None:
                loop.restart.cancel()
            if loop.task is not None:
                if cancel:
                    loop.task.cancel()
                tasks.append(loop.task)
        await asyncio.gather(*tasks, return_exceptions=True)

    def _tell(self, loop: _Loop) -> None:
        state = self.state(loop.name)
        for observe in self.observers:
            observe(loop.name, state)


class LoopReport:
    """A loop's line to its supervisor. Without one it still logs and backs off."""

    def __init__(self, name: str, supervisor: Supervisor | None = None) -> None:
        self.name = name
        self._supervisor = supervisor
        self._failures = 0  # standalone only
        self._backoff = Backoff()

    def ok(self) -> None:
        self._failures = 0
        if self._supervisor is not None:
            self._supervisor.round_ok(self.name)

    def failed(self, error: BaseException) -> float:
        """Log the failed round; returns the pause before the next one."""
        if self._supervisor is not None:
            return self._supervisor.round_failed(self.name, error)
        self._failures += 1
        delay = self._backoff.delay(self._failures)
        log.error("%s: round failed, next in %.1fs", self.name, delay, exc_info=error)
        return delay


async def repeat(
    report: LoopReport,
    round_: Callable[[], Awaitable[object]],
    pause: Callable[[], Awaitable[object]],
) -> None:
    """round, pause, forever: a failed round is reported and followed by a backoff."""
    while True:
        try:
            await round_()
        except Exception as exc:
            await asyncio.sleep(report.failed(exc))
        else:
            report.ok()
            await pause()


def database_unavailable(error: BaseException) -> bool:
    """The database refused for now (locked by another writer, connection lost): the same
    work succeeds later, unlike a bug, which would fail forever."""
    # PostgreSQL's server unreachable, restarting or ending our sessions: tortoise passes
    # asyncpg's own errors (and the socket's OSError) through untranslated.
    unreachable = (OSError, PostgresConnectionError, InterfaceError, OperatorInterventionError)
    if isinstance(error, (DBConnectionError, *unreachable)):
        return True
    text = str(error).lower()
    return isinstance(error, OperationalError | TransactionManagementError) and any(
        word in text for word in ("locked", "busy", "connection")
    )
