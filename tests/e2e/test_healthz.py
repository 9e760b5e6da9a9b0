"""/healthz over HTTP names a loop that is dead or failing (the supervisor alone:
tests/unit/test_supervise.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from gateway.app import Gateway
from gateway.supervise import Backoff, LoopState, Supervisor, repeat
from models.settings import load_settings, with_section
from tests.stack import LoopStates, health

QUICK = Backoff(initial=0.01, cap=0.02)


async def _sleep0() -> None:
    await asyncio.sleep(0)


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


async def test_a_dead_loop_makes_healthz_503_naming_it(gateway: tuple[Gateway, str]) -> None:
    g, url = gateway
    sup = g.supervisor
    states = LoopStates(sup)

    async def idle() -> None:
        await asyncio.Event().wait()

    async def broken() -> None:
        raise RuntimeError("the outbox died")

    sup.start("router", idle)
    status, body = await health(url)
    assert status == 200 and body["ok"] and body["loops"] == {"router": "running"}

    sup.start("outbox", broken)
    await states.wait("outbox", LoopState.DEAD)
    status, body = await health(url)
    assert status == 503 and body["ok"] is False
    assert body["loops"] == {"router": "running", "outbox": "dead"}
    assert body["loop_restarts"] == {"router": 0, "outbox": 2}
    assert body["deliveries"]["pending"] == 0


async def test_a_failing_loop_makes_healthz_503(gateway: tuple[Gateway, str]) -> None:
    g, url = gateway
    sup = g.supervisor
    states = LoopStates(sup)

    async def locked() -> None:
        raise RuntimeError("database is locked")

    sup.start("escalate", lambda: repeat(sup.report("escalate"), locked, _sleep0))
    await states.wait("escalate", LoopState.FAILING)
    status, body = await health(url)
    assert status == 503 and body["loops"] == {"escalate": "failing"}
