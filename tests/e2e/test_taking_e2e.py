"""Taking a message from a card through the running service: the agent presses buttons and
types answers in the sandbox Bot API; the gateway is restarted halfway (a new runtime on
the same database) and the exchange goes on where it was; one message reaches the
subscriber. An urgent one reaches every channel at once (sandbox SMTP, SMSC, MMSC)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.runtime import Runtime
from gateway.control import callbacks
from models.database import migrate
from models.db import Delivery, DeliveryStatus, Notification, Urgency
from models.settings import Settings, with_section
from models.staff import TakenMessage
from sandbox.ami_server import AmiServer
from sandbox.mmsc import MmscServer
from sandbox.smsc import SmscServer
from sandbox.smtp_sink import SmtpSink
from sandbox.telegram_api import BotApiServer, Call
from tests.desk_people import (
    CALLER,
    EMAIL,
    MARIA,
    MOBILE,
    SUBSCRIBER_CHAT,
    People,
    button,
    make_people,
    message_id,
    said_to,
)
from tests.stack import sandbox_settings

TOKEN = "123456:DESK-token"
WAIT = 15.0


@dataclass
class Said:
    call: Call
    id: int


@dataclass
class Desk:
    ami: AmiServer
    bot: BotApiServer
    smtp: SmtpSink
    smsc: SmscServer
    settings: Settings
    runtime: Runtime
    people: People

    async def said(self, chat: int, words: str) -> Said:
        call = await self.bot.wait_for(said_to(chat, words), timeout=WAIT)
        return Said(call, message_id(call))

    async def press(self, chat: int, said: Said, label: str) -> None:
        self.bot.inject_callback(chat, said.id, button(said.call, label))

    def watch_sent(self) -> asyncio.Queue[int]:
        """The ids of deliveries the outbox stores as sent from now on."""
        sent: asyncio.Queue[int] = asyncio.Queue()

        def observe(delivery_id: int, status: DeliveryStatus) -> None:
            if status is DeliveryStatus.SENT:
                sent.put_nowait(delivery_id)

        self.runtime.gateway.outbox.observers.append(observe)
        return sent

    async def restart(self) -> None:
        """Stop the gateway and bot; start a new one on the same database."""
        await self.runtime.stop()
        self.runtime = Runtime(self.settings)
        await self.runtime.start()


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with (
        AmiServer(secret="s") as ami,
        BotApiServer(TOKEN) as bot,
        SmtpSink() as smtp,
        SmscServer(system_id="fd", password="pw") as smsc,
        MmscServer(username="fd", password="mm7-pw") as mmsc,
    ):
        s = sandbox_settings(tmp_path / "desk.sqlite3", ami, bot, TOKEN)
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
        )
        s = with_section(
            s, "mms", url=mmsc.url, vasp_id="v", vas_id="fd", username="fd", password="mm7-pw"
        )
        await migrate(s.database.url)
        runtime = Runtime(s)
        await runtime.start()
        d = Desk(ami, bot, smtp, smsc, s, runtime, await make_people())
        try:
            yield d
        finally:
            await d.runtime.stop()


async def test_a_message_taken_across_a_gateway_restart_reaches_the_subscriber_once(
    desk: Desk,
) -> None:
    bot, card = desk.bot, desk.people.card
    bot.inject_callback(MARIA, card.message_id or 1, callbacks.card(card.id, "msg"))
    await desk.said(MARIA, "Caller's name?")
    bot.inject_message(MARIA, "Anna Georgiou")
    number = await desk.said(MARIA, "Caller's number?")
    await desk.press(MARIA, number, "Keep")
    await desk.said(MARIA, "What is the message?")

    await desk.restart()  # halfway: nothing of the exchange is in memory any more

    bot.inject_message(MARIA, "Please call back about the test results.")
    category = await desk.said(MARIA, "Category?")
    await desk.press(MARIA, category, "Results")
    urgency = await desk.said(MARIA, "How urgent is it?")
    await desk.press(MARIA, urgency, "Normal")
    confirm = await desk.said(MARIA, "Send it?")
    await desk.press(MARIA, confirm, "Send")
    await desk.press(MARIA, confirm, "Send")  # a double tap
    await desk.said(MARIA, "Sent to Dr Papadopoulos.")

    got = await desk.said(SUBSCRIBER_CHAT, "Message for Dr Papadopoulos")
    text = str(got.call.params["text"])
    assert "Anna Georgiou" in text and CALLER in text
    assert "Category: Results or documents" in text
    assert text.endswith("Please call back about the test results.")
    await bot.wait_count("answerCallbackQuery", 4, timeout=WAIT)  # every press answered
    [taken] = await TakenMessage.all()
    assert (taken.caller_name, taken.caller_number, taken.category) == (
        "Anna Georgiou",
        CALLER,
        "results",
    )
    [notification] = await Notification.all()
    assert notification.dedupe_key == f"message:taken:{taken.id}"
    sent = bot.messages_to(SUBSCRIBER_CHAT)
    assert len([c for c in sent if "Message for" in str(c.params.get("text"))]) == 1


async def test_an_urgent_message_reaches_the_subscriber_on_every_channel(desk: Desk) -> None:
    bot, card = desk.bot, desk.people.card
    bot.inject_callback(MARIA, card.message_id or 1, callbacks.card(card.id, "msg"))
    await desk.said(MARIA, "Caller's name?")
    bot.inject_message(MARIA, "Anna Georgiou")
    number = await desk.said(MARIA, "Caller's number?")
    await desk.press(MARIA, number, "Keep")
    await desk.said(MARIA, "What is the message?")
    bot.inject_message(MARIA, "Chest pain since this morning: call now.")
    category = await desk.said(MARIA, "Category?")
    await desk.press(MARIA, category, "Please call")
    urgency = await desk.said(MARIA, "How urgent is it?")
    await desk.press(MARIA, urgency, "Urgent")
    confirm = await desk.said(MARIA, "Send it?")
    sent = desk.watch_sent()
    await desk.press(MARIA, confirm, "Send")
    async with asyncio.timeout(WAIT):
        ids = [await sent.get() for _ in range(4)]
    rows = await Delivery.filter(id__in=ids)
    assert sorted(r.channel for r in rows) == ["email", "mms", "sms", "telegram"]
    [n] = await Notification.all()
    assert n.urgency == Urgency.URGENT
    [mail] = await desk.smtp.wait_messages(1, timeout=WAIT)
    assert mail.rcpt_tos == (EMAIL,)
    body = mail.message.get_body(("plain",))
    assert body is not None and "Chest pain" in body.get_content()
    telegram = await desk.said(SUBSCRIBER_CHAT, "Urgent:")
    assert "Chest pain" in str(telegram.call.params["text"])
    assert {r.address for r in rows if r.channel in ("sms", "mms")} == {MOBILE}
