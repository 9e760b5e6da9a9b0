"""Every channel through the running service: Runtime (gateway + bot) against the sandbox
Bot API, SMTP sink, SMSC and MMSC over loopback. Fallback, outages and throttling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.runtime import Runtime
from gateway.control import admin
from models.database import migrate
from models.db import Delivery, DeliveryStatus, InboundMessage, Notification, Urgency
from models.settings import with_section
from sandbox.ami_server import AmiServer
from sandbox.mmsc import MmscServer
from sandbox.smsc import SmscServer
from sandbox.smtp_sink import SmtpSink
from sandbox.telegram_api import BotApiServer
from tests.stack import sandbox_settings

TOKEN = "123456:CHANNELS-token"
CHAT = 5150
MOBILE = "+306944000123"
EMAIL = "office@example.org"
WAIT = 15.0


@dataclass
class Peers:
    bot: BotApiServer
    smtp: SmtpSink
    smsc: SmscServer
    mmsc: MmscServer
    runtime: Runtime
    subscriber_id: int
    settled: asyncio.Queue[tuple[int, DeliveryStatus]]

    async def message(self, text: str, urgent: bool = False) -> None:
        await admin.take_message(
            self.runtime.gateway.notices, self.subscriber_id, text, urgent=urgent
        )

    async def wait_status(self, status: DeliveryStatus, count: int = 1) -> list[int]:
        """Ids of the next `count` deliveries that reach `status` (outbox or receipts)."""
        ids: list[int] = []
        async with asyncio.timeout(WAIT):
            while len(ids) < count:
                delivery_id, reached = await self.settled.get()
                if reached is status:
                    ids.append(delivery_id)
        return ids


@pytest.fixture
async def peers(tmp_path: Path) -> AsyncIterator[Peers]:
    async with (
        AmiServer(secret="s") as ami,
        BotApiServer(TOKEN) as bot,
        SmtpSink() as smtp,
        SmscServer(system_id="fd", password="pw") as smsc,
        MmscServer(username="fd", password="mm7-pw") as mmsc,
    ):
        s = sandbox_settings(tmp_path / "channels.sqlite3", ami, bot, TOKEN)
        s = with_section(s, "outbox", retry_initial=0.2, retry_max=1.0)
        s = with_section(s, "smtp", host=smtp.host, port=smtp.port, security="none")
        s = with_section(
            s,
            "smpp",
            host=smsc.host,
            port=smsc.port,
            system_id="fd",
            password="pw",
            reconnect_min=0.1,
            reconnect_max=0.5,
            throttle_delay=0.1,
            response_timeout=2.0,
        )
        s = with_section(
            s, "mms", url=mmsc.url, vasp_id="v", vas_id="fd", username="fd", password="mm7-pw"
        )
        s = with_section(s, "mail_in", host="127.0.0.1", port=0)
        await migrate(s.database.url)
        runtime = Runtime(s)
        await runtime.start()
        mmsc.report_to = f"http://127.0.0.1:{runtime.gateway.http_port}/hooks/mm7"
        try:
            created = await admin.add_subscriber(
                name="Γραφείο", ddis=["2100050"], language="el", timezone="Europe/Athens"
            )
            sid = created.subscriber.id
            await admin.set_contact_points(sid, email=EMAIL, mobile=MOBILE)
            bot.inject_message(CHAT, f"/start {created.link_code}", language_code="el")
            await bot.wait_for(lambda c: c.method == "sendMessage", timeout=WAIT)
            settled: asyncio.Queue[tuple[int, DeliveryStatus]] = asyncio.Queue()
            runtime.gateway.outbox.observers.append(lambda i, st: settled.put_nowait((i, st)))
            runtime.gateway.receipts.observers.append(lambda i, st: settled.put_nowait((i, st)))
            yield Peers(bot, smtp, smsc, mmsc, runtime, sid, settled)
        finally:
            await runtime.stop()


async def test_a_blocked_bot_falls_back_to_email(peers: Peers) -> None:
    peers.bot.fail_next("sendMessage", status=403, chat_id=CHAT)  # "bot was blocked by the user"
    await peers.message("Καλέστε τον λογιστή σας.")
    [email_id] = await peers.wait_status(DeliveryStatus.SENT)
    [received] = await peers.smtp.wait_messages(1, timeout=WAIT)
    assert received.rcpt_tos == (EMAIL,)
    assert "Καλέστε τον λογιστή σας." in received.message.get_body(("plain",)).get_content()
    rows = await Delivery.filter(kind="message").order_by("id")
    assert [(r.channel, r.status) for r in rows] == [
        ("telegram", DeliveryStatus.FAILED),
        ("email", DeliveryStatus.SENT),
    ]
    assert rows[1].id == email_id and rows[1].receipt == received.message["Message-ID"]
    assert "blocked" in rows[0].last_error and rows[1].reason.startswith("fallback: ")


async def test_sms_sent_during_an_outage_arrive_after_it_once_each(peers: Peers) -> None:
    await admin.set_route(peers.subscriber_id, "message", Urgency.NORMAL, ["sms"])
    await peers.smsc.stop()  # the SMSC goes away; the gateway keeps taking messages
    texts = [f"Μήνυμα {n}: τηλεφώνησε ο πελάτης {n}." for n in range(5)]
    for text in texts:
        await peers.message(text)
    # Every attempt fails while it is down and is put back for a retry, none is lost.
    retried = await peers.wait_status(DeliveryStatus.PENDING, count=5)
    assert sorted(retried) == sorted(
        await Delivery.filter(kind="message").values_list("id", flat=True)
    )
    assert peers.smsc.messages == []

    await peers.smsc.start()  # back on the same port
    await peers.wait_status(DeliveryStatus.DELIVERED, count=5)
    got = sorted(m.text.split(" / ")[-1] for m in peers.smsc.messages)
    assert got == sorted(texts)  # each exactly once
    assert await Delivery.filter(kind="message", status=DeliveryStatus.DELIVERED).count() == 5


async def test_throttling_slows_sms_but_loses_nothing(peers: Peers) -> None:
    await admin.set_route(peers.subscriber_id, "message", Urgency.NORMAL, ["sms"])
    peers.smsc.throttle(4)  # ESME_RTHROTTLED to the next four submits
    for n in range(3):
        await peers.message(f"Σημείωμα {n}")
    await peers.wait_status(DeliveryStatus.DELIVERED, count=3)
    assert len(peers.smsc.messages) == 3
    throttled = [s for s in peers.smsc.submits if s.status == 0x58]
    assert len(throttled) == 4
    rows = await Delivery.filter(kind="message")
    assert all(r.status is DeliveryStatus.DELIVERED and r.attempts == 1 for r in rows)


async def test_an_undeliverable_sms_falls_back_to_mms_with_its_report(peers: Peers) -> None:
    await admin.set_route(peers.subscriber_id, "message", Urgency.NORMAL, ["sms", "mms"])
    peers.smsc.fail_receipts(MOBILE.lstrip("+"), "UNDELIV")
    await peers.message("Ο κ. Αντωνίου θα περάσει στις 5.")
    [mms_id] = await peers.wait_status(DeliveryStatus.DELIVERED)
    rows = await Delivery.filter(kind="message").order_by("id")
    assert [(r.channel, r.status) for r in rows] == [
        ("sms", DeliveryStatus.FAILED),
        ("mms", DeliveryStatus.DELIVERED),
    ]
    assert rows[1].id == mms_id and rows[0].last_error == "undeliverable (UNDELIV)"
    [submission] = peers.mmsc.submissions
    assert submission.recipients == (MOBILE.lstrip("+"),)


async def test_an_sms_from_the_subscriber_is_stored_and_stops_escalation(peers: Peers) -> None:
    await admin.set_route(peers.subscriber_id, "message", Urgency.URGENT, ["telegram", "sms"])
    await peers.message("Επείγον τηλεφώνημα από την τράπεζα.", urgent=True)
    await peers.wait_status(DeliveryStatus.SENT)
    received: asyncio.Queue[InboundMessage] = asyncio.Queue()

    async def hook(message: InboundMessage) -> None:
        received.put_nowait(message)

    peers.runtime.gateway.inbound.on_text = hook
    reply = "Το είδα, θα τους πάρω εγώ. " * 8  # long: arrives as a concatenated SMS
    statuses = await peers.smsc.inject_mo(MOBILE.lstrip("+"), "Frontdesk", reply)
    assert statuses and set(statuses) == {0}
    stored = await asyncio.wait_for(received.get(), WAIT)
    assert (stored.channel, stored.sender, stored.text) == ("sms", MOBILE, reply)
    assert stored.subscriber_id == peers.subscriber_id  # type: ignore[attr-defined]
    notification = await Notification.get(kind="message")
    assert notification.acknowledged_at is not None and notification.escalate_at is None
