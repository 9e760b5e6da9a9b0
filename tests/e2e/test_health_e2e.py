"""Health alerts through the running service: the sandbox AMI stopped and started again,
the sandbox SMSC stopped and started again; each outage gives the admin chat exactly one
alert and one "resolved" at the sandbox Bot API, through the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.runtime import Runtime
from models.database import migrate
from models.db import Delivery, HealthIncident, Role, User
from models.settings import Settings, with_section
from sandbox.ami_server import AmiServer
from sandbox.smsc import SmscServer
from sandbox.telegram_api import BotApiServer, Call
from tests.stack import sandbox_settings

TOKEN = "123456:HEALTH-token"
ADMIN_CHAT = 7070
WAIT = 15.0
AMI_DOWN = "Frontdesk alert: The PBX link (AMI) is down"
AMI_BACK = "Resolved: The PBX link (AMI) is down"
SMSC_DOWN = "Frontdesk alert: The SMSC is not bound"
SMSC_BACK = "Resolved: The SMSC is not bound"


@dataclass
class Service:
    ami: AmiServer
    bot: BotApiServer
    smsc: SmscServer
    runtime: Runtime

    def to_admin(self, words: str) -> list[Call]:
        return [
            c
            for c in self.bot.sent
            if c.method == "sendMessage"
            and str(c.params.get("chat_id")) == str(ADMIN_CHAT)
            and str(c.params.get("text", "")).startswith(words)
        ]

    async def told(self, words: str) -> Call:
        return await self.bot.wait_for(
            lambda c: (
                c.method == "sendMessage"
                and str(c.params.get("chat_id")) == str(ADMIN_CHAT)
                and str(c.params.get("text", "")).startswith(words)
            ),
            timeout=WAIT,
        )


def settings(tmp_path: Path, ami: AmiServer, bot: BotApiServer, smsc: SmscServer) -> Settings:
    s = sandbox_settings(tmp_path / "health.sqlite3", ami, bot, TOKEN)
    s = with_section(s, "ami", reconnect_min=0.05, reconnect_max=0.2)
    s = with_section(
        s,
        "smpp",
        host=smsc.host,
        port=smsc.port,
        system_id="fd",
        password="pw",
        reconnect_min=0.05,
        reconnect_max=0.2,
        response_timeout=2.0,
    )
    # Quick checks; an outage counts after 0.3 s, and is over after 0.5 s without one.
    return with_section(s, "health", check_interval=0.05, open_after=0.3, hold_down=0.5)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with (
        AmiServer(secret="s") as ami,
        BotApiServer(TOKEN) as bot,
        SmscServer(system_id="fd", password="pw") as smsc,
    ):
        s = settings(tmp_path, ami, bot, smsc)
        await migrate(s.database.url)
        runtime = Runtime(s)
        await runtime.start()
        try:
            await User.create(name="Ops", role=Role.ADMIN, telegram_chat_id=ADMIN_CHAT)
            await ami.wait_logged_in(timeout=WAIT)
            await smsc.wait_bound(1, timeout=WAIT)
            yield Service(ami, bot, smsc, runtime)
        finally:
            await runtime.stop()


async def test_the_ami_going_away_is_told_once_and_its_return_once(service: Service) -> None:
    gateway = service.runtime.gateway
    await service.ami.stop()  # Asterisk gone: nothing listens on its port
    alert = await service.told(AMI_DOWN)
    assert "not logged in to 127.0.0.1" in alert.params["text"]
    assert (await gateway.health())["incidents"] == ["ami"]

    logins = service.ami.logins
    await service.ami.start()  # back on the same port; the gateway logs in again
    await service.ami.wait_until(lambda: service.ami.logins > logins, WAIT)
    await service.told(AMI_BACK)
    assert len(service.to_admin(AMI_DOWN)) == len(service.to_admin(AMI_BACK)) == 1
    [incident] = await HealthIncident.filter(key="ami")
    assert incident.open_key is None and incident.resolved_at is not None
    rows = await Delivery.filter(kind="admin_alert").order_by("id")
    assert [(r.address, r.channel) for r in rows] == [(str(ADMIN_CHAT), "telegram")] * 2
    assert [r.dedupe_key for r in rows] == [
        f"health:{incident.id}:opened:admin:{ADMIN_CHAT}",
        f"health:{incident.id}:resolved:admin:{ADMIN_CHAT}",
    ]
    assert (await gateway.health())["incidents"] == []


async def test_the_smsc_unbinding_is_told_once_and_its_return_once(service: Service) -> None:
    await service.smsc.stop()  # the SMSC goes away: the SMS notifier is unbound
    await service.told(SMSC_DOWN)
    await service.smsc.start()
    await service.smsc.wait_until(lambda: service.smsc.bound == 1, WAIT)
    await service.told(SMSC_BACK)
    assert len(service.to_admin(SMSC_DOWN)) == len(service.to_admin(SMSC_BACK)) == 1
    assert service.to_admin(AMI_DOWN) == []
    [incident] = await HealthIncident.filter(key="smpp")
    assert incident.resolved_at is not None
    assert await Delivery.filter(kind="admin_alert").count() == 2
