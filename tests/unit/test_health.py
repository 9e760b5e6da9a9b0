"""Health incidents: opened once after `open_after`, resolved once after `hold_down` clear,
flaps in between told nothing; two gateways on one database tell an incident once; failing
sends, dead deliveries and the backlog from the outbox's rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.admin import health
from gateway.admin.health import HealthMonitor
from gateway.delivery.notices import Notices
from models.db import Delivery, DeliveryStatus, HealthIncident, Role, User
from models.settings import HealthSettings, RoutingSettings

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
ADMIN, GREEK_ADMIN = 9001, 9002
SETTINGS = HealthSettings(open_after=5.0, hold_down=30.0, failures=3, outbox_backlog=2)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> None:
        self.now = T0 + timedelta(seconds=seconds)


class Link:
    """A probe whose answer the test sets."""

    def __init__(self, key: str = "ami") -> None:
        self.key = key
        self.down = False

    async def __call__(self) -> dict[str, str]:
        return {self.key: "not logged in to 127.0.0.1:5038"} if self.down else {}


@pytest.fixture
async def admins(db: str) -> None:
    await User.create(name="Admin", role=Role.ADMIN, telegram_chat_id=ADMIN, language="en")
    await User.create(name="Άννα", role=Role.ADMIN, telegram_chat_id=GREEK_ADMIN, language="el")


def monitor(clock: Clock, *probes: health.Probe, email: bool = False) -> HealthMonitor:
    channels = ["telegram", "email"] if email else ["telegram"]
    notices = Notices(channels, RoutingSettings(), clock=clock)
    return HealthMonitor(SETTINGS, notices, probes, clock=clock)


async def alerts(chat: int = ADMIN) -> list[str]:
    rows = await Delivery.filter(kind="admin_alert", address=str(chat)).order_by("id")
    return [r.text for r in rows]


async def test_an_outage_is_told_once_and_its_end_once(admins: None) -> None:
    clock, link = Clock(), Link()
    m = monitor(clock, link)
    link.down = True
    await m.check()
    clock.at(4)
    await m.check()
    assert await alerts() == []  # not yet open_after: a reconnect is no incident
    clock.at(5)
    await m.check()
    clock.at(10)
    await m.check()
    [opened] = await alerts()
    assert opened.startswith("Frontdesk alert: The PBX link (AMI) is down")
    assert "Detail: not logged in to 127.0.0.1:5038" in opened
    [greek] = await alerts(GREEK_ADMIN)
    assert greek.startswith("Ειδοποίηση Frontdesk: Η σύνδεση με το τηλεφωνικό κέντρο")
    incident = await HealthIncident.get(key="ami")
    assert incident.open_key == "ami" and incident.resolved_at is None

    link.down = False  # back, then down again within the hold-down: still one incident
    clock.at(20)
    await m.check()
    link.down = True
    clock.at(25)
    await m.check()
    link.down = False
    clock.at(30)
    await m.check()
    clock.at(59)
    await m.check()
    assert len(await alerts()) == 1
    clock.at(60)  # clear for hold_down
    await m.check()
    clock.at(100)
    await m.check()
    assert await alerts() == [
        opened,
        "Resolved: The PBX link (AMI) is down: calls are not followed and commands cannot act.",
    ]
    assert m.told.opened == ["ami"] and m.told.resolved == ["ami"]
    incident = await HealthIncident.get(id=incident.id)
    assert incident.open_key is None and incident.resolved_at == T0 + timedelta(seconds=60)

    link.down = True  # a new outage later is a new incident
    clock.at(200)
    await m.check()
    clock.at(205)
    await m.check()
    assert len(await alerts()) == 3
    assert await HealthIncident.filter(key="ami").count() == 2


async def test_two_gateways_on_one_database_tell_an_incident_once(admins: None) -> None:
    clock, link = Clock(), Link("smpp")
    first, second = monitor(clock, link), monitor(clock, link)
    link.down = True
    for m in (first, second):
        await m.check()
    clock.at(6)
    for m in (first, second):
        await m.check()
    assert len(await alerts()) == 1
    link.down = False
    clock.at(10)
    for m in (first, second):
        await m.check()
    clock.at(41)
    for m in (first, second):
        await m.check()
    texts = await alerts()
    assert len(texts) == 2 and texts[1].startswith("Resolved: The SMSC is not bound")
    assert first.told.resolved + second.told.resolved == ["smpp"]


async def test_an_incident_open_before_a_restart_is_resolved_not_told_again(
    admins: None,
) -> None:
    await HealthIncident.create(key="ami", open_key="ami", opened_at=T0)
    clock, link = Clock(), Link()
    m = monitor(clock, link)
    link.down = True
    clock.at(10)
    await m.check()
    clock.at(20)
    await m.check()
    assert await alerts() == []
    link.down = False
    clock.at(30)
    await m.check()
    clock.at(60)
    await m.check()
    [resolved] = await alerts()
    assert resolved.startswith("Resolved: The PBX link")


async def row(channel: str, status: DeliveryStatus, kind: str = "message", error: str = "") -> int:
    d = await Delivery.create(
        dedupe_key=f"k:{await Delivery.all().count()}",
        kind=kind,
        channel=channel,
        address="x",
        text="t",
        status=status,
        next_attempt_at=T0 + timedelta(hours=1),
        last_error=error,
    )
    return d.id


async def test_consecutive_send_failures_open_and_a_success_clears(admins: None) -> None:
    clock = Clock()
    m = monitor(clock)
    for _ in range(2):
        m.outcome(
            await row("email", DeliveryStatus.PENDING, error="451 try later"),
            DeliveryStatus.PENDING,
        )
    m.outcome(await row("mms", DeliveryStatus.PENDING), DeliveryStatus.PENDING)
    await m.check()
    clock.at(10)
    await m.check()
    assert await alerts() == []  # two in a row on email, one on MMS: below `failures`
    m.outcome(
        await row("email", DeliveryStatus.PENDING, error="451 try later"), DeliveryStatus.PENDING
    )
    await m.check()
    clock.at(20)
    await m.check()
    [opened] = await alerts()
    assert opened.startswith("Frontdesk alert: Emails are failing to send.")
    assert "3 failures in a row: 451 try later" in opened
    m.outcome(await row("email", DeliveryStatus.SENT), DeliveryStatus.SENT)
    clock.at(30)
    await m.check()
    clock.at(60)
    await m.check()
    assert (await alerts())[1] == "Resolved: Emails are failing to send."


async def test_a_dead_delivery_is_told_at_once_but_not_a_dead_alert(admins: None) -> None:
    clock = Clock()
    m = monitor(clock)
    m.outcome(await row("telegram", DeliveryStatus.DEAD, kind="admin_alert"), DeliveryStatus.DEAD)
    await m.check()
    assert await alerts() == []
    m.outcome(await row("sms", DeliveryStatus.DEAD, error="no route"), DeliveryStatus.DEAD)
    await m.check()
    [opened] = await alerts()
    assert opened.startswith("Frontdesk alert: A message was given up on after its retries (sms).")
    m.outcome(await row("sms", DeliveryStatus.SENT), DeliveryStatus.SENT)
    clock.at(1)
    await m.check()
    clock.at(31)
    await m.check()
    assert m.told.resolved == ["delivery_dead:sms"]


async def test_alerts_also_go_by_email_when_an_admin_address_is_set(admins: None) -> None:
    clock, link = Clock(), Link()
    notices = Notices(["telegram", "email"], RoutingSettings(), clock=clock)
    settings = HealthSettings(open_after=0.0, admin_email="ops@example.org")
    m = HealthMonitor(settings, notices, [link], clock=clock)
    link.down = True
    await m.check()
    [mail] = await Delivery.filter(channel="email")
    assert mail.address == "ops@example.org" and mail.subject.startswith("Frontdesk alert")


async def test_the_backlog_probe(db: str) -> None:
    now = T0
    assert await health.backlog(SETTINGS, now) == {}
    for n in range(2):
        await Delivery.create(
            dedupe_key=f"b{n}",
            kind="message",
            channel="sms",
            address="x",
            text="t",
            next_attempt_at=now - timedelta(seconds=1),
        )
    assert await health.backlog(SETTINGS, now) == {}  # two due, none for long
    later = now + timedelta(seconds=SETTINGS.outbox_age + 5)
    assert "outbox_backlog" in await health.backlog(SETTINGS, later)
    await Delivery.create(
        dedupe_key="b3", kind="message", channel="sms", address="x", text="t", next_attempt_at=now
    )
    assert (await health.backlog(SETTINGS, now))["outbox_backlog"].startswith("3 due")
