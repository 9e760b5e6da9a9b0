"""Screen-pop cards: the tracker's ringing interfaces, the card's words and buttons, the
caller's history, and the desk that sends and edits cards (against a recording sender)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.calls.tracker import CallTracker
from gateway.control import callbacks
from gateway.pbx.translate import AmiTranslator
from gateway.staff import card_render, history
from gateway.staff.card_render import CardFacts, Shown
from gateway.staff.cards import CardDesk
from gateway.staff.history import Booking, Interaction, OpenTask, Was
from models.db import Appointment, Call, Contact, Ddi, Notification, Role, Subscriber, User
from models.db import Voicemail as VoicemailRow
from models.events import MEMBER_EVENTS, CallOutcome, CallSnapshot, CallStatus
from models.staff import Agent, Card, CardState, TakenMessage, Task, TaskStatus
from notifiers.base import Button, PermanentError, TransientError
from sandbox.call_scripts import CallFactory

NUMBER = "+302101234567"
DDI = "2100001"
NOON = datetime(2026, 3, 12, 10, 0, tzinfo=UTC)  # 12:00 in Athens


def replay(frames: list[dict[str, str]]) -> list[CallSnapshot]:
    seen: list[CallSnapshot] = []
    tracker, translator = CallTracker(seen.append), AmiTranslator()
    for frame in frames:
        event = translator.translate(frame)
        if event is not None and not isinstance(event, MEMBER_EVENTS):
            tracker.handle(event)
    return seen


# -- the tracker: which agents ring now ---------------------------------------------------------


def test_ringing_lists_the_agents_legs_until_the_answer() -> None:
    frames = CallFactory().agent_answered(DDI, NUMBER, "Maria", agents=("1", "2"))
    snaps = replay(frames)
    rings = [s.ringing for s in snaps]
    assert ("PJSIP/agent1",) in rings
    assert ("PJSIP/agent1", "PJSIP/agent2") in rings
    answered = next(s for s in snaps if s.answered_at is not None)
    assert answered.ringing == () and answered.answered_by == "PJSIP/agent1"
    assert snaps[-1].ended and snaps[-1].ringing == ()


def test_ringing_ends_with_an_abandoned_call() -> None:
    snaps = replay(CallFactory().missed(DDI, NUMBER, "Maria", agents=("1", "2")))
    assert ("PJSIP/agent1", "PJSIP/agent2") in [s.ringing for s in snaps]
    assert snaps[-1].outcome is CallOutcome.ABANDONED and snaps[-1].ringing == ()


def test_a_forward_leg_is_no_agent_ringing() -> None:
    snaps = replay(CallFactory().forward_answered(DDI, NUMBER, "Maria", "+306900000001"))
    assert all(s.ringing == () for s in snaps)


# -- the card's words ---------------------------------------------------------------------------


def facts(**changes: object) -> CardFacts:
    base = CardFacts(
        subscriber="Dr Papadopoulos' office",
        subscriber_language="en",
        timezone="Europe/Athens",
        greeting="",
        instructions="Urgent: put through to the doctor.",
        scenario="agent",
        diary=[Booking(NOON + timedelta(hours=1), "Ann Smith")],
        caller_number=NUMBER,
        caller_name="MARIA N",
        contact="Maria Nikou",
        history=[Interaction(NOON - timedelta(days=1), Was.CALL_MISSED)],
        tasks=[OpenTask("Send the lab results", NOON + timedelta(days=1))],
        at=NOON,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("utc_hour", "said"),
    [(5, "Good morning"), (9, "Good morning"), (10, "Good afternoon"), (16, "Good evening")],
)
def test_the_default_greeting_follows_the_subscribers_time_of_day(utc_hour: int, said: str) -> None:
    at = NOON.replace(hour=utc_hour)  # Athens is UTC+2 in March
    assert card_render.greeting(facts(at=at)) == f"{said}, Dr Papadopoulos' office"


def test_the_subscribers_greeting_wins_and_the_default_is_in_their_language() -> None:
    assert card_render.greeting(facts(greeting=" Ιατρείο, καλημέρα ")) == "Ιατρείο, καλημέρα"
    greek = facts(subscriber="Ιατρείο", subscriber_language="el", at=NOON.replace(hour=7))
    assert card_render.greeting(greek) == "Καλημέρα σας, Ιατρείο"


def test_the_body_says_who_what_and_the_callers_history() -> None:
    text = card_render.body("en", facts())
    lines = text.splitlines()
    assert lines[0] == "📞 Call for Dr Papadopoulos' office"
    assert lines[1] == "Say: “Good afternoon, Dr Papadopoulos' office”"
    assert "Instructions: Urgent: put through to the doctor." in lines
    assert "Now: Our secretary answers" in lines
    assert "Diary today: 1:00\u202fPM Ann Smith" in lines  # babel: a narrow space
    assert f"Caller: Maria Nikou ({NUMBER})" in lines
    assert "Last interactions:" in lines
    assert any(line.startswith("• ") and line.endswith("· call, missed") for line in lines)
    assert any(line.startswith("Open task: Send the lab results (due ") for line in lines)


def test_a_new_caller_and_an_agent_reading_russian() -> None:
    text = card_render.body("ru", facts(contact=None, history=[], tasks=[], diary=[]))
    assert f"Звонящий: новый (MARIA N, {NUMBER})" in text
    assert "Ранее не обращался." in text
    assert "Записи на сегодня: нет" in text


def test_buttons_while_live_and_after() -> None:
    live = card_render.buttons("en", 7, live_for_you=True)
    after = card_render.buttons("en", 7, live_for_you=False)
    assert [[b.text for b in row] for row in live] == [
        ["Take message", "Request", "Appointment"],
        ["Task", "Transfer"],
    ]
    assert [[b.data for b in row] for row in after] == [["cd:7:msg", "cd:7:task"]]
    assert callbacks.unpack_card("cd:7:xfer") == (7, "xfer")
    for forged in ("cd:7:rm", "cd:0:msg", "cd:x:msg", "cd:7", "tk:7:msg", "cd:7:msg:1"):
        assert callbacks.unpack_card(forged) is None


def test_status_lines() -> None:
    assert card_render.status_line("en", Shown.ANSWERED_BY, "Maria") == "☑️ Answered by Maria"
    assert card_render.status_line("en", Shown.HUNG_UP) == "❌ Caller hung up"
    ended = card_render.status_line("el", Shown.ANSWERED_BY_YOU, ended=True)
    assert ended == "✅ Απαντήθηκε από εσάς · Η κλήση τελείωσε"


# -- the caller's history -----------------------------------------------------------------------


async def subscriber(name: str = "Office", ddi: str = DDI) -> Subscriber:
    s = await Subscriber.create(name=name, timezone="Europe/Athens", instructions="Be kind.")
    await Ddi.create(number=ddi, subscriber=s)
    return s


async def seed_history(s: Subscriber, base: datetime) -> None:
    """Six interactions an hour apart (the newest last), one of them another caller's."""

    def at(hours: int) -> datetime:
        return base + timedelta(hours=hours)

    call = await Call.create(
        linkedid="old.1", subscriber=s, caller_number=NUMBER, started_at=at(0),
        outcome=CallOutcome.ABANDONED, status=CallStatus.LOST,
    )  # fmt: skip
    voicemail_call = await Call.create(
        linkedid="old.2", subscriber=s, caller_number=NUMBER, started_at=at(1),
        outcome=CallOutcome.VOICEMAIL, status=CallStatus.NOT_ANSWERED,
    )  # fmt: skip
    await VoicemailRow.create(
        key="vm1", mailbox="1001@default", subscriber=s, call=voicemail_call,
        caller_number=NUMBER, left_at=at(1), audio_path="x.wav", transcript="Please call me",
    )  # fmt: skip
    fax = await Notification.create(
        dedupe_key="fax:1", subscriber=s, kind="fax", payload={"caller_number": NUMBER, "pages": 2}
    )
    await Notification.filter(id=fax.id).update(created_at=at(2))
    appointment = await Appointment.create(
        subscriber=s, starts_at=at(48), ends_at=at(49), name="Maria", note=NUMBER, uid="u1"
    )
    await Appointment.filter(id=appointment.id).update(created_at=at(3))
    taken = await TakenMessage.create(
        kind="message", subscriber=s, caller_number=NUMBER, text="Results ready?", linkedid="old.5"
    )
    await TakenMessage.filter(id=taken.id).update(taken_at=at(4))
    await Call.create(
        linkedid="old.5", subscriber=s, caller_number=NUMBER, started_at=at(4),
        outcome=CallOutcome.ANSWERED, status=CallStatus.ANSWERED,
    )  # fmt: skip  # told as its message
    await Call.create(
        linkedid="other", subscriber=s, caller_number="+302100000000", started_at=at(5),
        outcome=CallOutcome.ANSWERED, status=CallStatus.ANSWERED,
    )  # fmt: skip
    assert call.id


async def test_the_three_newest_interactions_of_that_caller(db: str) -> None:
    s = await subscriber()
    await seed_history(s, NOON - timedelta(days=1))
    got = await history.interactions(s.id, NUMBER)
    assert [i.was for i in got] == [Was.MESSAGE, Was.BOOKED, Was.FAX]
    assert got[0].detail == "Results ready?" and got[2].detail == "2"
    more = await history.interactions(s.id, NUMBER, last=10)
    assert [i.was for i in more][3:] == [Was.VOICEMAIL, Was.CALL_MISSED]  # the call told once
    other = await subscriber("Other", "2100002")
    assert await history.interactions(other.id, NUMBER) == []
    assert await history.interactions(s.id, "") == []


async def test_the_ringing_call_is_no_history_and_open_tasks_and_today(db: str) -> None:
    s = await subscriber()
    await Call.create(linkedid="now.1", subscriber=s, caller_number=NUMBER, started_at=NOON)
    assert await history.interactions(s.id, NUMBER, skip_linkedid="now.1") == []
    await Task.create(subscriber=s, caller_number=NUMBER, text="Call back", due_at=NOON)
    await Task.create(
        subscriber=s, caller_number=NUMBER, text="Done", due_at=NOON, status=TaskStatus.CLOSED
    )
    assert [t.text for t in await history.open_tasks(s.id, NUMBER)] == ["Call back"]
    tomorrow = NOON + timedelta(days=1)
    for name, start in (("Today", NOON + timedelta(hours=2)), ("Tomorrow", tomorrow)):
        await Appointment.create(
            subscriber=s, starts_at=start, ends_at=start + timedelta(minutes=30), name=name,
            uid=name,
        )  # fmt: skip
    assert [b.name for b in await history.today(s, NOON)] == ["Today"]


# -- the desk -----------------------------------------------------------------------------------


@dataclass
class Sent:
    chat_id: int
    message_id: int
    text: str
    buttons: list[list[Button]]


@dataclass
class RecordingSender:
    sent: list[Sent] = field(default_factory=list)
    edits: list[Sent] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)  # raised by the next calls
    _ids: int = 0

    def _fail(self) -> None:
        if self.failures:
            raise self.failures.pop(0)

    async def send(self, chat_id: int, text: str, buttons: list[list[Button]]) -> int:
        self._fail()
        self._ids += 1
        self.sent.append(Sent(chat_id, self._ids, text, buttons))
        return self._ids

    async def edit(
        self, chat_id: int, message_id: int, text: str, buttons: list[list[Button]]
    ) -> None:
        self._fail()
        self.edits.append(Sent(chat_id, message_id, text, buttons))

    def last(self, chat_id: int) -> Sent:
        return [e for e in self.sent + self.edits if e.chat_id == chat_id][-1]


async def agent(name: str, chat: int | None, interface: str, language: str = "en") -> Agent:
    user = await User.create(name=name, role=Role.AGENT, telegram_chat_id=chat, language=language)
    return await Agent.create(user=user, interface=interface)


@pytest.fixture
async def desk(db: str) -> AsyncIterator[tuple[CardDesk, RecordingSender]]:
    sender = RecordingSender()
    d = CardDesk("GR", sender, clock=lambda: NOON)
    task = asyncio.get_running_loop().create_task(d.run())
    try:
        yield d, sender
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def ringing(linkedid: str, *interfaces: str) -> CallSnapshot:
    return CallSnapshot(
        linkedid=linkedid, started_at=NOON.timestamp(), ddi=DDI, scenario="agent",
        caller_number="2101234567", caller_name="MARIA", status=CallStatus.WAITING,
        ringing=interfaces,
    )  # fmt: skip


def answered(snap: CallSnapshot, by: str, ended: bool = False) -> CallSnapshot:
    done = {"ended_at": NOON.timestamp() + 60, "outcome": CallOutcome.ANSWERED} if ended else {}
    return replace(
        snap, ringing=(), answered_at=NOON.timestamp() + 5, answered_via="agent",
        answered_by=by, status=CallStatus.IN_PROGRESS, **done,  # type: ignore[arg-type]
    )  # fmt: skip


def abandoned(snap: CallSnapshot) -> CallSnapshot:
    return replace(
        snap, ringing=(), ended_at=NOON.timestamp() + 9, outcome=CallOutcome.ABANDONED,
        status=CallStatus.LOST,
    )  # fmt: skip


async def play(d: CardDesk, *snaps: CallSnapshot) -> None:
    for snap in snaps:
        d.see(snap)
    await d.drain()


async def test_a_card_per_agent_and_call_edited_as_the_call_goes(
    desk: tuple[CardDesk, RecordingSender],
) -> None:
    d, sender = desk
    s = await subscriber()
    await Contact.create(subscriber=s, name="Maria Nikou", number=NUMBER)
    await agent("Anna", 11, "PJSIP/agent1")
    await agent("Maria", 12, "PJSIP/agent2", language="el")
    await agent("Nobody's chat", None, "PJSIP/agent3")
    one, two = ringing("c.1", "PJSIP/agent1"), ringing("c.2", "PJSIP/agent1", "PJSIP/agent2")

    both = replace(one, ringing=("PJSIP/agent1", "PJSIP/agent2", "PJSIP/agent3"))
    await play(d, one, both, two, both)  # repeated: still one card per (agent, call)
    assert sorted(c.chat_id for c in sender.sent) == [11, 11, 12, 12]  # not agent3: no chat
    assert await Card.filter(linkedid="c.1").count() == 2
    first = sender.sent[0]
    assert first.text.startswith("📞 Call for Office\nSay: “Good afternoon, Office”")
    assert f"Caller: Maria Nikou ({NUMBER})" in first.text and first.text.endswith("🔔 Ringing…")
    greek = next(c for c in sender.sent if c.chat_id == 12)
    assert "Κλήση για Office" in greek.text and "Χτυπάει…" in greek.text

    await play(d, answered(both, "PJSIP/agent2"))
    mine, theirs = sender.last(12), sender.last(11)
    assert mine.text.endswith("✅ Απαντήθηκε από εσάς") and len(mine.buttons[0]) == 3
    assert theirs.text.endswith("☑️ Answered by Maria")
    assert [[b.data.split(":")[2] for b in row] for row in theirs.buttons] == [["msg", "task"]]
    edits = len(sender.edits)
    await play(d, answered(both, "PJSIP/agent2", ended=True))
    assert len(sender.edits) == edits + 1  # only the answering agent's card: the call ended
    assert sender.last(12).text.endswith("· Η κλήση τελείωσε")
    assert [len(row) for row in sender.last(12).buttons] == [2]

    await play(d, abandoned(two))
    assert sender.last(11).text.endswith("❌ Caller hung up")
    states = {(c.linkedid, c.agent_id): c.state for c in await Card.all()}  # type: ignore[attr-defined]
    assert sorted(states.values()) == sorted(
        [CardState.TAKEN, CardState.ANSWERED, CardState.ABANDONED, CardState.ABANDONED]
    )


async def test_no_card_twice_even_after_a_restart_and_a_failed_send_is_tried_once_more(
    desk: tuple[CardDesk, RecordingSender],
) -> None:
    d, sender = desk
    await subscriber()
    await agent("Anna", 11, "PJSIP/agent1")
    sender.failures.append(TransientError("telegram: timed out"))
    await play(d, ringing("c.1", "PJSIP/agent1"))
    assert len(sender.sent) == 1  # the retry

    again = CardDesk("GR", sender, clock=lambda: NOON)  # a restarted gateway
    task = asyncio.get_running_loop().create_task(again.run())
    try:
        await play(again, ringing("c.1", "PJSIP/agent1"))
        assert len(sender.sent) == 1
        await play(again, abandoned(ringing("c.1", "PJSIP/agent1")))
        assert sender.edits[-1].message_id == sender.sent[0].message_id  # the same message
    finally:
        task.cancel()

    sender.failures.append(PermanentError("telegram: blocked"))  # not retried
    await play(d, ringing("c.2", "PJSIP/agent1"))
    assert len(sender.sent) == 1
    assert (await Card.get(linkedid="c.2")).message_id is None


async def test_after_a_restart_ringing_cards_of_ended_calls_are_finished(
    desk: tuple[CardDesk, RecordingSender],
) -> None:
    d, sender = desk
    s = await subscriber()
    await agent("Anna", 11, "PJSIP/agent1")
    await agent("Maria", 12, "PJSIP/agent2")
    await play(d, ringing("c.1", "PJSIP/agent1", "PJSIP/agent2"))
    await Call.create(
        linkedid="c.1", subscriber=s, caller_number=NUMBER, started_at=NOON, ended_at=NOON,
        outcome=CallOutcome.ANSWERED, status=CallStatus.ANSWERED, answered_by="PJSIP/agent2",
    )  # fmt: skip
    restarted = CardDesk("GR", sender)  # a restarted gateway
    assert await restarted.recover() == 2
    assert sender.last(11).text.endswith("☑️ Answered by Maria")
    assert sender.last(12).text.endswith("✅ Answered by you · Call ended")
    assert await restarted.recover() == 0


async def test_a_call_put_through_to_a_colleague_pops_the_card_with_the_note(
    desk: tuple[CardDesk, RecordingSender],
) -> None:
    """Answered already, a call rings a colleague only when it is being put through: the
    card the transfer made ahead (with its note) pops; a colleague without one gets none."""
    d, sender = desk
    await subscriber()
    await agent("Anna", 11, "PJSIP/agent1")
    boris = await agent("Boris", 12, "PJSIP/agent2")
    await agent("Chloe", 13, "PJSIP/agent3")
    call = ringing("c.1", "PJSIP/agent1")
    await play(d, call, answered(call, "PJSIP/agent1"))
    await Card.create(agent=boris, linkedid="c.1", chat_id=12, transfer_note="Wants a refund")
    put_through = replace(answered(call, "PJSIP/agent1"), ringing=("PJSIP/agent2", "PJSIP/agent3"))
    await play(d, put_through)
    assert sorted(s.chat_id for s in sender.sent) == [11, 12]
    assert "Wants a refund" in sender.last(12).text


async def test_a_call_ringing_nobody_with_a_chat_costs_no_worker(
    desk: tuple[CardDesk, RecordingSender],
) -> None:
    """Most calls of a big PBX ring agents without a linked chat: no task, no query each."""
    d, sender = desk
    await subscriber()
    await agent("Anna", 11, "PJSIP/agent1")
    await agent("Nobody's chat", None, "PJSIP/agent3")
    workers: list[str] = []
    dispatch = d._dispatch

    def counting(snap: CallSnapshot) -> None:
        dispatch(snap)
        if snap.linkedid in d._calls:
            workers.append(snap.linkedid)

    d._dispatch = counting  # type: ignore[method-assign]
    await play(d, ringing("c.9", "PJSIP/agent3"), ringing("c.8", "PJSIP/unknown"))
    assert workers == [] and sender.sent == []
    await play(d, ringing("c.7", "PJSIP/agent3", "PJSIP/agent1"))
    assert workers == ["c.7"] and [c.chat_id for c in sender.sent] == [11]
