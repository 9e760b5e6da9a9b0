"""Tasks through the running service on a controllable clock: the `tasks` loop pings the
assignee's chat at the due time and the supervisor's when overdue (sandbox Bot API); a
scheduled call shows as `scheduled` until the agent taps "Call now" in /tasks, which
sends the Originate (agent first) to the sandbox AMI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.runtime import Runtime
from gateway.staff.tasks import CALL_CONTEXT, GRACE
from models.database import migrate
from models.db import Call
from models.events import CallStatus
from models.staff import Task
from sandbox.ami_server import AmiServer
from sandbox.telegram_api import BotApiServer
from tests.desk_people import (
    CALLER,
    DDI,
    MARIA,
    SUPERVISOR,
    People,
    button,
    make_people,
    message_id,
    said_to,
)
from tests.stack import sandbox_settings

TOKEN = "123456:TASKS-token"
WAIT = 10.0
DUE = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Desk:
    ami: AmiServer
    bot: BotApiServer
    runtime: Runtime
    people: People
    clock: Clock


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot:
        s = sandbox_settings(tmp_path / "tasks.sqlite3", ami, bot, TOKEN)
        await migrate(s.database.url)
        runtime = Runtime(s)
        clock = Clock(DUE - timedelta(hours=1))
        runtime.gateway.tasks.clock = clock
        await runtime.start()
        try:
            await ami.wait_logged_in(timeout=WAIT)
            yield Desk(ami, bot, runtime, await make_people(), clock)
        finally:
            await runtime.stop()


async def _task(desk: Desk, is_call: bool) -> Task:
    p = desk.people
    return await desk.runtime.gateway.tasks.create(
        p.subscriber,
        "Call back about the results",
        DUE,
        created_by=p.maria,
        assignee=p.maria,
        team_id=p.team_a.id,
        is_call=is_call,
        caller_number=CALLER,
        caller_name="Anna",
    )


async def test_a_due_task_pings_its_assignee_at_its_time_and_escalates_when_overdue(
    desk: Desk,
) -> None:
    task = await _task(desk, is_call=False)
    tasks = desk.runtime.gateway.tasks
    assert await tasks.due() == 0  # an hour early: nothing (the loop sees the same)

    desk.clock.now = DUE
    ping = await desk.bot.wait_for(said_to(MARIA, "Task due: Call back"), timeout=WAIT)
    assert "For: Dr Papadopoulos" in ping.params["text"]
    assert button(ping, "Done") == f"tk:{task.id}:done"
    assert not desk.bot.messages_to(SUPERVISOR)

    desk.clock.now = DUE + GRACE
    escalated = await desk.bot.wait_for(said_to(SUPERVISOR, "Overdue task"), timeout=WAIT)
    assert "Call back about the results" in escalated.params["text"]
    row = await Task.get(id=task.id)
    assert (row.reminded_at, row.escalated_at) == (DUE, DUE + GRACE)
    assert len([c for c in desk.bot.messages_to(MARIA) if "Task due" in c.params["text"]]) == 1


async def test_a_scheduled_call_is_placed_agent_first_when_the_agent_taps_call_now(
    desk: Desk,
) -> None:
    task = await _task(desk, is_call=True)
    scheduled = await Call.get(linkedid=f"task:{task.id}")
    assert (scheduled.status, scheduled.caller_number) == (CallStatus.SCHEDULED, CALLER)

    desk.bot.inject_message(MARIA, "/tasks")
    listed = await desk.bot.wait_for(said_to(MARIA, "Task: Call back"), timeout=WAIT)
    desk.bot.inject_callback(MARIA, message_id(listed), button(listed, "Call now"))
    originate = await desk.ami.wait_action("Originate", timeout=WAIT)
    assert originate["Channel"] == "PJSIP/agent1"  # Maria's phone rings first
    assert (originate["Context"], originate["Exten"]) == (CALL_CONTEXT, CALLER)
    assert originate["CallerID"] == f'"Dr Papadopoulos" <{DDI}>'
    await desk.bot.wait_for(said_to(MARIA, "Called"), timeout=WAIT)  # the task, edited
    assert (await Task.get(id=task.id)).called_at is not None
    assert not await Call.exists(linkedid=f"task:{task.id}")
