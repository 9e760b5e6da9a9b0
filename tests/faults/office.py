"""One office for the in-process fault scenarios: the product (gateway and bot, as
`main.py run` composes them) against every sandbox peer on loopback, one subscriber
reachable on all four channels, short retries so an outage of seconds proves what one
of minutes would. Waits are on the outbox's and the receipts' observers, never sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.runtime import Runtime
from gateway.control import admin
from models.db import DeliveryStatus, Role, Urgency, User
from models.settings import with_section
from sandbox.ami_server import AmiServer
from sandbox.mmsc import MmscServer
from sandbox.smsc import SmscServer
from sandbox.smtp_sink import SmtpSink
from sandbox.telegram_api import BotApiServer
from tests.faults import ledger
from tests.stack import running, sandbox_settings

TOKEN = "246810:FAULTS-token"
CHAT = 7301
MOBILE = "+306944000777"
EMAIL = "office@example.org"
DDI = "2100301"
SMPP = ("faults", "smpp-pw")
MM7 = ("faults", "mm7-pw")
WAIT = 30.0

# Where each channel's delivery ends: sent (Telegram, email) or the network's report.
FINAL = {
    "telegram": {DeliveryStatus.SENT},
    "email": {DeliveryStatus.SENT},
    "sms": {DeliveryStatus.DELIVERED},
    "mms": {DeliveryStatus.DELIVERED},
}
GIVEN_UP = {DeliveryStatus.FAILED, DeliveryStatus.DEAD}
# Retries every 0.05-0.5 s; a lease short enough that a send whose outcome was not stored
# comes back (as a duplicate the ledger counts) within the test, not after a minute.
OUTBOX = {"retry_initial": 0.05, "retry_max": 0.5, "idle_poll": 0.1, "lease_seconds": 3.0}


@dataclass
class Office:
    ami: AmiServer
    bot: BotApiServer
    smtp: SmtpSink
    smsc: SmscServer
    mmsc: MmscServer
    runtime: Runtime
    subscriber: int
    database: Path
    # The latest status stored for each delivery, as the outbox and the receipts tell it.
    status: dict[int, DeliveryStatus] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def observe(self, delivery: int, status: DeliveryStatus) -> None:
        self.status[delivery] = status
        self._changed.set()

    @property
    def healthz(self) -> str:
        return f"http://127.0.0.1:{self.runtime.gateway.http_port}/healthz"

    async def route(self, *hops: str, subscriber: int | None = None) -> None:
        """Messages for the subscriber go by these hops ("telegram+email": both at once)."""
        sid = subscriber or self.subscriber
        await admin.set_route(sid, "message", Urgency.NORMAL, list(hops))

    async def more_chats(self, count: int) -> list[int]:
        """`count` more subscribers, each with a Telegram chat of its own (Telegram paces
        one chat to about a message a second: a burst spreads over chats)."""
        return [
            await _subscriber(f"Office {n}", f"{DDI}{n:02d}", CHAT + n) for n in range(1, count + 1)
        ]

    async def messages(self, texts: Sequence[str], subscriber: int | None = None) -> None:
        sid = subscriber or self.subscriber
        for text in texts:
            await admin.take_message(self.runtime.gateway.notices, sid, text)

    def finished(self, channels: dict[int, str]) -> int:
        """How many of these deliveries ({id: channel}) reached their end."""
        return sum(
            self.status.get(i) in FINAL[channel] | GIVEN_UP for i, channel in channels.items()
        )

    async def until(self, condition: Callable[[], bool], timeout: float = WAIT) -> None:
        """Until `condition` holds, rechecked whenever a delivery's status is stored."""
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def tally(self, name: str) -> ledger.Tally:
        return await ledger.tally(
            name, bot=self.bot, smsc=self.smsc, mmsc=self.mmsc, smtp=self.smtp
        )


@asynccontextmanager
async def office(
    database: Path, database_options: str = "", database_url: str = "", **outbox: Any
) -> AsyncIterator[Office]:
    """The office running on `database` (the `fault_db` fixture: a migrated SQLite file,
    or the PostgreSQL database the test stack maps it to); `outbox` overrides the short
    retry settings below; `database_url`: a server of the test's own instead."""
    async with (
        AmiServer(secret="s") as ami,
        BotApiServer(TOKEN) as bot,
        SmtpSink() as smtp,
        SmscServer(system_id=SMPP[0], password=SMPP[1]) as smsc,
        MmscServer(username=MM7[0], password=MM7[1]) as mmsc,
    ):
        s = sandbox_settings(database, ami, bot, TOKEN)
        if database_options:  # SQLite's own (busy_timeout): that test is SQLite's
            s = with_section(s, "database", url=f"sqlite://{database}{database_options}")
        if database_url:
            s = with_section(s, "database", url=database_url)
        s = with_section(s, "ami", reconnect_min=0.05)
        s = with_section(s, "outbox", **{**OUTBOX, **outbox})
        s = with_section(s, "smtp", host=smtp.host, port=smtp.port, security="none")
        s = with_section(
            s,
            "smpp",
            host=smsc.host,
            port=smsc.port,
            system_id=SMPP[0],
            password=SMPP[1],
            reconnect_min=0.05,
            reconnect_max=0.2,
            # A submit whose answer a test holds is not given up (and sent again) meanwhile.
            response_timeout=30.0,
        )
        s = with_section(
            s, "mms", url=mmsc.url, vasp_id="v", vas_id="fd", username=MM7[0], password=MM7[1]
        )
        async with running(s) as runtime:
            mmsc.report_to = f"http://127.0.0.1:{runtime.gateway.http_port}/hooks/mm7"
            sid = await _subscriber("Fault office", DDI, CHAT, email=EMAIL, mobile=MOBILE)
            await ami.wait_logged_in(1, timeout=WAIT)
            here = Office(ami, bot, smtp, smsc, mmsc, runtime, sid, database)
            runtime.gateway.outbox.observers.append(here.observe)
            runtime.gateway.receipts.observers.append(here.observe)
            yield here


async def _subscriber(name: str, ddi: str, chat: int, email: str = "", mobile: str = "") -> int:
    created = await admin.add_subscriber(
        name=name, ddis=[ddi], language="en", timezone="Europe/Athens"
    )
    sid = created.subscriber.id
    await admin.set_contact_points(sid, email=email or None, mobile=mobile or None, quiet_hours="")
    await User.create(
        name=name, role=Role.SUBSCRIBER, telegram_chat_id=chat, subscriber=created.subscriber
    )
    return sid
