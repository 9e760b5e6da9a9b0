"""Screen-pop cards over real sockets: the sandbox AMI plays calls ringing PJSIP/agent1
and PJSIP/agent2, the gateway and bot run as `main.py run` wires them, and the agents'
chats get their cards through the sandbox Bot API, then see them edited in place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.runtime import Runtime
from gateway.control import admin
from models.db import Appointment, Call, Contact, Role, Subscriber, User
from models.db import Voicemail as VoicemailRow
from models.events import CallOutcome, CallStatus
from models.staff import Agent, Card, CardState, TakenMessage, Task
from sandbox.ami_server import AmiServer
from sandbox.call_scripts import CallFactory
from sandbox.telegram_api import BotApiServer
from sandbox.telegram_api import Call as BotCall
from tests.stack import running, sandbox_settings

TOKEN = "123456:CARDS-token"
DDI = "2100001"
CALLER = "+302101234567"
ANNA, MARIA = 701, 702  # the agents' chats; their phones are PJSIP/agent1 and PJSIP/agent2
WAIT = 10.0
MORNING = datetime(2026, 3, 12, 7, 30, tzinfo=UTC)  # 09:30 in Athens
INSTRUCTIONS = "Urgent cases: put them through to the doctor's mobile."

Frames = list[dict[str, str]]


@dataclass
class Desk:
    ami: AmiServer
    bot: BotApiServer
    runtime: Runtime
    calls: CallFactory
    subscriber: Subscriber

    async def ring(self, frames: Frames) -> Frames:
        """Play a call up to where its agents ring; the rest of its frames back."""
        cut = next(i for i, f in enumerate(frames) if f["Event"] in ("DialEnd", "HangupRequest"))
        await self.ami.play(frames[:cut])
        return frames[cut:]

    async def card(self, chat: int, caller: str) -> BotCall:
        """The card sent to `chat` about `caller`'s call (waiting for it)."""
        return await self.bot.wait_for(
            lambda c: _is_card(c) and _chat(c) == chat and caller in c.params["text"], WAIT
        )

    def cards(self, chat: int, caller: str) -> list[BotCall]:
        return [
            c
            for c in self.bot.sent
            if _is_card(c) and _chat(c) == chat and caller in c.params["text"]
        ]

    async def reads(self, sent: BotCall, ending: str) -> dict[str, object]:
        """Wait until the sent card, as edited, ends with `ending`; the message then."""
        chat, message_id = _chat(sent), _message_id(sent)

        def text() -> str:
            return str((self.bot.message(chat, message_id) or {}).get("text", ""))

        await self.bot.wait_until(
            lambda: text().endswith(ending), WAIT, f"a card ending {ending!r}"
        )
        return self.bot.message(chat, message_id) or {}


def _chat(call: BotCall) -> int:
    return int(call.params["chat_id"])


def _message_id(call: BotCall) -> int:
    assert call.result is not None
    return int(call.result["message_id"])


def _is_card(call: BotCall) -> bool:
    rows = (call.params.get("reply_markup") or {}).get("inline_keyboard") or []
    return call.method == "sendMessage" and any(
        b.get("callback_data", "").startswith("cd:") for row in rows for b in row
    )


def buttons(message: dict[str, object]) -> list[str]:
    markup = message.get("reply_markup") or {}
    rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
    return [b["callback_data"].rsplit(":", 1)[1] for row in rows for b in row]


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot:
        settings = sandbox_settings(tmp_path / "cards.sqlite3", ami, bot, TOKEN)
        async with running(settings) as runtime:
            await ami.wait_logged_in(timeout=WAIT)
            runtime.gateway.cards.clock = lambda: MORNING
            created = await admin.add_subscriber(
                name="Dr Papadopoulos' office",
                ddis=[DDI],
                language="en",
                timezone="Europe/Athens",
                mobile="+306944000001",
            )
            subscriber = created.subscriber
            subscriber.instructions = INSTRUCTIONS
            await subscriber.save()
            for name, chat, interface in (
                ("Anna Georgiou", ANNA, "PJSIP/agent1"),
                ("Maria Ioannou", MARIA, "PJSIP/agent2"),
            ):
                user = await User.create(
                    name=name, role=Role.AGENT, telegram_chat_id=chat, language="en"
                )
                await Agent.create(user=user, interface=interface)
            yield Desk(ami, bot, runtime, CallFactory(), subscriber)


async def seed_history(s: Subscriber) -> None:
    """Five interactions of the caller with the subscriber, a day apart, and an open task."""
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    for day, outcome, status in (
        (0, CallOutcome.ABANDONED, CallStatus.LOST),  # the oldest two: not shown
        (1, CallOutcome.ANSWERED, CallStatus.ANSWERED),
        (3, CallOutcome.ABANDONED, CallStatus.LOST),
    ):
        await Call.create(
            linkedid=f"old.{day}", subscriber=s, caller_number=CALLER, status=status,
            outcome=outcome, started_at=start + timedelta(days=day),
        )  # fmt: skip
    voicemail = await VoicemailRow.create(
        key="vm-old", mailbox="1001@default", subscriber=s, caller_number=CALLER,
        left_at=start + timedelta(days=2), audio_path="x.wav", transcript="Please call me back",
    )  # fmt: skip
    taken = await TakenMessage.create(
        kind="message", subscriber=s, caller_number=CALLER, text="Are my results ready?"
    )
    await TakenMessage.filter(id=taken.id).update(taken_at=start + timedelta(days=4))
    await Task.create(
        subscriber=s, caller_number=CALLER, text="Send the lab results",
        due_at=start + timedelta(days=20),
    )  # fmt: skip
    await Contact.create(subscriber=s, name="Μαρία Νίκου", number=CALLER)
    await Appointment.create(
        subscriber=s, name="Ann Smith", uid="today-1",
        starts_at=MORNING + timedelta(hours=3), ends_at=MORNING + timedelta(hours=3, minutes=30),
    )  # fmt: skip
    assert voicemail.id


async def test_a_ringing_call_pops_a_card_edited_when_an_agent_answers(desk: Desk) -> None:
    await seed_history(desk.subscriber)
    frames = desk.calls.agent_answered(
        DDI, CALLER, "MARIA N", agents=("1", "2"), answered_by_index=1
    )
    linkedid = frames[0]["Linkedid"]
    rest = await desk.ring(frames)

    anna, maria = await desk.card(ANNA, CALLER), await desk.card(MARIA, CALLER)
    text = anna.params["text"]
    lines = text.splitlines()
    assert lines[:5] == [
        "📞 Call for Dr Papadopoulos' office",
        "Say: “Good morning, Dr Papadopoulos' office”",
        f"Instructions: {INSTRUCTIONS}",
        "Now: Our secretary answers",
        "Diary today: 12:30\u202fPM Ann Smith",
    ]
    assert f"Caller: Μαρία Νίκου ({CALLER})" in lines
    history = [line for line in lines if line.startswith("• ")]
    assert len(history) == 3  # exactly the three newest of five, newest first
    assert history[0].startswith("• 3/5/26, 10:00\u202fAM · message: Are my results ready?")
    assert history[1].startswith("• 3/4/26, 10:00\u202fAM · call, missed")
    assert history[2].startswith("• 3/3/26, 10:00\u202fAM · voicemail: Please call me back")
    assert any(line.startswith("Open task: Send the lab results (due ") for line in lines)
    assert lines[-1] == "🔔 Ringing…"
    assert maria.params["text"] == text  # the same card for both (both read English)
    assert buttons(maria.params) == ["msg", "req", "appt", "task", "xfer"]

    await desk.ami.play(rest)  # Maria (PJSIP/agent2) answers; later the caller hangs up
    theirs = await desk.reads(anna, "☑️ Answered by Maria Ioannou")
    mine = await desk.reads(maria, "✅ Answered by you · Call ended")
    assert buttons(theirs) == ["msg", "task"] and buttons(mine) == ["msg", "task"]
    assert str(theirs["text"]).startswith(text.rsplit("\n\n", 1)[0])  # the body stays
    await desk.runtime.gateway.drain()
    await desk.runtime.gateway.cards.drain()
    cards = {c.chat_id: c for c in await Card.filter(linkedid=linkedid)}
    assert {chat: c.state for chat, c in cards.items()} == {
        ANNA: CardState.TAKEN,
        MARIA: CardState.ANSWERED,
    }
    assert cards[ANNA].message_id == _message_id(anna)
    assert len(desk.cards(ANNA, CALLER)) == len(desk.cards(MARIA, CALLER)) == 1


async def test_an_abandoned_call_says_the_caller_hung_up(desk: Desk) -> None:
    frames = desk.calls.missed(DDI, "+302109999999", "NIKOS", agents=("1", "2"))
    rest = await desk.ring(frames)
    anna, maria = await desk.card(ANNA, "+302109999999"), await desk.card(MARIA, "+302109999999")
    assert "Caller: new caller (NIKOS, +302109999999)" in anna.params["text"]
    assert "No earlier interactions." in anna.params["text"]

    await desk.ami.play(rest)
    for sent in (anna, maria):
        message = await desk.reads(sent, "❌ Caller hung up")
        assert buttons(message) == ["msg", "task"]


async def test_calls_waiting_at_once_each_get_their_own_card(desk: Desk) -> None:
    first = desk.calls.agent_answered(DDI, "+302101111111", "ONE", agents=("1", "2"))
    second = desk.calls.missed(DDI, "+302102222222", "TWO", agents=("1", "2"))
    rest_first, rest_second = await desk.ring(first), await desk.ring(second)
    cards = {
        (chat, caller): await desk.card(chat, caller)
        for chat in (ANNA, MARIA)
        for caller in ("+302101111111", "+302102222222")
    }
    assert len({_message_id(c) for c in cards.values() if _chat(c) == ANNA}) == 2

    await desk.ami.play(rest_second)  # the second caller gives up, the first is answered
    await desk.ami.play(rest_first)
    assert str((await desk.reads(cards[(ANNA, "+302102222222")], "❌ Caller hung up"))["text"])
    await desk.reads(cards[(MARIA, "+302102222222")], "❌ Caller hung up")
    await desk.reads(cards[(ANNA, "+302101111111")], "✅ Answered by you · Call ended")
    await desk.reads(cards[(MARIA, "+302101111111")], "☑️ Answered by Anna Georgiou")
    for key in cards:
        assert len(desk.cards(*key)) == 1
