"""SIGKILL of the gateway (`main.py run`, a child process) during a burst of 1,000
notifications, then restart: nothing lost, and what comes twice stays within the bound
the outbox documents (`outbox.in_flight` sends per channel per kill).

The process side is bench/kill_outbox.py's (its config, its child process, its SMSC that
redelivers receipts a dead gateway never answered, its kill points); the burst here is
spread over many chats, as a real one is, since the bot paces each chat to about a
message a second (notifiers/telegram_pacing.py). Three tenths go by Telegram, six tenths
by SMS with Telegram as the fallback, a tenth by SMS to numbers whose receipts say UNDELIV
(and then by Telegram).

Neither channel has an idempotency key the peer could deduplicate on: a message the peer
accepted just before the kill, whose outcome was never stored, is sent again after its
lease. The ledger shows each such copy as `unrecorded` (its Telegram message id or SMSC
part ids are not the ones the database holds)."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

from tortoise.transactions import in_transaction

from bench.kill_outbox import (
    MARK,
    SECRET,
    SMPP_ID,
    SMPP_PASSWORD,
    TOKEN,
    Peers,
    ReceiptKeepingSmsc,
    kill_points,
    start_gateway,
    wait_settled,
    write_config,
)
from gateway.control import admin
from gateway.delivery.notices import Notices
from models.database import close_db, open_db
from models.db import Role, Urgency, User
from models.settings import OutboxSettings, RoutingSettings
from sandbox.ami_server import AmiServer
from sandbox.telegram_api import BotApiServer
from tests.conftest import copy_migrated
from tests.faults import ledger
from tests.faults.conftest import Report

NOTIFICATIONS = 1000
KILLS = 2
SEED = 20261201
OFFICES = 100  # notification n goes to office n % OFFICES
FIRST_CHAT = 9300
WAIT = 90.0


def kind_of(office: int) -> str:
    """telegram, sms (Telegram as fallback) or undeliverable (an SMS that fails). Telegram
    takes ~30 messages a second from a bot: three tenths of the burst go that way."""
    tenth = office % 10
    return "telegram" if tenth < 3 else "sms" if tenth < 9 else "undeliverable"


def mobile(office: int) -> str:
    return f"+306944004{office:03d}"


async def seed(url: str) -> None:
    """The offices and every notification, before the gateway starts."""
    await open_db(url)
    try:
        ids = []
        for office in range(OFFICES):
            by_sms = kind_of(office) != "telegram"
            created = await admin.add_subscriber(
                name=f"Office {office}",
                ddis=[f"2109{office:03d}"],
                language="en",
                timezone="Europe/Athens",
                mobile=mobile(office) if by_sms else None,
            )
            sid = created.subscriber.id
            await admin.set_contact_points(sid, quiet_hours="")
            route = ["sms", "telegram"] if by_sms else ["telegram"]
            await admin.set_route(sid, "message", Urgency.NORMAL, route)
            chat = FIRST_CHAT + office
            await User.create(
                name=f"Office {office}",
                role=Role.SUBSCRIBER,
                telegram_chat_id=chat,
                subscriber=created.subscriber,
            )
            ids.append(sid)
        notices = Notices({"telegram", "sms"}, RoutingSettings(default_channels="telegram"))
        async with in_transaction():  # one commit for the burst: seconds less to seed
            for n in range(NOTIFICATIONS):
                text = f"Call back, drill-{n:05d}-drill."
                await admin.take_message(notices, ids[n % OFFICES], text)
    finally:
        await close_db()


def complete(peers: Peers) -> bool:
    """Every notification reached where it ends (an undeliverable SMS: Telegram after it)."""
    on_telegram, on_sms = set(peers.telegram()), set(peers.sms())
    kinds = [kind_of(n % OFFICES) for n in range(NOTIFICATIONS)]
    return all(
        (n in on_sms if kind == "sms" else n in on_telegram)
        and (kind != "undeliverable" or n in on_sms)
        for n, kind in enumerate(kinds)
    )


async def test_sigkill_during_a_burst_then_restart(
    migrated_db: Path, tmp_path: Path, fault_report: Report
) -> None:
    database = tmp_path / "kill.sqlite3"  # where bench/kill_outbox.py's config points
    url = copy_migrated(migrated_db, database)
    started = time.monotonic()
    await seed(url)
    seeded = time.monotonic()
    undeliverable = [o for o in range(OFFICES) if kind_of(o) == "undeliverable"]
    expected = NOTIFICATIONS + NOTIFICATIONS * len(undeliverable) // OFFICES
    points = kill_points(random.Random(SEED), expected, KILLS)
    killed_at: list[int] = []
    settled = True
    log = tmp_path / "gateway.log"
    async with (
        AmiServer(secret=SECRET) as ami,
        BotApiServer(TOKEN) as bot,
        ReceiptKeepingSmsc(system_id=SMPP_ID, password=SMPP_PASSWORD) as smsc,
    ):
        for office in undeliverable:
            smsc.fail_receipts(mobile(office).lstrip("+"))
        config = write_config(tmp_path, ami, bot, smsc)
        peers = Peers(bot, smsc)
        peers.chats = {str(FIRST_CHAT + office) for office in range(OFFICES)}
        for point in points:
            gateway = await start_gateway(config, log)
            try:
                await peers.wait(lambda p=point: peers.received() >= p, WAIT)  # type: ignore[misc]
            finally:
                gateway.send_signal(signal.SIGKILL)
                await gateway.wait()
            killed_at.append(peers.received())
        gateway = await start_gateway(config, log)
        try:
            await peers.wait(lambda: complete(peers), WAIT)
            await wait_settled(database, smsc.acknowledged, WAIT)
        except TimeoutError:
            settled = False  # the ledger below says what is missing
        finally:
            gateway.send_signal(signal.SIGTERM)
            await asyncio.wait_for(gateway.wait(), WAIT)
    await open_db(url)
    try:
        tally = await ledger.tally(
            f"sigkill_burst({NOTIFICATIONS}, {KILLS} kills)", bot=bot, smsc=smsc
        )
    finally:
        await close_db()
    fault_report(
        tally,
        f"killed when the peers had {killed_at} messages",
        f"seeding took {seeded - started:.1f}s, the kills and the rest"
        f" {time.monotonic() - seeded:.1f}s",
    )

    bound = OutboxSettings().in_flight * KILLS  # the drill leaves in_flight at its default
    assert settled, tally.detail()
    assert tally.notifications == NOTIFICATIONS
    assert tally.lost == [], tally.detail()
    for name in ("telegram", "sms"):
        channel = tally.channels[name]
        assert channel.duplicated <= bound, tally.detail()
        # Every extra copy is one whose outcome the kill kept from being stored.
        assert channel.unrecorded == channel.duplicated and channel.stray == 0, tally.detail()
    assert all(MARK.search(c.text) for c in ledger.sms_copies(smsc))
