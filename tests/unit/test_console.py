"""The console of calls on a fixed clock: who may see it (refusals audited), live calls
first then the period's, ten a page, the filters (period, status, subscriber, agent) kept
in the button data, a call's detail, "Call back" placing the call back through Control
(the subscriber's mobile first) recorded as an outbound call, and the calls placed at the
desk (scheduled calls, listening in, putting through) recorded with their direction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.admin.console import PAGE, Console, View, period_range
from gateway.calls.tracker import CallTracker
from gateway.control import callbacks
from gateway.control.lines import Control
from gateway.staff.monitor import Monitor
from gateway.staff.replies import NOT_STAFF, NOT_YOURS, Reply
from gateway.staff.tasks import Tasks
from locales import tr
from models.db import (
    AuditEntry,
    Call,
    CallDirection,
    Delivery,
    DeliveryStatus,
    Notification,
    Role,
    Subscriber,
    User,
)
from models.events import CallerIdentified, CallSnapshot, CallStatus, ChannelOpened
from models.staff import Agent, Card
from models.vocab import Channel, Kind
from tests.desk_people import CALLER, DDI, MARIA, MOBILE, SUPERVISOR, People, make_people

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 12:00 in Athens
ATHENS = ZoneInfo("Europe/Athens")
DIRECTOR, ADMIN, STRANGER = 8201, 8202, 8299
Frame = dict[str, str]


class Link:
    """An AMI link that accepts every action and keeps it."""

    def __init__(self) -> None:
        self.sent: list[Frame] = []

    async def send_action(self, action: Frame, timeout: float = 5.0) -> Frame:
        self.sent.append(action)
        return {"Response": "Success"}

    async def send_list_action(self, action: Frame, timeout: float = 10.0) -> list[Frame]:
        self.sent.append(action)
        return []


@pytest.fixture
async def people(db: str) -> People:
    made = await make_people()
    for name, chat, role in (("Dora", DIRECTOR, Role.DIRECTOR), ("Alex", ADMIN, Role.ADMIN)):
        user = await User.create(name=name, role=role, telegram_chat_id=chat, language="en")
        await Agent.create(user=user, interface=f"PJSIP/{name.lower()}")
    return made


def console(
    link: Link | None = None, tracker: CallTracker | None = None, real_clock: bool = False
) -> Console:
    """The console at NOW; with real_clock, now (the calls placed are stamped so)."""
    control = Control(link or Link())
    unrouted = tracker.unrouted if tracker is not None else tuple
    clock = (lambda: datetime.now(UTC)) if real_clock else (lambda: NOW)
    return Console(control, unrouted, "Europe/Athens", clock=clock)


async def call(
    people: People,
    n: int,
    status: CallStatus,
    *,
    ago: timedelta = timedelta(minutes=5),
    ended: bool = True,
    answered_by: str = "",
    subscriber: Subscriber | None = None,
    direction: CallDirection = CallDirection.INBOUND,
) -> Call:
    started = NOW - ago
    return await Call.create(
        linkedid=f"test.{n}",
        ddi=DDI,
        subscriber=subscriber or people.subscriber,
        caller_number=f"+3021000000{n:02d}",
        status=status,
        answered_by=answered_by,
        direction=direction,
        legs_rung=2,
        started_at=started,
        answered_at=started + timedelta(seconds=12) if answered_by else None,
        ended_at=started + timedelta(minutes=1) if ended else None,
    )


def press(reply: Reply, label: str) -> str:
    for row in reply.buttons:
        for text, data in row:
            if text.startswith(label):
                return data
    raise AssertionError(f"no button {label!r} in {reply.buttons}")


def labels(reply: Reply) -> list[str]:
    return [text for row in reply.buttons for text, _ in row]


# -- rights -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chat", [DIRECTOR, ADMIN])
async def test_directors_and_admins_see_the_console(people: People, chat: int) -> None:
    await call(people, 1, CallStatus.LOST)
    reply = await console().open(chat, "en")
    assert not reply.refused
    assert reply.text.startswith("Calls, today: 1")


@pytest.mark.parametrize("chat", [MARIA, SUPERVISOR])
async def test_agents_and_supervisors_are_refused_and_audited(people: People, chat: int) -> None:
    await call(people, 1, CallStatus.LOST)
    c = console()
    reply = await c.open(chat, "en")
    assert reply.refused and reply.toast == tr("en", NOT_YOURS) and "+30" not in reply.text
    pressed = await c.press(chat, callbacks.console_call("d", 1), "en")
    assert pressed.refused and not pressed.text
    link = Link()
    called = await console(link).press(chat, callbacks.console_call("c", 1), "en")
    assert called.refused and link.sent == []
    refusals = await AuditEntry.filter(actor=str(chat), result="refused").order_by("id")
    assert [r.command for r in refusals] == [
        "/console",
        "console cs:d:1",
        "console call back 1",
    ]
    assert not await Call.filter(direction=CallDirection.OUTBOUND).exists()


async def test_a_chat_not_linked_to_the_desk_is_refused_and_audited(people: People) -> None:
    reply = await console().open(STRANGER, "en")
    assert reply.refused and reply.text == tr("en", NOT_STAFF)
    assert await AuditEntry.filter(actor=str(STRANGER), result="refused").count() == 1


# -- the list ---------------------------------------------------------------------------------


async def test_live_calls_come_first_then_the_recent_ones_newest_first(people: People) -> None:
    await call(people, 1, CallStatus.ANSWERED, ago=timedelta(hours=2), answered_by="PJSIP/agent1")
    await call(people, 2, CallStatus.LOST, ago=timedelta(hours=1))
    await call(people, 3, CallStatus.WAITING, ago=timedelta(minutes=1), ended=False)
    await call(people, 4, CallStatus.IN_PROGRESS, ago=timedelta(minutes=3), ended=False,
               answered_by="PJSIP/agent2")  # fmt: skip
    await call(people, 5, CallStatus.FORWARDED, ago=timedelta(minutes=4))  # forwarded, over
    await call(people, 6, CallStatus.NOT_ANSWERED, ago=timedelta(days=1))  # yesterday
    reply = await console().open(DIRECTOR, "en")
    lines = reply.text.splitlines()
    assert lines[0] == "Calls, today: 5"
    assert lines[1] == "Filters: today"
    live = lines[lines.index("Live calls") + 1 : lines.index("Recent calls") - 1]
    recent = lines[lines.index("Recent calls") + 1 :]
    # local time · status · subscriber · caller · agent (by name) · direction
    assert live == [
        "23.11 11:59 · waiting · Dr Papadopoulos · +302100000003 · in",
        "23.11 11:57 · in progress · Dr Papadopoulos · +302100000004 · Nikos · in",
    ]
    assert recent == [
        "11:56 · forwarded · Dr Papadopoulos · +302100000005 · in",
        "11:00 · lost · Dr Papadopoulos · +302100000002 · in",
        "10:00 · answered · Dr Papadopoulos · +302100000001 · Maria · in",
    ]
    assert len([t for t in labels(reply) if t.startswith("Details")]) == 5


async def test_ten_a_page_with_newer_and_older_buttons(people: People) -> None:
    for n in range(23):
        await call(people, n, CallStatus.LOST, ago=timedelta(minutes=n + 1))
    await call(people, 99, CallStatus.WAITING, ago=timedelta(seconds=5), ended=False)
    c = console()
    first = await c.open(DIRECTOR, "en")
    assert first.text.splitlines()[0] == "Calls, today: 24"
    shown = [line for line in first.text.splitlines() if " · " in line]
    assert len(shown) == PAGE and "waiting" in shown[0]
    assert "« Newer calls" not in labels(first)
    second = await c.press(DIRECTOR, press(first, "Older calls"), "en")
    shown2 = [line for line in second.text.splitlines() if " · " in line]
    assert len(shown2) == PAGE and "+302100000009" in shown2[0]  # after the live one and 9
    third = await c.press(DIRECTOR, press(second, "Older calls"), "en")
    shown3 = [line for line in third.text.splitlines() if " · " in line]
    assert len(shown3) == 4 and "Older calls »" not in labels(third)
    back = await c.press(DIRECTOR, press(third, "« Newer calls"), "en")
    assert back.text == second.text


async def test_filters_by_status_period_subscriber_and_agent(people: People) -> None:
    other = await Subscriber.create(name="Law office", mobile="+306944000999")
    await call(people, 1, CallStatus.ANSWERED, answered_by="PJSIP/agent1")
    await call(people, 2, CallStatus.ANSWERED, answered_by="PJSIP/agent2")
    await call(people, 3, CallStatus.LOST, subscriber=other)
    await call(people, 4, CallStatus.LOST, ago=timedelta(days=1))
    c = console()
    listing = await c.open(DIRECTOR, "en")

    statuses = await c.press(DIRECTOR, press(listing, "Status"), "en")
    lost = await c.press(DIRECTOR, press(statuses, "lost"), "en")
    assert lost.text.splitlines()[:2] == ["Calls, today: 1", "Filters: today, lost"]
    assert "Law office · +302100000003" in lost.text

    periods = await c.press(DIRECTOR, press(lost, "Period"), "en")
    yesterday = await c.press(DIRECTOR, press(periods, "yesterday"), "en")
    assert yesterday.text.splitlines()[:2] == ["Calls, yesterday: 1", "Filters: yesterday, lost"]
    assert "22.11 12:00 · lost · Dr Papadopoulos · +302100000004" in yesterday.text

    subscribers = await c.press(DIRECTOR, press(yesterday, "Subscriber"), "en")
    law = await c.press(DIRECTOR, press(subscribers, "Law office"), "en")
    assert law.text.splitlines()[0] == "Calls, yesterday: 0"
    assert "No calls in this view." in law.text

    # Any status, today, Dr Papadopoulos, answered by Nikos.
    plain = await c.press(DIRECTOR, View(subscriber=people.subscriber.id).data(), "en")
    assert plain.text.splitlines()[0] == "Calls, today: 2"
    agents = await c.press(DIRECTOR, press(plain, "Agent"), "en")
    nikos = await c.press(DIRECTOR, press(agents, "Nikos"), "en")
    assert nikos.text.splitlines()[:2] == [
        "Calls, today: 1",
        "Filters: today, Dr Papadopoulos, Nikos",
    ]
    assert "+302100000002 · Nikos" in nikos.text

    month = await c.press(DIRECTOR, View(period="m").data(), "en")
    assert month.text.splitlines()[0] == "Calls, this month: 4"


async def test_channels_not_routed_yet_show_as_not_started(people: People) -> None:
    tracker = CallTracker(lambda snap: None, clock=lambda: NOW.timestamp())
    tracker.handle(ChannelOpened("171.1", "171.1", "PJSIP/trunk-1", DDI, "from-pstn", CALLER, ""))
    tracker.handle(CallerIdentified("171.1", "171.1", CALLER, "Anna"))
    # A leg of a call whose opening channel we never saw is no call of its own.
    tracker.handle(ChannelOpened("172.1", "172.2", "PJSIP/x-2", "s", "from-pstn", "", ""))
    # Our own call back's Local channel: an outgoing call not connected yet.
    tracker.handle(
        ChannelOpened("173.1", "173.1", "Local/+30694@frontdesk-callback-1", MOBILE,
                      "frontdesk-callback", "", "")
    )  # fmt: skip
    reply = await console(tracker=tracker).open(DIRECTOR, "en")
    live = reply.text.splitlines()[reply.text.splitlines().index("Live calls") + 1 :]
    assert live == [
        f"23.11 12:00 · not started · {CALLER} · in",
        f"23.11 12:00 · not started · {MOBILE} · out",
    ]
    status = await console(tracker=tracker).press(DIRECTOR, View(status=1).data(), "en")
    assert status.text.count("not started") == 3  # two lines and the filter


def test_periods_are_calendar_days_in_the_operators_time_zone() -> None:
    start, end = period_range("t", NOW, ATHENS)
    assert start.astimezone(ATHENS).isoformat() == "2026-11-23T00:00:00+02:00"
    assert end - start == timedelta(days=1)
    start, end = period_range("w", NOW, ATHENS)
    assert start.astimezone(ATHENS).day == 17 and end.astimezone(ATHENS).day == 24
    start, _ = period_range("m", NOW, ATHENS)
    assert start.astimezone(ATHENS).isoformat() == "2026-11-01T00:00:00+02:00"
    # The night summer time ends (25 hours long) is still one calendar day.
    start, end = period_range("y", datetime(2026, 10, 26, 9, tzinfo=UTC), ATHENS)
    assert end - start == timedelta(hours=25)


def test_console_button_data_round_trips_and_forged_data_is_refused() -> None:
    data = View(page=3, period="w", status=7, subscriber=12, agent=2147483647).data("s")
    assert len(data.encode()) <= 64
    assert callbacks.unpack_console(data) == ("s", 3, "w", 7, 12, 2147483647)
    assert callbacks.unpack_console_call(callbacks.console_call("c", 5)) == ("c", 5)
    for forged in (
        "cs:l:0:x:0:0:0",
        "cs:z:0:t:0:0:0",
        "cs:l:-1:t:0:0:0",
        "cs:l:0:t:0:0",
        "cs:l:0:t:0:2147483648:0",
        "cs:l:0:t:00:0:0",
        "cs:d:0",
        "cs:x:5",
        "cs:d:5:6",
        "cd:1:msg",
    ):
        assert callbacks.unpack_console(forged) is None, forged
        assert callbacks.unpack_console_call(forged) is None, forged


async def test_forged_data_from_a_director_changes_nothing(people: People) -> None:
    reply = await console().press(DIRECTOR, "cs:l:0:x:0:0:0", "en")
    assert not reply.text and reply.toast


# -- a call -----------------------------------------------------------------------------------


async def test_a_calls_detail_legs_who_answered_hold_time_notes_and_deliveries(
    people: People,
) -> None:
    answered = await call(people, 1, CallStatus.ANSWERED, answered_by="PJSIP/agent1")
    await Card.create(agent=people.nikos, linkedid=answered.linkedid, chat_id=1,
                      transfer_note="Wants the test results")  # fmt: skip
    lost = await call(people, 2, CallStatus.LOST)
    note = await Notification.create(
        dedupe_key=f"missed_call:{lost.linkedid}",
        subscriber=people.subscriber,
        kind=Kind.MISSED_CALL,
        payload={},
        call_id=lost.id,
    )
    for channel, status in (
        (Channel.TELEGRAM, DeliveryStatus.SENT),
        (Channel.SMS, DeliveryStatus.FAILED),
    ):
        await Delivery.create(
            notification=note,
            dedupe_key=f"{note.dedupe_key}:{channel}",
            kind=Kind.MISSED_CALL,
            text="missed",
            next_attempt_at=NOW,
            channel=channel,
            address="x",
            status=status,
        )  # fmt: skip
    c = console()
    listing = await c.open(DIRECTOR, "en")
    shown = await c.press(DIRECTOR, press(listing, "Details: 11:55 +302100000001"), "en")
    assert shown.text.splitlines() == [
        "Call 23.11 11:55 · answered · in",
        f"Subscriber: Dr Papadopoulos (line {DDI})",
        "Caller: +302100000001",
        "Legs rung: 2",
        "Answered by: Maria",
        "Hold time: 12 s",
        "Transfer note (Nikos): Wants the test results",
    ]
    assert labels(shown) == ["Back to the list"]  # answered: no call back
    missed = await c.press(DIRECTOR, callbacks.console_call("d", lost.id), "en")
    assert "Answered by: nobody answered" in missed.text
    assert "Deliveries: telegram sent, sms failed" in missed.text
    assert labels(missed) == ["Call back", "Back to the list"]
    back = await c.press(DIRECTOR, press(missed, "Back"), "en")
    assert back.text == listing.text


@pytest.mark.parametrize("status", [CallStatus.LOST, CallStatus.NOT_ANSWERED])
async def test_call_back_rings_the_subscribers_mobile_first_recorded_as_outbound(
    people: People, status: CallStatus
) -> None:
    missed = await call(people, 1, status)
    link = Link()
    c = console(link)
    reply = await c.press(DIRECTOR, callbacks.console_call("c", missed.id), "en")
    [originate] = [a for a in link.sent if a["Action"] == "Originate"]
    assert originate["Channel"] == f"Local/{MOBILE}@frontdesk-callback"
    assert originate["Exten"] == "+302100000001"
    assert reply.toast.startswith("Calling Dr Papadopoulos's mobile now")
    [out] = await Call.filter(direction=CallDirection.OUTBOUND)
    assert out.linkedid.startswith("out:") and out.status is CallStatus.SCHEDULED
    assert (out.caller_number, out.subscriber_id) == ("+302100000001", people.subscriber.id)  # type: ignore[attr-defined]
    done = await AuditEntry.get(actor=str(DIRECTOR), result="done")
    assert done.command == f"console call back {missed.id}"
    # It shows in the console as an outgoing scheduled call.
    listing = await console(real_clock=True).open(DIRECTOR, "en")
    assert "scheduled · Dr Papadopoulos · +302100000001 · out" in listing.text


async def test_no_call_back_on_an_answered_call_even_with_forged_data(people: People) -> None:
    answered = await call(people, 1, CallStatus.ANSWERED, answered_by="PJSIP/agent1")
    link = Link()
    reply = await console(link).press(DIRECTOR, callbacks.console_call("c", answered.id), "en")
    assert reply.toast and link.sent == []


# -- calls placed at the desk are calls too -----------------------------------------------------


async def test_a_scheduled_call_is_outbound_and_placing_it_records_the_call(people: People) -> None:
    link = Link()
    tasks = Tasks(Control(link)._pbx, clock=lambda: NOW)
    task = await tasks.create(
        people.subscriber, "Call back", NOW + timedelta(hours=1), created_by=people.maria,
        assignee=people.maria, team_id=people.team_a.id, is_call=True, caller_number=CALLER,
    )  # fmt: skip
    row = await Call.get(linkedid=f"task:{task.id}")
    assert (row.status, row.direction) == (CallStatus.SCHEDULED, CallDirection.OUTBOUND)
    listing = await console().open(DIRECTOR, "en")
    assert f"scheduled · Dr Papadopoulos · {CALLER} · out" in listing.text
    await tasks.act(MARIA, callbacks.task(task.id, "call"), "en")
    [placed] = await Call.filter(linkedid__startswith="out:")
    assert (placed.direction, placed.answered_by) == (CallDirection.OUTBOUND, "PJSIP/agent1")
    listing = await console().open(DIRECTOR, "en")  # placed at the tasks' clock
    assert f"scheduled · Dr Papadopoulos · {CALLER} · Maria · out" in listing.text


async def test_listening_in_is_recorded_as_an_internal_call(people: People) -> None:
    class Pbx:
        async def member_channel(self, linkedid: str, interface: str) -> str | None:
            return "PJSIP/agent1-00000001" if interface == "PJSIP/agent1" else None

        async def originate_spy(self, *args: object, **kwargs: object) -> None:
            return None

    live = CallSnapshot("live.1", NOW.timestamp(), answered_at=NOW.timestamp(),
                        answered_by="PJSIP/agent1")  # fmt: skip
    monitor = Monitor(Pbx(), lambda: [live])  # type: ignore[arg-type]
    reply = await monitor.spy(SUPERVISOR, "Maria", False, "en")
    assert "listen" in reply.text
    [row] = await Call.filter(direction=CallDirection.INTERNAL)
    assert (row.caller_number, row.answered_by) == ("PJSIP/agent1", "PJSIP/sup1")
    listing = await console(real_clock=True).open(DIRECTOR, "en")
    assert "scheduled · Maria PJSIP/agent1 · Sofia · internal" in listing.text


async def test_putting_a_call_through_is_recorded_internal_or_outbound(db: str) -> None:
    from gateway.pbx.actions import Pbx
    from gateway.staff.transfer import Transfers
    from tests.unit import test_transfer as t

    anna, boris, card, actor = await t._desk(db)
    link = t.Link([(t.LINKEDID, t.CALLER_CHANNEL), (t.LINKEDID, t.AGENT_CHANNEL)])
    desk = Transfers(Pbx(link), {t.LINKEDID: t._answered()}.get)
    to_boris = {"kind": "a", "target": boris.id, "name": "Boris"}
    assert (await desk.put_through(501, anna, actor, card, to_boris, "", "en")).reply.text
    to_mobile = {"kind": "m", "target": 0}
    assert (await desk.put_through(501, anna, actor, card, to_mobile, "", "en")).reply.text
    rows = await Call.filter(linkedid__startswith="xfer:").order_by("id")
    assert [(r.direction, r.caller_name, r.answered_by, r.caller_number) for r in rows] == [
        (CallDirection.INTERNAL, "Boris", "PJSIP/agent101", "+30210"),
        (CallDirection.OUTBOUND, "+306944000001", "PJSIP/agent101", "+30210"),
    ]
