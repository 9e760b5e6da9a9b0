"""`python main.py demo`: a short day at the office, played against the sandbox.

The real gateway (panoramisk over TCP, python-telegram-bot over HTTP, SQLite through
tortoise) runs against the sandbox's AMI server and Bot API on loopback. Three subscribers
in three languages link their Telegram chats, then: an agent answers a call, a call is
missed while two agents ring, a forward to a mobile nobody answers. Then agents take a
message for each, sent by the channel each prefers (Telegram, SMS, email), and an urgent
one reaches the Greek subscriber on every channel during her quiet hours (demo/channels.py).
A caller leaves the Russian subscriber a voicemail (transcribed) and a fax reaches the
Chinese one through the HylaFAX hook (demo/media.py). The Chinese subscriber forwards
calls from Telegram and the Greek one books an appointment by SMS (demo/control.py).
Prints a timeline and writes a JSON report (see README for its fields).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bot.runtime import Runtime
from demo import channels, control, media
from demo.report import build_report, print_timeline
from gateway import admin
from models.database import migrate
from models.db import Contact, Subscriber
from models.events import CallSnapshot
from models.settings import Settings, load_settings, with_section
from sandbox.ami_server import AmiServer
from sandbox.call_scripts import CallFactory
from sandbox.mmsc import MmscServer
from sandbox.smsc import SmscServer
from sandbox.smtp_sink import SmtpSink
from sandbox.telegram_api import BotApiServer, Call

TOKEN = "123456:demo-token"
AMI_SECRET = "demo-secret"
WAIT = 20.0


@dataclass(frozen=True)
class DemoSubscriber:
    name: str
    language: str
    timezone: str
    ddi: str
    mobile: str
    chat_id: int


SUBSCRIBERS = [
    DemoSubscriber("Ιατρείο Παπαδόπουλου", "el", "Europe/Athens", "2100001", "+306912345678", 1001),
    DemoSubscriber(
        "Юридическая фирма Иванова", "ru", "Europe/Moscow", "2100002", "+79161234567", 1002
    ),
    DemoSubscriber("王医生诊所", "zh", "Asia/Shanghai", "2100003", "+8613812345678", 1003),
]


def demo_settings(workdir: Path, ami_port: int, bot: BotApiServer) -> Settings:
    s = load_settings(None, environ={})
    s = with_section(s, "database", url=f"sqlite://{workdir / 'frontdesk.sqlite3'}")
    s = with_section(s, "ami", port=ami_port, secret=AMI_SECRET, ping_interval=5.0)
    s = with_section(
        s,
        "telegram",
        token=TOKEN,
        base_url=bot.base_url,
        base_file_url=bot.base_file_url,
        poll_timeout=1.0,
    )
    return with_section(s, "http", port=0)


def _sent_to(chat: str, call: Call) -> bool:
    return call.method == "sendMessage" and str(call.params.get("chat_id")) == chat


async def link_chats(runtime: Runtime, bot: BotApiServer) -> None:
    for sub in SUBSCRIBERS:
        created = await admin.add_subscriber(
            name=sub.name,
            ddis=[sub.ddi],
            language=sub.language,
            timezone=sub.timezone,
            mobile=sub.mobile,
        )
        bot.inject_message(sub.chat_id, f"/start {created.link_code}", language_code=sub.language)
        await bot.wait_for(partial(_sent_to, str(sub.chat_id)), timeout=WAIT)
    # A known customer of the Russian subscriber: the message names her.
    ru = await Subscriber.get(name=SUBSCRIBERS[1].name)
    await Contact.create(subscriber=ru, name="Мария Петрова", number="+302101234567")


async def play_day(runtime: Runtime, ami: AmiServer) -> list[str]:
    factory = CallFactory()
    el, ru, zh = SUBSCRIBERS
    scripts = [
        factory.agent_answered(
            ddi=el.ddi, caller_num="+302107654321", caller_name="Μαρία Κωνσταντίνου"
        ),
        factory.missed(ddi=ru.ddi, caller_num="+302101234567", caller_name="Мария Петрова"),
        factory.forward_no_answer(
            ddi=zh.ddi,
            caller_num="+8613900001111",
            caller_name="李娜",
            forward_to=zh.mobile,
            then="hangup",
        ),
    ]
    linkedids = [frames[0]["Linkedid"] for frames in scripts]
    ended: dict[str, asyncio.Event] = {lid: asyncio.Event() for lid in linkedids}

    def observe(snap: CallSnapshot) -> None:
        if snap.ended and snap.linkedid in ended:
            ended[snap.linkedid].set()

    runtime.gateway.observers.append(observe)
    for frames in scripts:
        await ami.play(frames, chunk_sizes=[97])  # TCP splits mid-character, as in real life
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ended.values())), WAIT)
    return linkedids


async def tap_call_back(bot: BotApiServer, ami: AmiServer) -> None:
    """The Russian subscriber taps "Call back" on the missed call."""
    chat = SUBSCRIBERS[1].chat_id
    missed = await bot.wait_for(
        lambda c: (
            c.method == "sendMessage"
            and str(c.params.get("chat_id")) == str(chat)
            and "reply_markup" in c.params
        ),
        timeout=WAIT,
    )
    message_id = missed.result["message_id"] if isinstance(missed.result, dict) else 0
    buttons = missed.params["reply_markup"]["inline_keyboard"][0]
    bot.inject_callback(chat, message_id, buttons[0]["callback_data"], language_code="ru")
    await ami.wait_action("Originate", timeout=WAIT)
    await bot.wait_for(lambda c: c.method == "answerCallbackQuery", timeout=WAIT)


async def wait_for_deliveries(bot: BotApiServer, expected: int) -> None:
    # The missed-call messages are the ones with buttons; link confirmations have none.
    def arrived() -> bool:
        return sum(1 for c in bot.sent if "reply_markup" in c.params) >= expected

    await bot.wait_until(arrived, WAIT, f"{expected} missed-call messages")


async def run_demo(report_path: str | None = None, verbose: bool = False) -> int:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="frontdesk-demo-") as tmp:
        async with (
            AmiServer(secret=AMI_SECRET) as ami,
            BotApiServer(TOKEN) as bot,
            SmtpSink() as smtp,
            SmscServer(system_id=channels.SMPP_ID, password=channels.SMPP_PASSWORD) as smsc,
            MmscServer(username=channels.MM7_USER, password=channels.MM7_PASSWORD) as mmsc,
        ):
            settings = demo_settings(Path(tmp), ami.port, bot)
            settings = channels.channel_settings(settings, smtp, smsc, mmsc)
            settings = media.media_settings(settings, Path(tmp))
            await migrate(settings.database.url)
            runtime = Runtime(settings)
            await runtime.start()
            # MM7 has no per-message report address: the MMSC is told where to post.
            mmsc.report_to = f"http://127.0.0.1:{runtime.gateway.http_port}/hooks/mm7"
            try:
                await ami.wait_logged_in(timeout=WAIT)
                await link_chats(runtime, bot)
                await play_day(runtime, ami)
                await wait_for_deliveries(bot, expected=2)
                await tap_call_back(bot, ami)
                await channels.set_preferences(SUBSCRIBERS)
                await channels.take_messages(runtime.gateway.notices, SUBSCRIBERS)
                await media.set_routes(SUBSCRIBERS)
                await media.voicemail_day(runtime.gateway, SUBSCRIBERS[1].ddi)
                await media.fax_day(runtime.gateway, SUBSCRIBERS[2].ddi, Path(tmp))
                await control.forward_from_telegram(bot, ami, SUBSCRIBERS[2].chat_id)
                await control.book_by_sms(smsc, SUBSCRIBERS[0].name, SUBSCRIBERS[0].mobile)
                await channels.wait_settled(runtime.gateway, WAIT)
                report = await build_report(ami, bot)
                report.update(await media.media_report())
                report.update(await control.control_report())
                report["sandbox"] = {
                    "emails": len(smtp.messages),
                    "sms": len(smsc.messages),
                    "mms": len(mmsc.submissions),
                    "mms_reports": len(mmsc.reports),
                }
            finally:
                await runtime.stop()
    print_timeline(report)
    if report_path:
        text = json.dumps(report, ensure_ascii=False, indent=2)
        await asyncio.to_thread(Path(report_path).write_text, text, "utf-8")
        print(f"\nreport written to {report_path}")
    return 0 if report_ok(report) else 1


def report_ok(report: dict[str, Any]) -> bool:
    """Each missed call told its subscriber once on Telegram; answered calls told nobody;
    messages went by each one's preferred channel; the urgent one on all of them."""
    missed = {c["subscriber"] for c in report["calls"] if c["outcome"] == "abandoned"}
    told = [d for d in report["deliveries"] if d["kind"] == "missed_call"]
    problems = channels.check_channels(report) + media.check_media(report)
    problems += control.check_control(report)
    if sorted(d["subscriber"] for d in told) != sorted(missed) or any(
        (d["channel"], d["status"]) != ("telegram", "sent") for d in told
    ):
        problems.append("expected one sent missed_call on telegram per missed call")
    for problem in problems:
        print(f"demo: {problem}", file=sys.stderr)
    return not problems
