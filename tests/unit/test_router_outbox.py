"""Routing writes Call + Delivery rows together; the outbox sends, retries, gives up, re-claims."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.calls.router import Router
from gateway.control import admin
from gateway.delivery.notices import Notices
from gateway.delivery.outbox import Outbox, backoff
from models.db import Call, Contact, Delivery, DeliveryStatus, Role, Subscriber, User
from models.events import CallOutcome, CallSnapshot, CallStatus
from models.settings import OutboxSettings, RoutingSettings
from notifiers.base import OutgoingMessage, PermanentError, Receipt, TransientError


class RecordingNotifier:
    """A channel that records what it was asked to send and fails on demand."""

    channel = "telegram"

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []
        self.failures: list[Exception] = []

    async def send(self, message: OutgoingMessage) -> Receipt:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
        return Receipt(message_id=str(len(self.sent)))


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def make_router(on_new: Callable[[], None] = lambda: None) -> Router:
    notices = Notices({"telegram"}, RoutingSettings(default_channels="telegram"), on_new)
    return Router(notices)


async def subscriber_with_chat(lang: str = "el", chat: int = 77) -> None:
    created = await admin.add_subscriber(
        name="Ιατρείο",
        ddis=["2100001"],
        language=lang,
        timezone="Europe/Athens",
        mobile="+306912345678",
    )
    await User.create(
        name="Dr", role=Role.SUBSCRIBER, telegram_chat_id=chat, subscriber=created.subscriber
    )


def ended(outcome: CallOutcome, linkedid: str = "1.1", legs: int = 2) -> CallSnapshot:
    status = {CallOutcome.ABANDONED: CallStatus.LOST, CallOutcome.ANSWERED: CallStatus.ANSWERED}
    return CallSnapshot(
        linkedid=linkedid,
        started_at=1_795_339_707.0,
        ddi="2100001",
        scenario="agent",
        caller_number="2107654321",
        caller_name="Μαρία",
        status=status[outcome],
        outcome=outcome,
        ended_at=1_795_339_737.0,
        legs_rung=legs,
    )


async def test_missed_call_gives_one_localised_delivery(db: str) -> None:
    await subscriber_with_chat()
    woken: list[bool] = []
    router = make_router(lambda: woken.append(True))
    await router.on_call(ended(CallOutcome.ABANDONED))
    await router.on_call(ended(CallOutcome.ABANDONED))  # the same call reported twice
    rows = await Delivery.all()
    assert len(rows) == 1 and woken == [True]
    d = rows[0]
    assert (d.kind, d.channel, d.address, d.status) == ("missed_call", "telegram", "77", "pending")
    assert "Αναπάντητη κλήση" in d.text and "+302107654321" in d.text
    call = await Call.get(linkedid="1.1")
    assert d.buttons[0][0]["data"] == f"callback:{call.id}"
    assert call.caller_number == "+302107654321" and call.outcome == CallOutcome.ABANDONED


async def test_a_burst_is_routed_in_one_batch_with_contacts_and_two_chats(db: str) -> None:
    await subscriber_with_chat(chat=77)
    subscriber = await Subscriber.get(name="Ιατρείο")
    await User.create(
        name="Nurse", role=Role.SUBSCRIBER, telegram_chat_id=78, subscriber=subscriber
    )
    await Contact.create(subscriber=subscriber, name="Κα Μαρία Α.", number="+302107654321")
    router = make_router()
    await router.on_calls([replace(ended(CallOutcome.ABANDONED, "9.1"), ended_at=None)])
    burst = [
        ended(CallOutcome.ABANDONED, "9.1"),  # known call, now over
        ended(CallOutcome.ANSWERED, "9.2"),  # new and over within one batch
        ended(CallOutcome.ABANDONED, "9.3"),
        replace(ended(CallOutcome.ABANDONED, "9.3"), legs_rung=5),  # a later snapshot wins
    ]
    await router.on_calls(burst)
    calls = {c.linkedid: c for c in await Call.all()}
    assert {k: (c.status, c.legs_rung) for k, c in calls.items()} == {
        "9.1": (CallStatus.LOST, 2),
        "9.2": (CallStatus.ANSWERED, 2),
        "9.3": (CallStatus.LOST, 5),
    }
    rows = await Delivery.all().order_by("address", "call_id")
    assert [(d.address, d.call_id) for d in rows] == [
        ("77", calls["9.1"].id),
        ("77", calls["9.3"].id),
        ("78", calls["9.1"].id),
        ("78", calls["9.3"].id),
    ]
    assert all("Κα Μαρία Α." in d.text for d in rows)  # the contact's name, not the caller ID's
    assert router.calls_routed == 3


async def test_answered_call_tells_nobody(db: str) -> None:
    await subscriber_with_chat()
    await make_router().on_call(ended(CallOutcome.ANSWERED))
    assert await Delivery.all().count() == 0
    assert (await Call.get(linkedid="1.1")).status == CallStatus.ANSWERED


async def test_no_linked_chat_leaves_a_dead_letter(db: str) -> None:
    await admin.add_subscriber(name="S", ddis=["2100001"], language="en", timezone="UTC")
    await make_router().on_call(ended(CallOutcome.ABANDONED))
    d = await Delivery.get()
    assert d.status == DeliveryStatus.DEAD and "nothing reaches this subscriber" in d.last_error


async def test_unknown_ddi_is_recorded_without_deliveries(db: str) -> None:
    await make_router().on_call(ended(CallOutcome.ABANDONED))
    assert await Call.filter(linkedid="1.1", subscriber_id=None).exists()
    assert await Delivery.all().count() == 0


async def routed_delivery() -> None:
    await subscriber_with_chat()
    await make_router().on_call(ended(CallOutcome.ABANDONED))


def outbox(notifier: RecordingNotifier, clock: Clock, **changes: float) -> Outbox:
    settings = OutboxSettings(retry_initial=2, retry_max=60, give_up_after=300, lease_seconds=30)
    return Outbox({"telegram": notifier}, OutboxSettings(**{**settings.__dict__, **changes}), clock)


async def run_once(box: Outbox) -> None:
    for d in await box.claim():
        await box._deliver(d)


async def test_send_stores_receipt(db: str) -> None:
    await routed_delivery()
    notifier, clock = RecordingNotifier(), Clock()
    await run_once(outbox(notifier, clock))
    d = await Delivery.get()
    assert (d.status, d.receipt, d.attempts) == (DeliveryStatus.SENT, "1", 1)
    assert notifier.sent[0].buttons[0][0].text == "Επανάκληση"


async def test_transient_failures_back_off_doubling_then_dead(db: str) -> None:
    await routed_delivery()
    notifier, clock = RecordingNotifier(), Clock()
    box = outbox(notifier, clock)
    delays = []
    for _ in range(4):
        notifier.failures.append(TransientError("network down"))
        before = clock.now
        await run_once(box)
        d = await Delivery.get()
        assert d.status == DeliveryStatus.PENDING
        delays.append((d.next_attempt_at - before).total_seconds())
        await run_once(box)  # not due yet: nothing claimed
        assert notifier.sent == []
        clock.now = d.next_attempt_at
    assert delays == [2, 4, 8, 16]
    clock.now += timedelta(seconds=300)
    notifier.failures.append(TransientError("still down"))
    await run_once(box)
    d = await Delivery.get()
    assert d.status == DeliveryStatus.DEAD and d.attempts == 5 and "still down" in d.last_error


async def test_retry_after_is_honoured(db: str) -> None:
    await routed_delivery()
    notifier, clock = RecordingNotifier(), Clock()
    notifier.failures.append(TransientError("429", retry_after=17))
    await run_once(outbox(notifier, clock))
    d = await Delivery.get()
    assert (d.next_attempt_at - clock.now).total_seconds() == pytest.approx(17)


async def test_permanent_failure_is_not_retried(db: str) -> None:
    await routed_delivery()
    notifier, clock = RecordingNotifier(), Clock()
    notifier.failures.append(PermanentError("bot was blocked by the user"))
    box = outbox(notifier, clock)
    await run_once(box)
    clock.now += timedelta(hours=1)
    await run_once(box)
    d = await Delivery.get()
    assert d.status == DeliveryStatus.FAILED and notifier.sent == []


async def test_expired_claim_is_taken_again_and_sent_once(db: str) -> None:
    """A worker that claimed and died: its lease runs out, another worker sends once."""
    await routed_delivery()
    clock = Clock()
    dead_worker = outbox(RecordingNotifier(), clock)
    assert len(await dead_worker.claim()) == 1  # ... and the process dies here
    notifier = RecordingNotifier()
    survivor = outbox(notifier, clock)
    await run_once(survivor)
    assert notifier.sent == []  # the lease still holds
    clock.now += timedelta(seconds=31)
    await run_once(survivor)
    await run_once(survivor)
    d = await Delivery.get()
    assert len(notifier.sent) == 1 and d.status == DeliveryStatus.SENT and d.attempts == 2


def test_backoff_caps() -> None:
    s = OutboxSettings(retry_initial=2, retry_max=10)
    assert [backoff(s, n) for n in range(1, 6)] == [2, 4, 8, 10, 10]
