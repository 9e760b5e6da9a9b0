"""/metrics and the components of /healthz on the running service (gateway and bot)
against the sandbox AMI, Bot API and SMSC over loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from tortoise.transactions import in_transaction

from bot.runtime import Runtime
from gateway.control import admin
from models.database import migrate
from models.db import DeliveryStatus
from models.events import CallSnapshot
from models.settings import with_section
from sandbox.ami_server import AmiServer
from sandbox.call_scripts import CallFactory
from sandbox.smsc import SmscServer
from sandbox.telegram_api import BotApiServer
from tests.stack import health, sandbox_settings

TOKEN = "123456:METRICS-token"
CHAT = 6160
DDI = "2100060"
WAIT = 15.0


@dataclass
class Service:
    ami: AmiServer
    bot: BotApiServer
    smsc: SmscServer
    runtime: Runtime
    stored: asyncio.Queue[tuple[int, DeliveryStatus]]

    async def sent(self, outcome: DeliveryStatus) -> None:
        """Until the outbox stores an attempt with this outcome."""
        async with asyncio.timeout(WAIT):
            while (await self.stored.get())[1] is not outcome:
                pass

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.runtime.gateway.http_port}{path}"

    async def scrape(self) -> dict[str, list[Sample]]:
        """GET /metrics, parsed: each sample by its name (the _total, _count... included)."""
        async with aiohttp.ClientSession() as http, http.get(self.url("/metrics")) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
            text = await response.text()
        samples: dict[str, list[Sample]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append(sample)
        return samples


def value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    """The one sample of `name` whose labels include `labels`."""
    [found] = [s for s in samples[name] if labels.items() <= s.labels.items()]
    return found.value


class _Unbound(logging.Handler):
    """Set once the SMS notifier, its link gone, has failed to bind again."""

    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("sms: no bind to"):
            self.event.set()


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with (
        AmiServer(secret="s") as ami,
        BotApiServer(TOKEN) as bot,
        SmscServer(system_id="fd", password="pw") as smsc,
    ):
        s = sandbox_settings(tmp_path / "metrics.sqlite3", ami, bot, TOKEN)
        s = with_section(
            s,
            "smpp",
            host=smsc.host,
            port=smsc.port,
            system_id="fd",
            password="pw",
            reconnect_min=0.1,
            reconnect_max=0.5,
            response_timeout=2.0,
        )
        s = with_section(s, "outbox", retry_initial=0.2, retry_max=1.0)
        await migrate(s.database.url)
        runtime = Runtime(s)
        await runtime.start()
        try:
            await ami.wait_logged_in(timeout=WAIT)
            created = await admin.add_subscriber(
                name="Office", ddis=[DDI], language="en", timezone="Europe/Athens"
            )
            bot.inject_message(CHAT, f"/start {created.link_code}", language_code="en")
            await bot.wait_for(lambda c: c.method == "sendMessage", timeout=WAIT)
            stored: asyncio.Queue[tuple[int, DeliveryStatus]] = asyncio.Queue()
            runtime.gateway.outbox.observers.append(lambda i, st: stored.put_nowait((i, st)))
            yield Service(ami, bot, smsc, runtime, stored)
        finally:
            await runtime.stop()


async def _missed_call(service: Service, outcome: DeliveryStatus = DeliveryStatus.SENT) -> None:
    """One caller gives up; returns once the alert's attempt is stored with `outcome`."""
    frames = CallFactory().missed(ddi=DDI, caller_num="+302101234567", caller_name="Maria")
    ended = asyncio.Event()

    def observe(snap: CallSnapshot) -> None:
        if snap.ended:
            ended.set()

    service.runtime.gateway.observers.append(observe)
    await service.ami.play(frames)
    await asyncio.wait_for(ended.wait(), WAIT)
    await service.sent(outcome)


async def test_metrics_move_with_a_missed_call_and_its_alert(service: Service) -> None:
    before = await service.scrape()
    assert value(before, "frontdesk_scrape_db_ok") == 1
    assert "frontdesk_send_seconds_count" not in before  # no send yet: no series
    await _missed_call(service)

    after = await service.scrape()
    assert value(after, "frontdesk_ami_frames_total") > value(before, "frontdesk_ami_frames_total")
    assert value(after, "frontdesk_ami_connected") == 1
    assert value(after, "frontdesk_calls_total", status="lost") == 1
    assert value(after, "frontdesk_calls_in_progress") == 0
    assert value(after, "frontdesk_deliveries", channel="telegram", status="sent") == 1
    assert value(after, "frontdesk_send_seconds_count", channel="telegram") == 1
    assert value(after, "frontdesk_send_seconds_sum", channel="telegram") > 0
    assert value(after, "frontdesk_sends_total", channel="telegram", outcome="ok") == 1
    assert value(after, "frontdesk_outbox_depth") == 0
    assert value(after, "frontdesk_outbox_oldest_due_seconds") == 0
    assert value(after, "frontdesk_smpp_bound") == 1
    assert value(after, "frontdesk_smpp_window_in_use") == 0
    assert value(after, "frontdesk_transcription_queue") == 0
    assert value(after, "frontdesk_scrape_db_ok") == 1


async def test_a_scrape_answers_without_a_database_that_does_not(service: Service) -> None:
    # A transaction held open in this process keeps the gateway's SQLite connection busy;
    # on PostgreSQL (a pool) it locks the table the scrape reads.
    async with in_transaction() as conn:
        if not service.runtime.gateway.settings.database.url.startswith("sqlite"):
            await conn.execute_query("LOCK TABLE delivery IN ACCESS EXCLUSIVE MODE")
        samples = await service.scrape()
    assert value(samples, "frontdesk_scrape_db_ok") == 0
    assert "frontdesk_deliveries" not in samples and "frontdesk_outbox_depth" not in samples
    assert value(samples, "frontdesk_ami_connected") == 1  # what memory holds is still there


async def test_healthz_names_each_component_and_the_smsc_when_it_goes(service: Service) -> None:
    await _missed_call(service)  # a Bot API call, answered
    status, body = await health(service.url("/healthz"))
    assert status == 200 and body["ok"], body
    components = body["components"]
    assert set(components) == {"ami", "database", "smsc", "telegram"}  # no email configured
    assert all(c["ok"] for c in components.values()), components
    assert components["telegram"]["detail"].startswith("last send ok")
    assert components["smsc"]["detail"] == f"bound to {service.smsc.host}:{service.smsc.port}"
    assert body["ami_connected"] and body["loops"]  # the earlier keys stay

    unbound = _Unbound()
    logging.getLogger("notifiers.sms.channel").addHandler(unbound)
    try:
        await service.smsc.stop()
        await asyncio.wait_for(unbound.event.wait(), WAIT)
    finally:
        logging.getLogger("notifiers.sms.channel").removeHandler(unbound)
    status, body = await health(service.url("/healthz"))
    assert status == 503 and body["ok"] is False
    smsc = body["components"]["smsc"]
    assert smsc == {"ok": False, "detail": f"not bound to {service.smsc.host}:{service.smsc.port}"}
    assert [n for n, c in body["components"].items() if not c["ok"]] == ["smsc"]


async def test_a_bot_api_outage_fails_the_telegram_component_until_a_send_works(
    service: Service,
) -> None:
    service.bot.fail_next("sendMessage", status=502, chat_id=CHAT)  # Bad Gateway: no answer
    await _missed_call(service, DeliveryStatus.PENDING)  # to be retried
    status, body = await health(service.url("/healthz"))
    assert status == 503 and body["ok"] is False
    telegram = body["components"]["telegram"]
    assert telegram["ok"] is False and telegram["detail"].startswith("last send failed: ")
    assert TOKEN not in str(body)

    await service.sent(DeliveryStatus.SENT)  # the retry goes through
    status, body = await health(service.url("/healthz"))
    assert status == 200 and body["components"]["telegram"]["ok"], body
    samples = await service.scrape()
    assert value(samples, "frontdesk_sends_total", channel="telegram", outcome="transient") == 1
    assert value(samples, "frontdesk_send_seconds_count", channel="telegram") == 2
