"""Routing preferences, quiet hours, fallback, escalation and receipts, on a controlled clock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from gateway.control import admin
from gateway.control.inbound import InboundDesk
from gateway.delivery.notices import Notices
from gateway.delivery.outbox import Outbox
from gateway.delivery.receipts import Receipts
from models.db import Delivery, DeliveryStatus, InboundMessage, Notification, Role, Urgency, User
from models.settings import OutboxSettings, RoutingSettings
from notifiers.base import (
    DeliveryReport,
    OutgoingMessage,
    PermanentError,
    Receipt,
)
from notifiers.base import (
    InboundMessage as Inbound,
)

# 13:00 UTC is 15:00 in Athens (outside 22:00-07:00); 21:00 UTC is 23:00 there (quiet).
DAY = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
NIGHT = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Channel:
    """Records sends; fails permanently for addresses in `refuse`; may split into parts."""

    def __init__(self, channel: str, parts: int = 0) -> None:
        self.channel = channel
        self.parts = parts
        self.refuse: set[str] = set()
        self.sent: list[OutgoingMessage] = []

    async def send(self, message: OutgoingMessage) -> Receipt:
        if message.address in self.refuse:
            raise PermanentError(f"{self.channel}: refused {message.address}")
        self.sent.append(message)
        n = len(self.sent)
        ids = tuple(f"{self.channel}-{n}-{i}" for i in range(self.parts))
        return Receipt(message_id=f"{self.channel}-{n}", parts=ids)


class Desk:
    """Notices + outbox + receipts wired as the gateway wires them, on one clock."""

    def __init__(self, clock: Clock, escalate_after: float = 300) -> None:
        self.clock = clock
        self.channels = {
            "telegram": Channel("telegram"),
            "email": Channel("email"),
            "sms": Channel("sms", parts=2),
        }
        routing = RoutingSettings(
            default_channels="telegram,email,sms", escalate_after=escalate_after
        )
        self.notices = Notices(self.channels.keys(), routing, clock=clock)
        self.receipts = Receipts(on_failed=self._fall_back)
        self.outbox = Outbox(
            self.channels,
            OutboxSettings(),
            clock,
            on_give_up=self._fall_back,
            on_parts=self._parts,
        )

    async def _fall_back(self, delivery: Delivery, reason: str) -> None:
        await self.notices.fall_back(delivery.notification_id, reason)  # type: ignore[attr-defined]

    async def _parts(self, delivery: Delivery, ids: Sequence[str]) -> None:
        await self.receipts.parts_sent(delivery, ids)

    async def run_due(self) -> None:
        """One outbox round: send whatever is due now."""
        for d in await self.outbox.claim():
            await self.outbox._deliver(d)

    def sent(self, channel: str) -> list[OutgoingMessage]:
        return self.channels[channel].sent


async def subscriber(quiet: str = "22:00-07:00") -> int:
    created = await admin.add_subscriber(
        name="Ιατρείο", ddis=["2100001"], language="el", timezone="Europe/Athens"
    )
    sid = created.subscriber.id
    await User.create(
        name="Dr", role=Role.SUBSCRIBER, telegram_chat_id=77, subscriber=created.subscriber
    )
    await admin.set_contact_points(
        sid, email="dr@example.org", mobile="+306944000001", quiet_hours=quiet
    )
    return sid


async def message(desk: Desk, sid: int, urgent: bool) -> Notification:
    key = await admin.take_message(desk.notices, sid, "Καλέστε τον κ. Παπά", urgent=urgent)
    return await Notification.get(dedupe_key=key)


async def test_the_subscribers_route_decides_the_channel(db: str) -> None:
    desk = Desk(Clock(DAY))
    sid = await subscriber()
    await admin.set_route(sid, "message", Urgency.NORMAL, ["sms", "telegram"])
    await message(desk, sid, urgent=False)
    await desk.run_due()
    assert [m.address for m in desk.sent("sms")] == ["+306944000001"]
    assert desk.sent("telegram") == [] and desk.sent("email") == []
    assert "Μήνυμα για Ιατρείο" in desk.sent("sms")[0].text


async def test_quiet_hours_hold_a_normal_message_until_they_end(db: str) -> None:
    clock = Clock(NIGHT)
    desk = Desk(clock)
    sid = await subscriber()
    await message(desk, sid, urgent=False)
    await desk.run_due()
    assert desk.sent("telegram") == []
    held = await Delivery.get(kind="message")
    # 07:00 in Athens (UTC+2) is 05:00 UTC the next morning.
    assert held.next_attempt_at == datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    clock.now = datetime(2026, 11, 24, 4, 59, tzinfo=UTC)
    await desk.run_due()
    assert desk.sent("telegram") == []
    clock.now = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    await desk.run_due()
    assert [m.address for m in desk.sent("telegram")] == ["77"]


async def test_an_urgent_message_in_quiet_hours_goes_at_once_on_every_channel(db: str) -> None:
    desk = Desk(Clock(NIGHT))
    sid = await subscriber()
    await message(desk, sid, urgent=True)
    await desk.run_due()
    assert [len(desk.sent(c)) for c in ("telegram", "email", "sms")] == [1, 1, 1]
    email = desk.sent("email")[0]
    assert email.subject.startswith("Επείγον: ") and email.html.startswith("<html")
    # The Telegram one carries the "Got it" acknowledgement button.
    assert desk.sent("telegram")[0].buttons[-1][0].data.startswith("ack:")


async def test_a_permanent_failure_falls_back_to_the_next_channel(db: str) -> None:
    desk = Desk(Clock(DAY))
    sid = await subscriber()
    desk.channels["telegram"].refuse.add("77")  # e.g. the bot was blocked (403)
    await message(desk, sid, urgent=False)
    await desk.run_due()  # telegram fails; email is queued
    await desk.run_due()
    assert [m.address for m in desk.sent("email")] == ["dr@example.org"]
    rows = await Delivery.filter(kind="message").order_by("id")
    assert [(r.channel, r.status) for r in rows] == [
        ("telegram", DeliveryStatus.FAILED),
        ("email", DeliveryStatus.SENT),
    ]
    assert rows[1].reason.startswith("fallback: telegram: refused")


async def test_unacknowledged_urgent_message_escalates_and_acknowledged_does_not(
    db: str,
) -> None:
    clock = Clock(DAY)
    desk = Desk(clock, escalate_after=300)
    sid = await subscriber()
    first = await message(desk, sid, urgent=True)
    await desk.run_due()
    assert [len(desk.sent(c)) for c in ("telegram", "email", "sms")] == [1, 0, 0]

    clock.now = DAY + timedelta(seconds=299)
    assert await desk.notices.escalate_due() == 0
    clock.now = DAY + timedelta(seconds=300)
    assert await desk.notices.escalate_due() == 1
    await desk.run_due()
    assert [len(desk.sent(c)) for c in ("telegram", "email", "sms")] == [1, 1, 0]
    escalated = await Delivery.get(channel="email")
    assert escalated.reason == "escalated: not acknowledged"

    # The subscriber taps "Got it": no further channel, ever.
    await desk.notices.acknowledge(notification_id=first.id)
    clock.now = DAY + timedelta(hours=2)
    assert await desk.notices.escalate_due() == 0
    await desk.run_due()
    assert desk.sent("sms") == []


async def test_a_reply_from_the_subscribers_mobile_is_kept_and_acknowledges(db: str) -> None:
    clock = Clock(DAY)
    desk = Desk(clock)
    sid = await subscriber()
    await message(desk, sid, urgent=True)
    inbound = InboundDesk(desk.notices)
    text = Inbound("sms", "+306944000001", "Frontdesk", "εντάξει", DAY)
    stored = await inbound.receive(text)
    assert stored.subscriber_id == sid  # type: ignore[attr-defined]
    stranger = await inbound.receive(Inbound("sms", "+447700900123", "Frontdesk", "hi", DAY))
    assert stranger.subscriber_id is None  # type: ignore[attr-defined]
    assert await InboundMessage.all().count() == 2
    clock.now = DAY + timedelta(hours=1)
    assert await desk.notices.escalate_due() == 0


async def test_receipts_deliver_only_when_every_part_is_delivered(db: str) -> None:
    desk = Desk(Clock(DAY))
    sid = await subscriber()
    await admin.set_route(sid, "message", Urgency.NORMAL, ["sms", "email"])
    await message(desk, sid, urgent=False)
    # A report can outrun our record of the send: it waits for its part.
    await desk.receipts.on_report(DeliveryReport("sms", "sms-1-0", True, "DELIVRD"))
    await desk.run_due()
    sms = await Delivery.get(channel="sms")
    assert sms.status == DeliveryStatus.SENT  # one part of two
    await desk.receipts.on_report(DeliveryReport("sms", "sms-1-1", True, "DELIVRD"))
    assert (await Delivery.get(id=sms.id)).status == DeliveryStatus.DELIVERED


async def test_an_undeliverable_part_fails_the_delivery_and_falls_back_once(db: str) -> None:
    desk = Desk(Clock(DAY))
    sid = await subscriber()
    await admin.set_route(sid, "message", Urgency.NORMAL, ["sms", "email"])
    await message(desk, sid, urgent=False)
    await desk.run_due()
    for part in ("sms-1-0", "sms-1-1"):  # both parts fail: one failure, one fallback
        await desk.receipts.on_report(DeliveryReport("sms", part, False, "UNDELIV"))
    await desk.run_due()
    rows = await Delivery.filter(kind="message").order_by("id")
    assert [(r.channel, r.status) for r in rows] == [
        ("sms", DeliveryStatus.FAILED),
        ("email", DeliveryStatus.SENT),
    ]
    assert rows[0].last_error == "undeliverable (UNDELIV)"
    assert len(desk.sent("email")) == 1


async def test_nothing_configured_reaches_them_leaves_a_dead_letter(db: str) -> None:
    desk = Desk(Clock(DAY))
    created = await admin.add_subscriber(name="S", ddis=["2100002"], language="en", timezone="UTC")
    await admin.set_route(created.subscriber.id, "message", Urgency.NORMAL, ["mms"])
    await message(desk, created.subscriber.id, urgent=False)
    row = await Delivery.get(kind="message")
    assert row.status == DeliveryStatus.DEAD and "nothing reaches" in row.last_error
