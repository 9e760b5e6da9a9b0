"""The console of calls, driven through the sandbox Bot API against the sandbox AMI, with
the gateway and bot as `main.py run` composes them: every status of the console produced
by its real path and shown by /console.

- unknown: a call ringing when the PBX restarts (reconciliation cannot say how it ended);
- lost, not answered, answered, forwarded: the sandbox's call scripts played to the end;
- waiting, in progress: the same scripts stopped while the agents ring / while they talk;
- not started: a call's first channel, before our dialplan routes it (FrontdeskCall);
- scheduled: "Call back" on the lost call in the console (an outgoing call, recorded) and
  a scheduled call taken at the desk.

A supervisor's /console is refused and audited.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.runtime import Runtime
from gateway.control import admin
from gateway.staff import people
from gateway.staff.replies import NOT_YOURS
from locales import tr
from models.database import migrate
from models.db import AuditEntry, Call, CallDirection, Subscriber
from models.events import CallSnapshot, CallStatus
from models.staff import Agent
from sandbox.ami_server import AmiServer, header
from sandbox.call_scripts import CallFactory
from sandbox.telegram_api import BotApiServer
from sandbox.telegram_api import Call as BotCall
from tests.desk_people import button, message_id, said_to
from tests.stack import sandbox_settings

TOKEN = "123456:TEST-console"
DIRECTOR_CHAT, SUPERVISOR_CHAT = 9101, 9102
DDI = "2100099"
MOBILE = "+306944000555"
WAIT = 10.0
Frames = list[dict[str, str]]
CALLERS = {
    CallStatus.UNKNOWN: "+302100000001",
    CallStatus.LOST: "+302100000002",
    CallStatus.NOT_ANSWERED: "+302100000003",
    CallStatus.ANSWERED: "+302100000004",
    CallStatus.FORWARDED: "+302100000005",
    CallStatus.WAITING: "+302100000006",
    CallStatus.IN_PROGRESS: "+302100000007",
    CallStatus.NOT_STARTED: "+302100000008",
    CallStatus.SCHEDULED: "+302100000009",  # the scheduled call taken at the desk
}


@dataclass
class Desk:
    ami: AmiServer
    bot: BotApiServer
    runtime: Runtime
    calls: CallFactory

    def observe(self, linkedid: str, ok: Callable[[CallSnapshot], bool]) -> asyncio.Event:
        """Set once the gateway has routed a snapshot of that call that is `ok`."""
        seen = asyncio.Event()

        def observer(snap: CallSnapshot) -> None:
            if snap.linkedid == linkedid and ok(snap):
                seen.set()

        self.runtime.gateway.observers.append(observer)
        return seen

    async def play(self, frames: Frames, ok: Callable[[CallSnapshot], bool]) -> None:
        """Play frames of one call; return once the gateway has routed a snapshot `ok`."""
        seen = self.observe(frames[0]["Linkedid"], ok)
        await self.ami.play(frames, chunk_sizes=[256])
        await asyncio.wait_for(seen.wait(), WAIT)

    async def say(self, chat: int, text: str, answer: str) -> BotCall:
        before = {id(c) for c in self.bot.requests}
        self.bot.inject_message(chat, text)
        match = said_to(chat, answer)
        return await self.bot.wait_for(lambda c: id(c) not in before and match(c), timeout=WAIT)

    async def tap(self, chat: int, shown: BotCall, label: str, answer: str) -> BotCall:
        """Press a button of what the bot showed; what it becomes (edited or new)."""
        before = {id(c) for c in self.bot.requests}
        self.bot.inject_callback(chat, message_id(shown), button(shown, label))
        match = said_to(chat, answer)
        return await self.bot.wait_for(lambda c: id(c) not in before and match(c), timeout=WAIT)


def _until(frames: Frames, event: str) -> Frames:
    """The frames before the first `event` (a UserEvent by its name)."""
    for i, frame in enumerate(frames):
        if event in (frame.get("Event"), frame.get("UserEvent")):
            return frames[:i]
    raise AssertionError(f"no {event} in the script")


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot:
        settings = sandbox_settings(tmp_path / "console.sqlite3", ami, bot, TOKEN)
        await migrate(settings.database.url)
        runtime = Runtime(settings)
        await runtime.start()
        try:
            await runtime.gateway.wait_synced(after=0, timeout=WAIT)
            await admin.add_subscriber(
                name="Dr Console", ddis=[DDI], language="en", timezone="Europe/Athens",
                mobile=MOBILE,
            )  # fmt: skip
            dora = await people.add_staff(name="Dora", role="director", interface="PJSIP/200")
            sofia = await people.add_staff(name="Sofia", role="supervisor", interface="PJSIP/201")
            await people.add_team("Front", sofia.agent.id)
            await people.add_staff(
                name="Maria", role="agent", team="Front", interface="PJSIP/agent101"
            )
            for chat, made in ((DIRECTOR_CHAT, dora), (SUPERVISOR_CHAT, sofia)):
                bot.inject_message(chat, f"/start {made.link_code}")
                await bot.wait_for(said_to(chat, "Linked to the desk as"), timeout=WAIT)
            yield Desk(ami, bot, runtime, CallFactory(start_epoch=1795339700))
        finally:
            await runtime.stop()


def _line_of(text: str, number: str) -> str:
    [line] = [line for line in text.splitlines() if number in line]
    return line


async def test_every_status_comes_from_its_path_and_shows_in_the_console(desk: Desk) -> None:
    calls, gateway = desk.calls, desk.runtime.gateway
    c = CALLERS

    # unknown: ringing when the PBX restarts; the catch-up on login cannot tell its end.
    ringing = _until(calls.missed(DDI, c[CallStatus.UNKNOWN], ""), "HangupRequest")
    await desk.play(ringing, lambda s: s.status is CallStatus.WAITING)
    ended = desk.observe(ringing[0]["Linkedid"], lambda s: s.status is CallStatus.UNKNOWN)
    syncs = gateway.pbx_syncs
    await desk.ami.restart()
    await gateway.wait_synced(after=syncs, timeout=WAIT)
    await asyncio.wait_for(ended.wait(), WAIT)

    # The final statuses, each from a whole call.
    def over(s: CallSnapshot) -> bool:
        return s.ended

    await desk.play(calls.missed(DDI, c[CallStatus.LOST], ""), over)
    await desk.play(calls.voicemail_left(DDI, c[CallStatus.NOT_ANSWERED], ""), over)
    await desk.play(calls.agent_answered(DDI, c[CallStatus.ANSWERED], "", agents=("101",)), over)
    await desk.play(calls.forward_answered(DDI, c[CallStatus.FORWARDED], "", MOBILE), over)

    # not started: the first channel of a call our dialplan has not routed yet ...
    unrouted = _until(calls.missed(DDI, c[CallStatus.NOT_STARTED], ""), "FrontdeskCall")
    await desk.ami.play(unrouted, chunk_sizes=[256])
    # ... live ones, stopped: the agents ring; an agent talks (the AMI keeps the order,
    # so the unrouted channel is in the tracker once these are routed).
    waiting = _until(calls.missed(DDI, c[CallStatus.WAITING], ""), "HangupRequest")
    await desk.play(waiting, lambda s: s.status is CallStatus.WAITING)
    talking = calls.agent_answered(DDI, c[CallStatus.IN_PROGRESS], "", agents=("101",))
    await desk.play(_until(talking, "HangupRequest"), lambda s: s.status is CallStatus.IN_PROGRESS)

    # scheduled: a scheduled call taken at the desk for this afternoon.
    subscriber = await Subscriber.get(name="Dr Console")
    maria = await Agent.get(interface="PJSIP/agent101")
    await gateway.tasks.create(
        subscriber, "Call back", datetime.now(UTC) + timedelta(minutes=1), created_by=maria,
        assignee=maria, team_id=None, is_call=True, caller_number=c[CallStatus.SCHEDULED],
    )  # fmt: skip

    shown = await desk.say(DIRECTOR_CHAT, "/console", "Calls, today:")
    text = str(shown.params["text"])
    live, recent = text.split("Recent calls")
    assert "Live calls" in live
    for status, words in (
        (CallStatus.NOT_STARTED, "not started"),
        (CallStatus.WAITING, "waiting · Dr Console"),
        (CallStatus.IN_PROGRESS, "in progress · Dr Console"),
    ):
        assert words in _line_of(live, c[status]), status
    assert _line_of(live, c[CallStatus.IN_PROGRESS]).endswith("Maria · in")
    for status, words in (
        (CallStatus.LOST, "lost"),
        (CallStatus.NOT_ANSWERED, "not answered"),
        (CallStatus.ANSWERED, "answered"),
        (CallStatus.FORWARDED, "forwarded"),
        (CallStatus.UNKNOWN, "unknown"),
        (CallStatus.SCHEDULED, "scheduled"),
    ):
        assert f" · {words} · Dr Console · {c[status]}" in recent, status
    assert _line_of(recent, c[CallStatus.ANSWERED]).endswith("· Maria · in")
    assert _line_of(recent, c[CallStatus.SCHEDULED]).endswith("· out")

    # The lost call's detail and its Call back: the subscriber's mobile first, then the
    # caller, through the sandbox AMI; recorded as an outgoing call.
    lost = await Call.get(caller_number=c[CallStatus.LOST])
    detail = await desk.tap(
        DIRECTOR_CHAT, shown, f"Details: {_hhmm(lost)} {lost.caller_number}", "· lost · in"
    )
    assert "Legs rung: 2" in str(detail.params["text"])
    assert "Deliveries: " in str(detail.params["text"])  # its missed-call notification
    placed = await desk.tap(DIRECTOR_CHAT, detail, "Call back", "Calling Dr Console's mobile")
    originate = await desk.ami.wait_action("Originate", timeout=WAIT)
    assert header(originate, "Channel") == f"Local/{MOBILE}@frontdesk-callback"
    assert header(originate, "Exten") == c[CallStatus.LOST]
    assert "Call back" in str(placed.params["reply_markup"])  # still lost: may call again
    out = await Call.get(direction=CallDirection.OUTBOUND, linkedid__startswith="out:")
    assert (out.status, out.caller_number) == (CallStatus.SCHEDULED, c[CallStatus.LOST])
    again = await desk.say(DIRECTOR_CHAT, "/console", "Calls, today:")
    assert f"scheduled · Dr Console · {c[CallStatus.LOST]} · out" in str(again.params["text"])

    # The status filter keeps state in the button data.
    statuses = await desk.tap(DIRECTOR_CHAT, again, "Status", "Status")
    unknown = await desk.tap(DIRECTOR_CHAT, statuses, "unknown", "Calls, today: 1")
    assert c[CallStatus.UNKNOWN] in str(unknown.params["text"])


async def test_a_supervisors_console_is_refused_and_audited(desk: Desk) -> None:
    await desk.play(desk.calls.missed(DDI, "+302100000077", ""), lambda s: s.ended)
    refused = await desk.say(SUPERVISOR_CHAT, "/console", tr("en", NOT_YOURS))
    assert "+302100000077" not in str(refused.params["text"])
    entry = await AuditEntry.get(actor=str(SUPERVISOR_CHAT), command="/console")
    assert (entry.result, entry.detail) == ("refused", "see_console")


def _hhmm(call: Call) -> str:
    return call.started_at.astimezone(ZoneInfo("Europe/Athens")).strftime("%H:%M")
