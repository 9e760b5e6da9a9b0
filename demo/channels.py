"""The demo's channels: each subscriber prefers a different one, and an urgent message
reaches the Greek subscriber on all of them during her quiet hours.

Sandbox peers: an SMTP sink (aiosmtpd), an SMSC (SMPP 3.4, with delivery receipts) and an
MMSC (MM7, posting delivery reports back to the gateway's /hooks/mm7).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.app import Gateway
from gateway.control import admin
from gateway.delivery.notices import Notices
from models.db import Delivery, DeliveryStatus, Subscriber, Urgency
from models.settings import Settings, with_section
from models.vocab import Channel, Kind, Language
from sandbox.mmsc import MmscServer
from sandbox.smsc import SmscServer
from sandbox.smtp_sink import SmtpSink

SMPP_ID, SMPP_PASSWORD = "frontdesk", "demo-pw"
MM7_USER, MM7_PASSWORD = "frontdesk", "demo-mm7"
# language -> the channel that subscriber prefers for messages taken for them
PREFERRED = {Language.EL: Channel.TELEGRAM, Language.RU: Channel.SMS, Language.ZH: Channel.EMAIL}
URGENT_ROUTE = [Channel.TELEGRAM, Channel.SMS, Channel.EMAIL, Channel.MMS]
MESSAGES = {
    Language.EL: "Ο κ. Νικολάου ζητά να τον καλέσετε για τα αποτελέσματα.",
    Language.RU: "Звонил Сергей Павлов: перенесите встречу на пятницу, пожалуйста.",
    Language.ZH: "张先生来电：请回电确认明天的预约。",
}
URGENT_MESSAGE = "Ο ασθενής Κ. Δημητρίου έχει πυρετό 40°C, καλέστε τον αμέσως."
# Final states: a channel with delivery reports (SMS, MMS) ends `delivered`, others `sent`.
SETTLED: dict[str, set[DeliveryStatus]] = {
    Channel.TELEGRAM: {DeliveryStatus.SENT},
    Channel.EMAIL: {DeliveryStatus.SENT},
    Channel.SMS: {DeliveryStatus.DELIVERED},
    Channel.MMS: {DeliveryStatus.DELIVERED},
}
GAVE_UP = {DeliveryStatus.FAILED, DeliveryStatus.DEAD}


def channel_settings(s: Settings, smtp: SmtpSink, smsc: SmscServer, mmsc: MmscServer) -> Settings:
    s = with_section(
        s,
        "smtp",
        host=smtp.host,
        port=smtp.port,
        security="none",  # a loopback relay; production uses starttls or tls
        from_address="frontdesk@demo.example",
        reply_to="replies@demo.example",
    )
    s = with_section(
        s,
        "smpp",
        host=smsc.host,
        port=smsc.port,
        system_id=SMPP_ID,
        password=SMPP_PASSWORD,
        reconnect_min=0.1,
    )
    return with_section(
        s,
        "mms",
        url=mmsc.url,
        vasp_id="demo-vasp",
        vas_id="frontdesk",
        username=MM7_USER,
        password=MM7_PASSWORD,
        sender_address="1234",
    )


def quiet_now(timezone: str) -> str:
    """Quiet hours around the present moment in that zone, so the demo always meets them."""
    local = datetime.now(UTC).astimezone(ZoneInfo(timezone))
    start, end = local - timedelta(hours=1), local + timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


async def set_preferences(people: list[Any]) -> None:
    """Emails, preferred channels, and quiet hours for the Greek subscriber."""
    for person in people:
        subscriber = await Subscriber.get(name=person.name)
        first = PREFERRED[person.language]
        others = (Channel.TELEGRAM, Channel.EMAIL, Channel.SMS)
        route = [first, *(c for c in others if c != first)]
        await admin.set_route(subscriber.id, Kind.MESSAGE, Urgency.NORMAL, route)
        await admin.set_route(subscriber.id, Kind.MESSAGE, Urgency.URGENT, URGENT_ROUTE)
        quiet = quiet_now(person.timezone) if person.language == Language.EL else ""
        await admin.set_contact_points(
            subscriber.id, email=f"office{person.chat_id}@demo.example", quiet_hours=quiet
        )


async def take_messages(notices: Notices, people: list[Any]) -> None:
    """An agent takes a message for each; the Greek one also gets an urgent one."""
    for person in people:
        subscriber = await Subscriber.get(name=person.name)
        await admin.take_message(
            notices, subscriber.id, MESSAGES[person.language], caller_number="+302109999999"
        )
        if person.language == Language.EL:
            await admin.take_message(
                notices,
                subscriber.id,
                URGENT_MESSAGE,
                urgent=True,
                caller_number="+302108888888",
                caller_name="Κ. Δημητρίου",
            )


async def wait_settled(gateway: Gateway, timeout: float) -> None:
    """Until every message is settled (sent, or delivered where the channel reports it) or
    held for quiet hours; woken by the outbox and by delivery reports, never by a timer."""
    changed = asyncio.Event()
    gateway.outbox.observers.append(lambda _id, _status: changed.set())
    gateway.receipts.observers.append(lambda _id, _status: changed.set())
    async with asyncio.timeout(timeout):
        while not await _settled():
            await changed.wait()
            changed.clear()


async def _settled() -> bool:
    now = datetime.now(UTC)
    for d in await Delivery.all():
        held = d.status is DeliveryStatus.PENDING and d.next_attempt_at > now
        if not (held or d.status in SETTLED[d.channel] or d.status in GAVE_UP):
            return False
    return True


def check_channels(report: dict[str, Any]) -> list[str]:
    """What went wrong with the messages part of the day, if anything."""
    problems = []
    messages = [d for d in report["deliveries"] if d["kind"] == Kind.MESSAGE]
    for language, channel in PREFERRED.items():
        normal = [
            d
            for d in messages
            if d["language"] == language and d["urgency"] == "normal" and d["status"] != "pending"
        ]
        if [d["channel"] for d in normal] != ([] if language == Language.EL else [channel]):
            problems.append(f"{language}: the normal message did not go by {channel}")
    held = [d for d in messages if d["status"] == "pending"]
    if [d["language"] for d in held] != [Language.EL]:
        problems.append("el: the normal message was not held for quiet hours")
    urgent = {d["channel"]: d["status"] for d in messages if d["urgency"] == "urgent"}
    reported = (Channel.SMS, Channel.MMS)
    wanted = {c: ("delivered" if c in reported else "sent") for c in URGENT_ROUTE}
    if urgent != wanted:
        problems.append(f"urgent: expected {wanted}, got {urgent}")
    return problems
