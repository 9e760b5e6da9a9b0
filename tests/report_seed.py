"""A seeded month for the statistics and usage tests (tests/unit/test_stats.py,
test_usage.py, tests/e2e/test_reports_e2e.py, bench/stats.py): subscribers, agents,
thousands of calls of every direction and outcome (some just outside the month, in the
operator's time zone), voicemails, faxes, messages taken, deliveries with SMS and MMS
parts, and presence spans crossing the month's edges. Written straight into the database
with a fixed random seed."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from models.db import (
    Call,
    CallDirection,
    Delivery,
    DeliveryPart,
    DeliveryStatus,
    Notification,
    Role,
    Subscriber,
    User,
    Voicemail,
)
from models.events import CallOutcome, CallStatus
from models.staff import Agent, Presence, PresenceSpan, Taken, TakenMessage

MONTH = "2026-11"
TZ = "Europe/Athens"
# November 2026 in Athens (EET, UTC+2), in UTC: written out, not computed by the code.
START = datetime(2026, 10, 31, 22, 0, tzinfo=UTC)
END = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
START_SQL, END_SQL = "2026-10-31 22:00:00+00:00", "2026-11-30 22:00:00+00:00"
SEED = 20261101


@dataclass
class Seeded:
    subscribers: list[Subscriber]
    agents: list[Agent]
    calls: int


def _moment(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A whole second between start and end, or now and then just outside them."""
    edge = rng.random()
    if edge < 0.02:
        return start - timedelta(seconds=rng.randint(1, 7200))
    if edge < 0.04:
        return end + timedelta(seconds=rng.randint(0, 7200))
    if edge < 0.05:
        return start  # the first second belongs to the month
    span = int((end - start).total_seconds())
    return start + timedelta(seconds=rng.randrange(span))


async def seed(
    calls: int = 4000, start: datetime = START, end: datetime = END, seed_value: int = SEED
) -> Seeded:
    rng = random.Random(seed_value)
    subscribers = [
        await Subscriber.create(name=f"Office {i}", language="en", timezone=TZ) for i in range(1, 6)
    ]
    await Subscriber.create(name="Idle office", language="en", timezone=TZ)  # nothing happens
    agents = []
    for i in range(1, 4):
        user = await User.create(name=f"Agent {i}", role=Role.AGENT, telegram_chat_id=9900 + i)
        agents.append(await Agent.create(user=user, interface=f"PJSIP/agent{i}"))

    rows = []
    for n in range(calls):
        sub = rng.choice(subscribers)
        started = _moment(rng, start, end)
        direction = rng.choices(
            (CallDirection.INBOUND, CallDirection.OUTBOUND, CallDirection.INTERNAL), (8, 2, 1)
        )[0]
        outcome = rng.choices(
            (
                CallOutcome.ANSWERED,
                CallOutcome.FORWARDED,
                CallOutcome.VOICEMAIL,
                CallOutcome.ABANDONED,
                CallOutcome.UNKNOWN,
                None,
            ),
            (50, 10, 10, 20, 3, 2),
        )[0]
        answered_at = ended_at = None
        answered_by = ""
        if outcome in (CallOutcome.ANSWERED, CallOutcome.FORWARDED):
            wait = rng.choice((rng.randint(0, 45), 20, 21))  # the 20 s edge, often
            answered_at = started + timedelta(seconds=wait)
            answered_by = (
                rng.choice(agents).interface or ""
                if outcome is CallOutcome.ANSWERED
                else "+306900000000"
            )
        if outcome is not None:
            ended_at = (answered_at or started) + timedelta(
                seconds=rng.choice((rng.randint(1, 900), 60, 61, 0))
            )
        rows.append(
            Call(
                linkedid=f"seed.{n}",
                ddi="2100000",
                subscriber=sub if rng.random() > 0.01 else None,
                caller_number=f"+30210000{rng.randint(0, 40):04d}",
                status=CallStatus.ANSWERED if answered_at else CallStatus.LOST,
                outcome=outcome,
                answered_by=answered_by,
                direction=direction,
                started_at=started,
                answered_at=answered_at,
                ended_at=ended_at,
            )
        )
    await Call.bulk_create(rows, batch_size=1000)

    await Voicemail.bulk_create(
        [
            Voicemail(
                key=f"vm.{n}",
                mailbox="100@default",
                subscriber=rng.choice(subscribers),
                left_at=_moment(rng, start, end),
                audio_path="/nonexistent.wav",
            )
            for n in range(calls // 10)
        ]
    )
    await Notification.bulk_create(
        [
            Notification(
                dedupe_key=f"fax:seed{n}",
                subscriber=rng.choice(subscribers),
                kind="fax",
                payload={"pages": rng.randint(1, 12)} if n % 7 else {},
                created_at=_moment(rng, start, end),
            )
            for n in range(calls // 40)
        ]
        + [
            Notification(
                dedupe_key=f"missed_call:seed{n}",
                subscriber=rng.choice(subscribers),
                kind="missed_call",
                payload={"pages": 99},  # not a fax: its "pages" are not counted
                created_at=_moment(rng, start, end),
            )
            for n in range(20)
        ]
    )
    await TakenMessage.bulk_create(
        [
            TakenMessage(
                kind=rng.choice(list(Taken)),
                subscriber=rng.choice(subscribers),
                agent=rng.choice([*agents, None]),
                text="call back",
                taken_at=_moment(rng, start, end),
            )
            for _ in range(calls // 20)
        ]
    )
    deliveries = []
    for n in range(calls // 4):
        created = _moment(rng, start, end)
        status = rng.choice(list(DeliveryStatus))
        sent = status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
        deliveries.append(
            Delivery(
                dedupe_key=f"seed.d.{n}",
                kind="missed_call",
                channel=rng.choice(("telegram", "email", "sms", "mms")),
                address="x",
                subscriber=rng.choice([*subscribers, None]),
                text="t",
                status=status,
                next_attempt_at=created,
                created_at=created,
                # sent a little later: across the month's end now and then
                sent_at=created + timedelta(seconds=rng.randint(0, 3600)) if sent else None,
            )
        )
    await Delivery.bulk_create(deliveries, batch_size=1000)
    parts = []
    for d in await Delivery.filter(channel__in=("sms", "mms"), sent_at__isnull=False):
        for k in range(rng.randint(1, 3) if d.channel == "sms" else 1):
            parts.append(DeliveryPart(delivery=d, channel=d.channel, message_id=f"{d.id}.{k}"))
    await DeliveryPart.bulk_create(parts, batch_size=1000)

    spans = []
    for agent in agents:
        moment = start - timedelta(hours=5)  # the first span crosses the month's start
        while moment < end + timedelta(hours=5):
            length = timedelta(minutes=rng.randint(5, 600))
            spans.append(
                PresenceSpan(
                    agent=agent,
                    presence=rng.choice((Presence.READY, Presence.READY, Presence.PAUSED)),
                    started_at=moment,
                    ended_at=moment + length,
                )
            )
            moment += length + timedelta(minutes=rng.randint(0, 600))
    # one still open (signed in now): counted until the period's end
    spans.append(
        PresenceSpan(agent=agents[0], presence=Presence.READY, started_at=end - timedelta(hours=3))
    )
    await PresenceSpan.bulk_create(spans, batch_size=1000)
    return Seeded(subscribers, agents, calls)
