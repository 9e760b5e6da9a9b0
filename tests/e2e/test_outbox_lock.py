"""Another process holds the database's write lock for 15 s while calls come in: every
notification is sent afterwards, no loop dies, and /healthz says which loop was failing.

The second writer is a real process (sqlite3, BEGIN EXCLUSIVE), as the operator's own
`main.py message` or a backup tool would be; the gateway waits `busy_timeout` (5 s) for
each lock and fails, so its router and outbox rounds fail several times in a row.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.runtime import Runtime
from gateway.control import admin
from gateway.supervise import LoopState
from models.db import Role, User
from models.settings import with_section
from sandbox.ami_server import AmiServer
from sandbox.call_scripts import CallFactory
from sandbox.telegram_api import BotApiServer, Call
from tests.stack import LoopStates, health, running, sandbox_settings

TOKEN = "135790:LOCK-token"
CHAT = 4242
DDI = "2100077"
HOLD = 15.0  # seconds the other process keeps the lock, as in the issue
CALLS = 6
WAIT = HOLD + 30.0

# The second writer: takes the write lock, says so, keeps it HOLD seconds, lets go.
LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[tuple[AmiServer, BotApiServer, Runtime]]:
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot:
        s = sandbox_settings(tmp_path / "lock.sqlite3", ami, bot, TOKEN)
        s = with_section(s, "outbox", retry_initial=0.2, retry_max=1.0)
        async with running(s) as runtime:
            created = await admin.add_subscriber(
                name="Office", ddis=[DDI], language="en", timezone="Europe/Athens"
            )
            await admin.set_contact_points(created.subscriber.id, quiet_hours="")
            await User.create(
                name="Dr",
                role=Role.SUBSCRIBER,
                telegram_chat_id=CHAT,
                subscriber=created.subscriber,
            )
            await ami.wait_logged_in(1, timeout=WAIT)
            yield ami, bot, runtime


def _healthz(runtime: Runtime) -> str:
    return f"http://127.0.0.1:{runtime.gateway.http_port}/healthz"


def _missed_call(call: Call) -> bool:
    return (
        call.method == "sendMessage"
        and str(call.params.get("chat_id")) == str(CHAT)
        and "reply_markup" in call.params
    )


@pytest.mark.sqlite_only("a second process holds BEGIN EXCLUSIVE on the database file")
async def test_a_second_writer_holding_the_lock_delays_but_loses_nothing(
    office: tuple[AmiServer, BotApiServer, Runtime], tmp_path: Path
) -> None:
    ami, bot, runtime = office
    loops = LoopStates(runtime.gateway.supervisor)
    outbox_task = runtime.gateway.supervisor.task("outbox")
    locker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOCKER,
        str(tmp_path / "lock.sqlite3"),
        str(HOLD),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert locker.stdout is not None
        assert await asyncio.wait_for(locker.stdout.readline(), WAIT) == b"locked\n"
        factory = CallFactory()
        for n in range(CALLS):
            await ami.play(factory.missed(ddi=DDI, caller_num=f"+30210000000{n}", caller_name="A"))

        # While the lock is held, routing and claiming fail (each after the busy timeout)
        # and are retried; /healthz names the loop that is failing.
        failing = await loops.first(LoopState.FAILING, WAIT)
        status, body = await health(_healthz(runtime))
        assert status == 503 and body["ok"] is False
        assert body["loops"][failing] == "failing", body
        assert not any(_missed_call(c) for c in bot.sent)
    finally:
        await asyncio.wait_for(locker.wait(), WAIT)
    assert locker.returncode == 0

    # The lock is gone: every call is routed and told, once; no loop ever died.
    await bot.wait_until(lambda: sum(map(_missed_call, bot.sent)) >= CALLS, WAIT, "the calls")
    status, body = await health(_healthz(runtime))
    assert status == 200 and body["ok"], body
    assert set(body["loops"].values()) == {"running"}
    assert set(body["loop_restarts"].values()) == {0}
    assert runtime.gateway.supervisor.task("outbox") is outbox_task and not outbox_task.done()
    assert sum(map(_missed_call, bot.sent)) == CALLS
    # Both the router and the outbox met the lock, failed rounds, and went on.
    assert {("router", LoopState.FAILING), ("outbox", LoopState.FAILING)} <= set(loops.seen)
