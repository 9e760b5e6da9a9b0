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
Then the operator desk: two agents sign in, get screen-pop cards for a known caller, one
takes an urgent message, transfers the call with a note and makes a task, and their
supervisor asks who is online (demo/desk.py; on the sandbox side only). Last the admins:
one adds a subscriber from /admin, is told of an AMI outage and its end, and pulls the
console, the day's statistics and the month's usage CSV (demo/admin.py; sandbox only too).
Prints a timeline and writes a JSON report (see README for its fields).

The PBX side is a small interface (PbxSide): the sandbox's AMI stand-in playing scripted
calls (SandboxPbx, here), or with `--pbx` a real private Asterisk (demo/pbx.py) where the
same calls, the call back and the voicemail happen for real.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from bot.runtime import Runtime
from demo import admin as admins
from demo import channels, control, desk, media, office, pbx
from demo.report import build_report, print_timeline
from gateway.control import admin
from models.database import migrate
from models.db import Contact, Subscriber
from models.events import CallSnapshot
from models.settings import Settings, load_settings, with_section
from models.vocab import Channel, Kind, Language, Scenario
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
    DemoSubscriber(
        "Ιατρείο Παπαδόπουλου", Language.EL, "Europe/Athens", "2100001", "+306912345678", 1001
    ),
    DemoSubscriber(
        "Юридическая фирма Иванова", Language.RU, "Europe/Moscow", "2100002", "+79161234567", 1002
    ),
    DemoSubscriber("王医生诊所", Language.ZH, "Asia/Shanghai", "2100003", "+8613812345678", 1003),
]
# The morning's callers (number, name), one per subscriber above: an agent answers the
# first, the second is missed while two agents ring, the third is forwarded to a mobile
# that does not answer and the caller hangs up.
CALLERS = [
    ("+302107654321", "Μαρία Κωνσταντίνου"),
    ("+302101234567", "Мария Петрова"),
    ("+8613900001111", "李娜"),
]


class PbxSide(Protocol):
    """What the day needs from its PBX, whichever it is."""

    ami_actions: list[dict[str, str]]  # what a stand-in received; [] for a real PBX

    def configure(self, s: Settings) -> Settings: ...
    async def connected(self, runtime: Runtime) -> None: ...
    async def play_calls(
        self,
        runtime: Runtime,
        people: Sequence[DemoSubscriber],
        callers: Sequence[tuple[str, str]],
    ) -> None: ...
    async def call_back_placed(self, mobile: str, caller: str) -> None: ...
    async def forwarded(self, ddi: str) -> None: ...
    async def voicemail(
        self, runtime: Runtime, bot: BotApiServer, person: DemoSubscriber
    ) -> None: ...
    async def report(self) -> dict[str, Any]: ...


class SandboxPbx:
    """The sandbox's AMI stand-in: scripted calls, and a log of the actions it received."""

    def __init__(self, ami: AmiServer) -> None:
        self.ami = ami
        self.ami_actions = ami.actions

    def configure(self, s: Settings) -> Settings:
        return with_section(s, "ami", port=self.ami.port, secret=AMI_SECRET)

    async def connected(self, runtime: Runtime) -> None:
        await self.ami.wait_logged_in(timeout=WAIT)

    async def play_calls(
        self,
        runtime: Runtime,
        people: Sequence[DemoSubscriber],
        callers: Sequence[tuple[str, str]],
    ) -> None:
        await play_day(runtime, self.ami)

    async def call_back_placed(self, mobile: str, caller: str) -> None:
        await self.ami.wait_action("Originate", timeout=WAIT)

    async def forwarded(self, ddi: str) -> None:
        await self.ami.wait_action("DBPut", lambda a: a.get("Val") == Scenario.FORWARD, WAIT)

    async def voicemail(self, runtime: Runtime, bot: BotApiServer, person: DemoSubscriber) -> None:
        await media.voicemail_day(runtime.gateway, person.ddi)

    async def report(self) -> dict[str, Any]:
        return {}


@asynccontextmanager
async def sandbox_pbx() -> AsyncIterator[SandboxPbx]:
    async with AmiServer(secret=AMI_SECRET) as ami:
        yield SandboxPbx(ami)


def pbx_side(asterisk: Path | None, workdir: Path) -> AbstractAsyncContextManager[PbxSide]:
    """The sandbox stand-in, or with an Asterisk launcher a real private PBX."""
    if asterisk is None:
        return sandbox_pbx()
    return pbx.private_pbx(asterisk, workdir, [s.ddi for s in SUBSCRIBERS])


def demo_settings(workdir: Path, bot: BotApiServer) -> Settings:
    """Everything but the PBX side's (PbxSide.configure)."""
    s = load_settings(None, environ={})
    s = with_section(s, "database", url=f"sqlite://{workdir / 'frontdesk.sqlite3'}")
    # A quick reconnect: the admins' part of the day stops the sandbox AMI for a moment.
    s = with_section(s, "ami", ping_interval=5.0, reconnect_min=0.05, reconnect_max=0.5)
    s = with_section(
        s,
        "telegram",
        token=TOKEN,
        base_url=bot.base_url,
        base_file_url=bot.base_file_url,
        poll_timeout=1.0,
    )
    s = with_section(s, "http", port=0)
    # The web desk is on: its cookies are signed with a key made for this run.
    return with_section(s, "web", session_secret=secrets.token_urlsafe(32))


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
    # The Chinese subscriber's mobile is abroad: forwarding to it needs the operator's
    # permission for international calls (the outbound policy, gateway/admin/policy.py).
    await Subscriber.filter(name=SUBSCRIBERS[2].name).update(
        outbound_allowed="national,mobile,international"
    )
    # A known customer of the Russian subscriber: the message names her.
    ru = await Subscriber.get(name=SUBSCRIBERS[1].name)
    await Contact.create(subscriber=ru, name="Мария Петрова", number="+302101234567")


async def play_day(runtime: Runtime, ami: AmiServer) -> list[str]:
    factory = CallFactory()
    el, ru, zh = SUBSCRIBERS
    (el_num, el_name), (ru_num, ru_name), (zh_num, zh_name) = CALLERS
    scripts = [
        factory.agent_answered(ddi=el.ddi, caller_num=el_num, caller_name=el_name),
        factory.missed(ddi=ru.ddi, caller_num=ru_num, caller_name=ru_name),
        factory.forward_no_answer(
            ddi=zh.ddi,
            caller_num=zh_num,
            caller_name=zh_name,
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


async def tap_call_back(bot: BotApiServer, side: PbxSide) -> None:
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
    await side.call_back_placed(SUBSCRIBERS[1].mobile, CALLERS[1][0])
    await bot.wait_for(lambda c: c.method == "answerCallbackQuery", timeout=WAIT)


async def wait_for_deliveries(bot: BotApiServer, expected: int) -> None:
    # The missed-call messages are the ones with buttons; link confirmations have none.
    def arrived() -> bool:
        return sum(1 for c in bot.sent if "reply_markup" in c.params) >= expected

    await bot.wait_until(arrived, WAIT, f"{expected} missed-call messages")


async def run_demo(
    report_path: str | None = None, verbose: bool = False, asterisk: Path | None = None
) -> int:
    """The day; with `asterisk` (a launcher, see demo/pbx.py) its calls on a real PBX."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="frontdesk-demo-") as tmp:
        async with (
            pbx_side(asterisk, Path(tmp)) as side,
            BotApiServer(TOKEN) as bot,
            SmtpSink() as smtp,
            SmscServer(system_id=channels.SMPP_ID, password=channels.SMPP_PASSWORD) as smsc,
            MmscServer(username=channels.MM7_USER, password=channels.MM7_PASSWORD) as mmsc,
        ):
            settings = demo_settings(Path(tmp), bot)
            settings = channels.channel_settings(settings, smtp, smsc, mmsc)
            settings = side.configure(media.media_settings(settings, Path(tmp)))
            await migrate(settings.database.url)
            runtime = Runtime(settings)
            await runtime.start()
            # MM7 has no per-message report address: the MMSC is told where to post.
            mmsc.report_to = f"http://127.0.0.1:{runtime.gateway.http_port}/hooks/mm7"
            try:
                await side.connected(runtime)
                await link_chats(runtime, bot)
                await side.play_calls(runtime, SUBSCRIBERS, CALLERS)
                await wait_for_deliveries(bot, expected=2)
                await tap_call_back(bot, side)
                await channels.set_preferences(SUBSCRIBERS)
                await channels.take_messages(runtime.gateway.notices, SUBSCRIBERS)
                await media.set_routes(SUBSCRIBERS)
                await side.voicemail(runtime, bot, SUBSCRIBERS[1])
                await media.fax_day(runtime.gateway, SUBSCRIBERS[2].ddi, Path(tmp))
                await control.forward_from_telegram(bot, SUBSCRIBERS[2].chat_id)
                await side.forwarded(SUBSCRIBERS[2].ddi)
                await control.book_by_sms(smsc, SUBSCRIBERS[0].name, SUBSCRIBERS[0].mobile)
                # The operator desk (demo/desk.py): only the sandbox plays the agents' phones.
                seen = None
                admin_seen = None
                office_seen: dict[str, Any] = {}
                if isinstance(side, SandboxPbx):
                    ru = SUBSCRIBERS[1]
                    seen = await desk.desk_day(runtime, bot, side.ami, ru.name, ru.ddi, CALLERS[1])
                    # The admins (demo/admin.py): a subscriber added, an outage told, the
                    # console, statistics and usage pulled; on the sandbox only too.
                    admin_seen = await admins.admin_day(runtime, bot, side.ami)
                await channels.wait_settled(runtime.gateway, WAIT)
                report = await build_report(side.ami_actions, bot)
                report.update(await media.media_report())
                report.update(await control.control_report())
                report.update(await desk.desk_report(seen))
                report.update(await admins.admin_report(admin_seen))
                if isinstance(side, SandboxPbx):
                    # Office hours, a reminder and the web desk (demo/office.py), after the
                    # day's report: what they add is reported in their own section.
                    el = SUBSCRIBERS[0]
                    office_seen = await office.office_report(
                        runtime, side.ami, smsc, el.name, el.ddi
                    )
                report.update(office_seen)
                report["sandbox"] = {
                    "emails": len(smtp.messages),
                    "sms": len(smsc.messages),
                    "mms": len(mmsc.submissions),
                    "mms_reports": len(mmsc.reports),
                }
                report.update(await side.report())
            finally:
                await runtime.stop()
    print_timeline(report)
    desk.print_desk(report)
    admins.print_admin(report)
    office.print_office(report)
    if report_path:
        text = json.dumps(report, ensure_ascii=False, indent=2)
        await asyncio.to_thread(Path(report_path).write_text, text, "utf-8")
        print(f"\nreport written to {report_path}")
    return 0 if report_ok(report) else 1


def report_ok(report: dict[str, Any]) -> bool:
    """Each missed call told its subscriber once on Telegram; answered calls told nobody;
    messages went by each one's preferred channel; the urgent one on all of them."""
    missed = {c["subscriber"] for c in report["calls"] if c["outcome"] == "abandoned"}
    told = [d for d in report["deliveries"] if d["kind"] == Kind.MISSED_CALL]
    problems = channels.check_channels(report) + media.check_media(report)
    problems += control.check_control(report)
    if "pbx" not in report:  # the desk's part of the day is played on the sandbox only
        problems += desk.check_desk(report)
        problems += admins.check_admin(report)
        problems += office.check_office(report)
    # What reached the PBX: the sandbox's action log, or the real PBX's own state.
    problems += pbx.check_pbx(report) if "pbx" in report else control.check_ami_actions(report)
    if sorted(d["subscriber"] for d in told) != sorted(missed) or any(
        (d["channel"], d["status"]) != (Channel.TELEGRAM, "sent") for d in told
    ):
        problems.append("expected one sent missed_call on telegram per missed call")
    for problem in problems:
        print(f"demo: {problem}", file=sys.stderr)
    return not problems
