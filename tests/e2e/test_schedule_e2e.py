"""Office hours through the running service on a controllable clock: the schedule switches
the line to closed at 17:00 and back to agent at 09:00 local (the sandbox AMI receives each
DBPut), across the spring DST change, stays closed on a public holiday, and announces the
switch to the subscriber's Telegram chat through the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.runtime import Runtime
from gateway.control import admin
from gateway.schedule import admin as schedules
from models.database import migrate
from models.db import Subscriber
from models.schedule import ScheduleSwitch
from models.vocab import Scenario
from sandbox.ami_server import AmiServer, header
from sandbox.telegram_api import BotApiServer
from tests.desk_people import said_to
from tests.stack import sandbox_settings

TOKEN = "123456:SCHEDULE-token"
WAIT = 10.0
DDI = "2105550177"
CHAT = 7001
ATHENS = ZoneInfo("Europe/Athens")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=ATHENS)  # type: ignore[misc]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Office:
    ami: AmiServer
    bot: BotApiServer
    runtime: Runtime
    subscriber: Subscriber
    clock: Clock

    async def round(self, now: datetime) -> int:
        """One round at `now` (the loop runs on the same clock: either may do the work)."""
        self.clock.now = now
        return await self.runtime.gateway.schedule.round(now)

    async def line_becomes(self, scenario: Scenario, after: int) -> None:
        """The sandbox AMI gets a DBPut of the line's scenario after `after` actions."""

        def put() -> bool:
            return any(
                header(a, "Action") == "DBPut"
                and header(a, "Key") == f"scenario/{DDI}"
                and header(a, "Val") == scenario.value
                for a in self.ami.actions[after:]
            )

        await self.ami.wait_until(put, WAIT)
        assert self.ami.astdb[f"frontdesk/scenario/{DDI}"] == scenario.value


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[Office]:
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot:
        s = sandbox_settings(tmp_path / "schedule.sqlite3", ami, bot, TOKEN)
        await migrate(s.database.url)
        runtime = Runtime(s)
        clock = Clock(at(2025, 3, 28, 12, 0))
        runtime.gateway.schedule.clock = clock
        await runtime.start()
        try:
            await ami.wait_logged_in(timeout=WAIT)
            created = await admin.add_subscriber(
                name="Ιατρείο", ddis=[DDI], language="el", timezone="Europe/Athens"
            )
            bot.inject_message(CHAT, f"/start {created.link_code}", language_code="el")
            await bot.wait_for(said_to(CHAT, ""), timeout=WAIT)  # the welcome
            yield Office(ami, bot, runtime, created.subscriber, clock)
        finally:
            await runtime.stop()


async def test_the_schedule_switches_the_line_at_its_boundaries(office: Office) -> None:
    await schedules.set_schedule(
        office.subscriber.id,
        [schedules.parse_period("09:00-17:00=agent", schedules.WEEKDAYS)],
        "closed",
        "GR",
        announce=True,
        now=at(2025, 3, 28, 12, 0),
    )
    await office.round(at(2025, 3, 28, 16, 59))  # Friday, agent already
    assert (await Subscriber.get(id=office.subscriber.id)).scenario is Scenario.AGENT

    seen = len(office.ami.actions)
    await office.round(at(2025, 3, 28, 17, 0, 5))
    await office.line_becomes(Scenario.CLOSED, seen)
    # Announced in Greek on the linked chat, through the outbox.
    await office.bot.wait_for(said_to(CHAT, "Ωράριο γραφείου"), timeout=WAIT)

    # Monday 31 March, after the DST change: 09:00 local is 06:00 UTC.
    seen = len(office.ami.actions)
    assert await office.round(at(2025, 3, 31, 8, 59, 50)) == 0
    await office.round(at(2025, 3, 31, 9, 0, 5))
    await office.line_becomes(Scenario.AGENT, seen)
    switch = await ScheduleSwitch.filter(subscriber_id=office.subscriber.id).order_by("-boundary")
    assert switch[0].boundary == at(2025, 3, 31, 9, 0)
    assert switch[0].boundary.utcoffset() is not None


async def test_a_holiday_keeps_the_line_closed(office: Office) -> None:
    # Greece's Independence Day, 25 March 2025, is a Tuesday.
    await schedules.set_schedule(
        office.subscriber.id,
        [schedules.parse_period("09:00-17:00=agent", schedules.WEEKDAYS)],
        "closed",
        "GR",
        now=at(2025, 3, 24, 12, 0),
    )
    seen = len(office.ami.actions)
    await office.round(at(2025, 3, 24, 17, 0, 5))
    await office.line_becomes(Scenario.CLOSED, seen)
    assert await office.round(at(2025, 3, 25, 9, 0, 5)) == 0
    assert await office.round(at(2025, 3, 25, 12, 0)) == 0
    assert (await Subscriber.get(id=office.subscriber.id)).scenario is Scenario.CLOSED
    seen = len(office.ami.actions)
    await office.round(at(2025, 3, 26, 9, 0, 5))
    await office.line_becomes(Scenario.AGENT, seen)
