"""Background loops: a failed round is retried, a dead task restarted, /healthz names it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.app import Gateway
from gateway.supervise import Backoff, LoopState, Supervisor, repeat
from models.settings import load_settings, with_section

QUICK = Backoff(initial=0.01, cap=0.02)


async def _sleep0() -> None:
    await asyncio.sleep(0)


class States:
    """Every (loop, state) change, with a wait for one."""

    def __init__(self, sup: Supervisor) -> None:
        self.seen: list[tuple[str, LoopState]] = []
        self._changed = asyncio.Condition()
        sup.observers.append(self._observe)

    def _observe(self, name: str, state: LoopState) -> None:
        self.seen.append((name, state))
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait(self, name: str, state: LoopState, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: (name, state) in self.seen)


async def test_a_loop_whose_round_raises_keeps_going() -> None:
    sup = Supervisor(QUICK, failing_after=2)
    states = States(sup)
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
    states = States(sup)
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


@pytest.fixture
async def gateway(db: str, tmp_path: Any) -> AsyncIterator[tuple[Gateway, str]]:
    s = load_settings(None, environ={})
    s = with_section(s, "database", url=db)
    s = with_section(s, "http", port=0)
    g = Gateway(s)
    g.supervisor = Supervisor(QUICK, max_restarts=2)
    g.ami.connected.set()  # only the loops decide here
    runner = web.AppRunner(g.web)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield g, f"http://127.0.0.1:{runner.addresses[0][1]}/healthz"
    finally:
        await g.supervisor.stop()
        await runner.cleanup()


async def _health(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def test_a_dead_loop_makes_healthz_503_naming_it(gateway: tuple[Gateway, str]) -> None:
    g, url = gateway
    sup = g.supervisor
    states = States(sup)

    async def idle() -> None:
        await asyncio.Event().wait()

    async def broken() -> None:
        raise RuntimeError("the outbox died")

    sup.start("router", idle)
    status, body = await _health(url)
    assert status == 200 and body["ok"] and body["loops"] == {"router": "running"}

    sup.start("outbox", broken)
    await states.wait("outbox", LoopState.DEAD)
    status, body = await _health(url)
    assert status == 503 and body["ok"] is False
    assert body["loops"] == {"router": "running", "outbox": "dead"}
    assert body["loop_restarts"] == {"router": 0, "outbox": 2}
    assert body["deliveries"]["pending"] == 0


async def test_a_failing_loop_makes_healthz_503(gateway: tuple[Gateway, str]) -> None:
    g, url = gateway
    sup = g.supervisor
    states = States(sup)

    async def locked() -> None:
        raise RuntimeError("database is locked")

    sup.start("escalate", lambda: repeat(sup.report("escalate"), locked, _sleep0))
    await states.wait("escalate", LoopState.FAILING)
    status, body = await _health(url)
    assert status == 503 and body["loops"] == {"escalate": "failing"}
