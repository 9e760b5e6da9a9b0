"""Background loops: a failed round is retried, a dead task restarted (their /healthz:
tests/e2e/test_healthz.py)."""

from __future__ import annotations

import asyncio

import asyncpg
from tortoise.exceptions import IntegrityError, OperationalError

from gateway.supervise import Backoff, LoopState, Supervisor, database_unavailable, repeat
from tests.stack import LoopStates

QUICK = Backoff(initial=0.01, cap=0.02)


async def _sleep0() -> None:
    await asyncio.sleep(0)


async def test_a_loop_whose_round_raises_keeps_going() -> None:
    sup = Supervisor(QUICK, failing_after=2)
    states = LoopStates(sup)
    rounds = 0
    done = asyncio.Event()

    async def round_() -> None:
        nonlocal rounds
        rounds += 1
        if rounds <= 3:
            raise RuntimeError(f"round {rounds} failed")
        if rounds == 5:
            done.set()

    sup.start("escalate", lambda: repeat(sup.report("escalate"), round_, _sleep0))
    await states.wait("escalate", LoopState.FAILING)
    assert not sup.healthy() and sup.states() == {"escalate": "failing"}
    await asyncio.wait_for(done.wait(), 5)
    assert sup.states() == {"escalate": "running"} and sup.healthy()
    assert sup.restarts() == {"escalate": 0}  # the same task all along
    await sup.stop()


async def test_a_loop_task_that_dies_is_restarted_and_recorded() -> None:
    sup = Supervisor(QUICK)
    states = LoopStates(sup)
    starts = 0
    second_life = asyncio.Event()

    async def loop() -> None:
        nonlocal starts
        starts += 1
        if starts == 1:
            raise RuntimeError("bug in the loop")
        second_life.set()
        await asyncio.Event().wait()

    sup.start("router", loop)
    await asyncio.wait_for(second_life.wait(), 5)
    assert ("router", LoopState.RESTARTING) in states.seen
    assert sup.states() == {"router": "running"} and sup.restarts() == {"router": 1}
    await sup.stop()


def test_an_unreachable_postgresql_is_the_database_unavailable_not_a_bug() -> None:
    """tortoise passes asyncpg's connection errors through: the router must hold its batch
    and retry (tests/faults/test_postgresql.py), not drop the calls' ends as a bug's."""
    assert database_unavailable(ConnectionRefusedError(111, "Connect call failed"))
    assert database_unavailable(asyncpg.ConnectionDoesNotExistError("connection was closed"))
    assert database_unavailable(asyncpg.CannotConnectNowError("the system is starting up"))
    assert database_unavailable(asyncpg.AdminShutdownError("terminating connection"))
    assert database_unavailable(asyncpg.InterfaceError("connection is closed"))
    assert database_unavailable(OperationalError("database is locked"))
    assert not database_unavailable(IntegrityError("duplicate key value"))
    assert not database_unavailable(ValueError("a bug"))
