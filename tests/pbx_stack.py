"""The live stack: a private real Asterisk, the real gateway and bot on AMI over TCP, the
sandbox Bot API for the subscribers' Telegram. Tests place calls as the outside world
would (the harness's own AMI Originate) and watch what the gateway made of them.

The Asterisk launcher comes from FRONTDESK_TEST_ASTERISK; without it the `pbx` tests are
skipped with one line, unless FRONTDESK_PBX_REQUIRED is set (CI), when they fail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bot.runtime import Runtime
from gateway.control import admin
from models.database import migrate
from models.db import Call as CallRow
from models.db import Notification
from models.events import CallSnapshot
from models.settings import Settings, load_settings, with_section
from sandbox.ami_harness import AmiHarness, Frame
from sandbox.real_pbx import (
    AMI_USER,
    BEEP,
    HARNESS_USER,
    PbxConfig,
    PrivateAsterisk,
    greeting_seconds,
    make_prompts,
    missing_tools,
    wav_seconds,
)
from sandbox.telegram_api import BotApiServer
from sandbox.telegram_api import Call as BotCall
from tests.pg_cluster import database_url_for

ROOT = Path(__file__).resolve().parent.parent
DIALPLAN = ROOT / "deploy" / "asterisk" / "extensions_frontdesk.conf"
SPEECH = Path(__file__).parent / "fixtures" / "voicemail" / "msg0000.wav"
ASTERISK_ENV = "FRONTDESK_TEST_ASTERISK"
REQUIRED_ENV = "FRONTDESK_PBX_REQUIRED"
TOKEN = "123456:LIVE-PBX-token"
WAIT = 60.0


def launcher() -> Path | None:
    value = os.environ.get(ASTERISK_ENV, "")
    return Path(value) if value else None


def why_not_live() -> str | None:
    """Why the live PBX suite cannot run here, or None when it can."""
    path = launcher()
    if path is None:
        return f"live PBX tests skipped: {ASTERISK_ENV} is not set (make test sets it)"
    if not path.is_file():
        return f"live PBX tests: {ASTERISK_ENV}={path} is not a file"
    if missing := missing_tools():
        return f"live PBX tests: {', '.join(missing)} not installed (make test installs them)"
    return None


_PROMPTS: Path | None = None


def prompts(cache: Path) -> Path:
    """Prompts are spoken once per test session and copied into each PBX."""
    global _PROMPTS
    if _PROMPTS is None:
        make_prompts(cache, {"test-speech": SPEECH})
        _PROMPTS = cache
    return _PROMPTS


@dataclass
class Line:
    """A subscriber and the Telegram chat linked to it."""

    subscriber_id: int
    ddi: str
    chat: int
    mobile: str


@dataclass
class LiveStack:
    pbx: PrivateAsterisk
    harness: AmiHarness
    bot: BotApiServer
    runtime: Runtime
    settings: Settings
    ended: list[CallSnapshot] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    # -- people -----------------------------------------------------------------------

    async def line(self, ddi: str, chat: int, *, language: str = "en", mobile: str = "") -> Line:
        mobile = mobile or f"+30699{ddi[-7:].zfill(7)}"  # one subscriber per mobile
        created = await admin.add_subscriber(
            name=f"Office {ddi}",
            ddis=[ddi],
            language=language,
            timezone="Europe/Athens",
            mobile=mobile,
        )
        await self.runtime.gateway.control.push_lines(created.subscriber)
        self.bot.inject_message(chat, f"/start {created.link_code}", language_code=language)
        await self.bot.wait_for(lambda c: _to_chat(c, chat), timeout=WAIT)
        return Line(created.subscriber.id, ddi, chat, created.subscriber.mobile or "")

    # -- the outside world ------------------------------------------------------------

    async def agents(self, **modes: str) -> None:
        """How each agent behaves: answer | reject | ring."""
        for agent, mode in modes.items():
            await self.pbx.db_put("test", f"agent/{agent}", mode)

    async def number(self, number: str, mode: str) -> None:
        """How an outside number behaves when the trunk dials it."""
        await self.pbx.db_put("test", f"pstn/{number}", mode)

    async def astdb(self, key: str, value: str) -> None:
        await self.pbx.db_put("frontdesk", key, value)

    def greeting(self, box: str) -> float:
        """Seconds from VoiceMail(box,u) answering to the end of its beep."""
        return greeting_seconds(self.pbx.sounds, box)

    def closed_greeting(self) -> float:
        """Seconds from the closed scenario answering to the end of VoiceMail(box,s)'s
        beep: the half-second settle, the announcement, the beep."""
        return (
            0.5
            + wav_seconds(self.pbx.sounds / "frontdesk-closed.wav")
            + wav_seconds(self.pbx.sounds / f"{BEEP}.wav")
        )

    async def restart_pbx(
        self, how: signal.Signals, while_down: Callable[[], Awaitable[object]] | None = None
    ) -> None:
        """Stop Asterisk by signal (SIGKILL: a crash, no Hangup events), run `while_down`,
        start it again on the same state and port, and wait until the gateway has logged in
        again, reconciled its calls and re-asserted AstDB."""
        syncs = self.runtime.gateway.pbx_syncs
        await self.pbx.stop(how)
        await self.harness.stop()
        if while_down is not None:
            await while_down()
        await self.pbx.start()
        harness = AmiHarness(self.pbx.ami_port, HARNESS_USER, self.pbx.config.harness_secret)
        harness.events.extend(self.harness.events)  # what happened before stays visible
        await harness.start()
        self.harness = harness
        await self.runtime.gateway.wait_synced(after=syncs, timeout=WAIT)

    # -- waiting on what happened -----------------------------------------------------

    def _observe(self, snap: CallSnapshot) -> None:
        if snap.ended:
            self.ended.append(snap)
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def call_ended(
        self, ddi: str, count: int = 1, timeout: float = WAIT
    ) -> list[CallSnapshot]:
        """The first `count` calls to `ddi` the gateway has tracked to their end and routed."""

        def done() -> list[CallSnapshot] | None:
            found = [s for s in self.ended if s.ddi == ddi]
            return found[:count] if len(found) >= count else None

        async with asyncio.timeout(timeout), self._changed:
            return await self._changed.wait_for(done)

    async def user_event(self, name: str, ddi: str, timeout: float = WAIT) -> Frame:
        return await self.harness.wait_event(
            lambda e: e.get("UserEvent") == name and e.get("DDI") == ddi, timeout
        )

    async def heard(self, name: str, ddi: str, ends: int = 1) -> list[Frame]:
        """The `name` UserEvents of `ddi`'s calls once the harness's own AMI session has
        read `ends` FrontdeskCallEnd (the gateway's session may have read them first)."""
        await self.harness.wait_until(
            lambda: len(self.user_events("FrontdeskCallEnd", ddi)) >= ends, WAIT
        )
        return self.user_events(name, ddi)

    def user_events(self, name: str, ddi: str) -> list[Frame]:
        return [
            e for e in self.harness.events if e.get("UserEvent") == name and e.get("DDI") == ddi
        ]

    def missed_alerts(self, chat: int) -> list[BotCall]:
        return [c for c in self.bot.messages_to(chat) if _is_missed_alert(c)]

    def voice_notes(self, chat: int) -> list[BotCall]:
        return [c for c in self.bot.messages_to(chat) if c.method == "sendVoice"]

    async def notices(self, kind: str, line: Line) -> list[Notification]:
        """What the gateway decided to tell the subscriber (routing done, whatever the
        channels did with it): the authority for "no alert" checks."""
        await self.runtime.gateway.drain()
        return await Notification.filter(kind=kind, subscriber_id=line.subscriber_id)

    @staticmethod
    async def call_row(linkedid: str) -> CallRow:
        return await CallRow.get(linkedid=linkedid)


def _to_chat(call: BotCall, chat: int) -> bool:
    return call.method == "sendMessage" and str(call.params.get("chat_id")) == str(chat)


def _is_missed_alert(call: BotCall) -> bool:
    buttons = (call.params.get("reply_markup") or {}).get("inline_keyboard") or []
    return call.method == "sendMessage" and any(
        b.get("callback_data", "").startswith("fwdme:") for row in buttons for b in row
    )


def live_settings(pbx: PrivateAsterisk, bot: BotApiServer, tmp: Path, engine: str) -> Settings:
    s = load_settings(None, environ={})
    s = with_section(s, "database", url=database_url_for(tmp / "live.sqlite3"))
    s = with_section(
        s,
        "ami",
        port=pbx.ami_port,
        username=AMI_USER,
        secret=pbx.config.ami_secret,
        reconnect_min=0.1,
        reconnect_max=0.5,
        ping_interval=1.0,
        ping_timeout=3.0,
    )
    s = with_section(
        s, "telegram", token=TOKEN, base_url=bot.base_url, base_file_url=bot.base_file_url
    )
    s = with_section(s, "telegram", poll_timeout=1.0)
    s = with_section(s, "http", port=0)
    s = with_section(s, "outbox", idle_poll=0.1)
    s = with_section(
        s, "voicemail", spool=str(pbx.spool), archive=str(tmp / "archive"), scan_interval=2.0
    )
    return with_section(s, "transcription", engine=engine)


@asynccontextmanager
async def live_stack(
    tmp: Path,
    *,
    mailboxes: tuple[str, ...],
    engine: str = "none",
    configure: Callable[[PbxConfig], None] | None = None,
) -> AsyncIterator[LiveStack]:
    path = launcher()
    assert path is not None, why_not_live()
    config = PbxConfig(dialplan=DIALPLAN, mailboxes=mailboxes)
    if configure is not None:
        configure(config)
    pbx = PrivateAsterisk(path, tmp / "pbx", config)
    pbx.write_config()
    shutil.copytree(prompts(tmp.parent / "pbx-prompts"), pbx.sounds, dirs_exist_ok=True)
    await pbx.start()
    try:
        async with BotApiServer(TOKEN) as bot:
            harness = AmiHarness(pbx.ami_port, HARNESS_USER, config.harness_secret)
            await harness.start()
            settings = live_settings(pbx, bot, tmp, engine)
            await migrate(settings.database.url)
            runtime = Runtime(settings)
            stack = LiveStack(pbx, harness, bot, runtime, settings)
            try:
                await runtime.start()
                runtime.gateway.observers.append(stack._observe)
                await runtime.gateway.wait_synced(after=0, timeout=WAIT)
                await stack.agents(agent1="ring", agent2="ring")
                yield stack
            finally:
                await runtime.stop()
                await stack.harness.stop()  # the one in use: restart_pbx replaces it
    finally:
        await pbx.stop()
