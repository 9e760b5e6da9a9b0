"""Two gateways on one PostgreSQL, the AMI leader SIGKILLed in turn during a burst while
calls ring.

Two `main.py run` share a database: both send from the outbox (claims skip each other's
locked rows), one leads (holds the advisory lock and consumes AMI's events). The leader is
SIGKILLed; the other must lead within 5 s (measured from the kill to its /healthz saying
so); the killed one is started again as a standby, then the new leader is killed, and so
on. Messages keep coming during each takeover, and calls ring across them: some end while
nobody leads (the dialplan's end journal in AstDB keeps how), some after the takeover.

Counted: every notification at the Bot API once; a Telegram message the kill kept from
being stored is sent again after its lease (the default 60 s, so no copy comes twice for
any other reason): at most `outbox.in_flight` per kill, each one `unrecorded`. Every
missed call alerted once, answered ones not at all, each call ending with its outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from gateway.control import admin
from gateway.delivery.notices import Notices
from models.database import close_db, open_db
from models.db import Call, Delivery, DeliveryStatus, Notification, Role, Urgency, User
from models.events import CallOutcome
from models.settings import RoutingSettings
from sandbox.ami_server import AmiServer
from sandbox.call_scripts import CallFactory
from sandbox.telegram_api import BotApiServer
from tests.cluster import CHAT, DDI, SECRET, TOKEN, Frame, Gateways, gateways, split_at
from tests.faults import ledger
from tests.faults.conftest import Report
from tests.pg_cluster import postgres_url_for

KILLS = 2  # the leader, then the one that took over from it (the first, restarted, leads)
IN_FLIGHT = 4  # Telegram sends under way at once per gateway: the repeats' bound per kill
OFFICES = 20  # chats of their own: the bot paces one chat to about a message a second
FIRST_WAVE = 400  # notifications before the gateways start
WAVE = 40  # more during each takeover
FIRST_CHAT = 9600
TAKEOVER = 5.0  # the bound on a handover
WAIT = 90.0  # the lease (60 s) of what a killed gateway had claimed, and the rest


@pytest.fixture
def pg_url(pg_server: str, tmp_path: Path) -> Iterator[str]:
    yield postgres_url_for(tmp_path / "instances")


async def until(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Polled: the state is in other processes (the gateways, the database)."""
    try:
        async with asyncio.timeout(timeout):
            while not await condition():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def seed() -> tuple[list[int], Notices]:
    """The offices (a chat each, messages by Telegram) and the one whose DDI the calls
    ring (missed-call alerts to CHAT)."""
    ids = []
    for office in range(OFFICES):
        created = await admin.add_subscriber(
            name=f"Office {office}", ddis=[f"2106{office:03d}"], language="en", timezone="UTC"
        )
        sid = created.subscriber.id
        await admin.set_contact_points(sid, quiet_hours="")
        await admin.set_route(sid, "message", Urgency.NORMAL, ["telegram"])
        await User.create(
            name=f"Office {office}",
            role=Role.SUBSCRIBER,
            telegram_chat_id=FIRST_CHAT + office,
            subscriber=created.subscriber,
        )
        ids.append(sid)
    called = await admin.add_subscriber(name="Called", ddis=[DDI], language="en", timezone="UTC")
    await admin.set_contact_points(called.subscriber.id, quiet_hours="")
    await User.create(
        name="Called", role=Role.SUBSCRIBER, telegram_chat_id=CHAT, subscriber=called.subscriber
    )
    return ids, Notices({"telegram"}, RoutingSettings(default_channels="telegram"))


async def wave(notices: Notices, offices: list[int], first: int, count: int) -> None:
    async with in_transaction():  # one commit: the gateways see the wave at once
        for n in range(first, first + count):
            text = f"Call back, inst-{n:05d}-inst."
            await admin.take_message(notices, offices[n % OFFICES], text)


class Calls:
    """Calls rung on the sandbox PBX, each split where its end begins."""

    def __init__(self, ami: AmiServer) -> None:
        self.ami = ami
        self.factory = CallFactory()
        self.ends: dict[str, list[Frame]] = {}  # linkedid -> frames not yet played
        self.outcome: dict[str, CallOutcome] = {}

    async def ring(self, missed: bool) -> str:
        number = f"+30210200{len(self.outcome):04d}"
        frames = (
            self.factory.missed(DDI, number, "Caller")
            if missed
            else self.factory.agent_answered(DDI, number, "Caller")
        )
        ring, end = split_at(frames, "HangupRequest" if missed else "DialEnd")
        linkedid = frames[0]["Linkedid"]
        self.ends[linkedid] = end
        self.outcome[linkedid] = CallOutcome.ABANDONED if missed else CallOutcome.ANSWERED
        await self.ami.play(ring)
        return linkedid

    async def end(self, linkedid: str) -> None:
        await self.ami.play(self.ends.pop(linkedid))

    @property
    def missed(self) -> int:
        return sum(o is CallOutcome.ABANDONED for o in self.outcome.values())


async def ready(group: Gateways, port: int) -> bool:
    report = await group.health(port)
    return report is not None and bool(report.get("ami_connected"))


async def test_two_instances_killed_in_turn(
    tmp_path: Path, pg_url: str, fault_report: Report
) -> None:
    started = time.monotonic()
    await open_db(pg_url)  # the test's own view of the shared database
    try:
        offices, notices = await seed()
        await wave(notices, offices, 0, FIRST_WAVE)
        seeded = time.monotonic()
        made = FIRST_WAVE
        handovers: list[float] = []
        killed_at: list[int] = []
        kills: list[float] = []
        async with AmiServer(secret=SECRET) as ami, BotApiServer(TOKEN) as bot:
            calls = Calls(ami)

            def burst_received() -> int:
                return sum(
                    1
                    for c in bot.sent
                    if c.method == "sendMessage" and "inst-" in str(c.params.get("text", ""))
                )

            def _received(at_least: int) -> bool:
                return burst_received() >= at_least

            async with gateways(
                tmp_path,
                ami,
                bot,
                pg_url,
                FRONTDESK__OUTBOX__IN_FLIGHT=str(IN_FLIGHT),
                FRONTDESK__OUTBOX__LEASE_SECONDS="60",  # the default (the sandbox config's is 1)
                FRONTDESK__TELEGRAM__SEND_RATE="300",  # the sandbox Bot API has no flood limit
            ) as group:
                for _ in range(2):
                    await group.start()
                leader = await group.one_leader()
                await ami.wait_logged_in(2, timeout=WAIT)
                # Spanning every takeover: rung now, ended after the last one.
                lasting = [await calls.ring(missed=True), await calls.ring(missed=False)]
                for kill in range(KILLS):
                    # Two missed and two answered calls ring under this leader...
                    ringing = [await calls.ring(m) for m in (True, False, True, False)]
                    rung = len(calls.outcome)
                    await until(partial(_count, Call.filter(ddi=DDI), rung), WAIT, "Call rows")
                    # Killed at evenly spread points of the first wave.
                    point = (kill + 1) * FIRST_WAVE // (KILLS + 2)
                    await bot.wait_until(partial(_received, point), WAIT, "part of the burst")
                    await group.kill(leader)
                    killed = time.monotonic()
                    kills.append(killed)
                    killed_at.append(burst_received())
                    # ...half end while nobody leads, messages keep coming meanwhile...
                    for linkedid in ringing[:2]:
                        await calls.end(linkedid)
                    await wave(notices, offices, made, WAVE)
                    made += WAVE
                    leader = await group.one_leader(timeout=WAIT)
                    handovers.append(time.monotonic() - killed)
                    # ...and half after the takeover; the killed one comes back as standby.
                    for linkedid in ringing[2:]:
                        await calls.end(linkedid)
                    port = await group.start()
                    await until(partial(ready, group, port), WAIT, "the restarted gateway")
                for linkedid in lasting:
                    await calls.end(linkedid)

                missed, messages = calls.missed, made
                await until(
                    lambda: _count(
                        Notification.filter(dedupe_key__startswith="missed_call:"), missed
                    ),
                    WAIT,
                    "the missed-call notifications",
                )
                await until(
                    lambda: _count(
                        Call.filter(ddi=DDI, ended_at__isnull=False), len(calls.outcome)
                    ),
                    WAIT,
                    "every call's end",
                )
                await until(_all_sent, WAIT, "every delivery sent")
                done = time.monotonic()
                assert await group.one_leader() == leader
            calls_ended = dict(await Call.filter(ddi=DDI).values_list("linkedid", "outcome"))
            missed_notices = await Notification.filter(
                dedupe_key__startswith="missed_call:"
            ).count()
            tally = await ledger.tally(f"instances_killed_in_turn(2, {KILLS} kills)", bot=bot)
            alerts = [c for c in ledger.telegram_copies(bot) if c.address == str(CHAT)]
    finally:
        await close_db()
    fault_report(
        tally,
        "takeovers " + ", ".join(f"{s:.2f}s" for s in handovers) + f" (bound {TAKEOVER:g}s)",
        f"killed when the Bot API had {killed_at} of the burst;"
        f" repeats bound {IN_FLIGHT} x {KILLS} kills",
        f"calls {len(calls.outcome)}: missed {missed} alerted {missed_notices}"
        f" (copies at the chat {len(alerts)})",
        f"seeding {seeded - started:.1f}s, start to the first kill {kills[0] - seeded:.1f}s,"
        f" the last kill to all sent {done - kills[-1]:.1f}s (the lease of its claims)",
    )

    assert max(handovers) < TAKEOVER, handovers
    assert tally.notifications == messages + missed, tally.detail()
    assert tally.lost == [], tally.detail()
    telegram = tally.channels["telegram"]
    assert telegram.duplicated <= IN_FLIGHT * KILLS, tally.detail()
    # Every extra copy is one whose outcome a kill kept from being stored.
    assert telegram.unrecorded == telegram.duplicated and telegram.stray == 0, tally.detail()
    wrong = {lid: got for lid, got in calls_ended.items() if got != calls.outcome[lid]}
    assert not wrong and len(calls_ended) == len(calls.outcome), wrong
    # One alert per missed call (its notification's dedupe key), none for answered ones.
    assert missed_notices == missed


async def _count(query: QuerySet[Any], wanted: int) -> bool:
    return await query.count() >= wanted


async def _all_sent() -> bool:
    """No delivery waits or is under way (a killed gateway's claims return after the lease)."""
    waiting = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
    return not await Delivery.filter(status__in=waiting).exists()
