"""Several gateways on one PostgreSQL, and a gateway killed while calls ring.

The real `main.py run` runs as child processes against the sandbox AMI and Bot API served
by this test. What is asserted is what an operator would count: each message at the Bot
API once, each missed call alerted once, every call ending with the outcome it had.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.delivery.outbox import Outbox
from models.database import close_db, migrate, open_db
from models.db import Call, Delivery, DeliveryStatus, Notification
from models.events import CallOutcome
from models.settings import OutboxSettings
from sandbox.ami_server import AmiServer
from sandbox.call_scripts import CallFactory
from sandbox.telegram_api import BotApiServer
from tests.cluster import (
    DDI,
    SECRET,
    TOKEN,
    WAIT,
    Frame,
    gateways,
    is_missed_call,
    link_subscriber,
    split_at,
)
from tests.pg_cluster import database_url_for, postgres_url_for


@pytest.fixture
def pg_url(pg_server: str, tmp_path: Path) -> Iterator[str]:
    yield postgres_url_for(tmp_path / "cluster")


async def _seed_deliveries(url: str, count: int) -> None:
    await open_db(url)
    try:
        now = datetime.now(UTC)
        for start in range(0, count, 1000):
            await Delivery.bulk_create(
                [
                    Delivery(
                        dedupe_key=f"bulk:{i}",
                        kind="message",
                        channel="telegram",
                        address=str(100_000 + i),  # a chat each: Telegram paces one chat
                        text=f"bulk {i}",
                        next_attempt_at=now,
                    )
                    for i in range(start, min(start + 1000, count))
                ]
            )
    finally:
        await close_db()


@pytest.mark.parametrize("database", ["default", "postgres"])
async def test_claims_running_at_once_never_take_a_row_twice(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    """Six outboxes claiming side by side (as six gateways would) share 2,000 rows."""
    if database == "postgres":
        request.getfixturevalue("pg_server")
        url = postgres_url_for(tmp_path / "claims")
    else:
        url = database_url_for(tmp_path / "claims.sqlite3")
        await migrate(url)
    await _seed_deliveries(url, 2000)
    await open_db(url)
    try:
        boxes = [Outbox({}, OutboxSettings(batch=50)) for _ in range(6)]
        claims: Counter[int] = Counter()

        async def claim_all(box: Outbox) -> None:
            while batch := await box.claim():
                claims.update(d.id for d in batch)

        await asyncio.gather(*(claim_all(box) for box in boxes))
    finally:
        await close_db()
    assert len(claims) == 2000
    assert [i for i, n in claims.items() if n > 1] == []


async def test_three_gateways_on_postgresql_deliver_ten_thousand_once(
    tmp_path: Path, pg_url: str
) -> None:
    count = int(os.environ.get("FD_COUNT", "10000"))
    await _seed_deliveries(pg_url, count)
    async with AmiServer(secret=SECRET) as ami, BotApiServer(TOKEN) as bot:
        # The sandbox Bot API has no flood limit: the gateways' pacing is lifted to match.
        async with gateways(
            tmp_path,
            ami,
            bot,
            pg_url,
            FRONTDESK__OUTBOX__IN_FLIGHT="8",
            FRONTDESK__OUTBOX__LEASE_SECONDS="60",  # the default (the sandbox config's is short)
            FRONTDESK__TELEGRAM__SEND_RATE="3000",
        ) as group:
            started = time.monotonic()
            for _ in range(3):
                await group.start()

            def bulk() -> list[str]:
                return [
                    str(c.params.get("text"))
                    for c in bot.sent
                    if c.method == "sendMessage"
                    and str(c.params.get("text", "")).startswith("bulk ")
                ]

            await bot.wait_until(lambda: len(set(bulk())) == count, 180, "every message")
            elapsed = time.monotonic() - started
            leader = await group.one_leader()
            assert leader in group.procs
        texts = Counter(bulk())
    duplicated = sum(n - 1 for n in texts.values())
    lost = count - len(texts)
    print(
        f"\n3 gateways, PostgreSQL: {count} sent in {elapsed:.1f}s "
        f"({count / elapsed:.0f}/s), lost {lost}, duplicated {duplicated}"
    )
    assert (lost, duplicated) == (0, 0)
    await open_db(pg_url)
    try:
        assert await Delivery.filter(status=DeliveryStatus.SENT).count() == count
    finally:
        await close_db()


async def test_killing_the_ami_leader_hands_over_within_five_seconds_and_keeps_every_alert(
    tmp_path: Path, pg_url: str
) -> None:
    factory = CallFactory()
    calls = [factory.missed(DDI, f"+30210000{i:04d}", f"Καλών {i}") for i in range(6)]
    parts = [split_at(frames, "HangupRequest") for frames in calls]
    async with AmiServer(secret=SECRET) as ami, BotApiServer(TOKEN) as bot:
        async with gateways(tmp_path, ami, bot, pg_url) as group:
            for _ in range(3):
                await group.start()
            await ami.wait_logged_in(3, timeout=WAIT)
            leader = await group.one_leader()
            await link_subscriber(group, bot)
            for ringing, _ in parts:
                await ami.play(ringing)
            await _wait_calls(pg_url, lambda rows: len(rows) == 6)

            await group.kill(leader)
            killed_at = time.monotonic()
            for _, end in parts[:3]:  # these end while nobody leads: the journal keeps them
                await ami.play(end)
            successor = await group.one_leader(timeout=10)
            handover = time.monotonic() - killed_at
            for _, end in parts[3:]:
                await ami.play(end)

            await bot.wait_until(
                lambda: sum(map(is_missed_call, bot.sent)) >= 6, WAIT, "six alerts"
            )
            rows = await _wait_calls(pg_url, lambda rows: all(r.ended_at for r in rows))
            alerts = sum(map(is_missed_call, bot.sent))
            notices = await _count_missed(pg_url)
    print(f"\nleader {leader} killed; {successor} leads {handover:.2f}s later; alerts {alerts}")
    assert successor != leader
    assert handover < 5.0
    assert alerts == 6 and notices == 6
    assert {r.outcome for r in rows} == {CallOutcome.ABANDONED}


async def _wait_calls(url: str, done: object, timeout: float = WAIT) -> list[Call]:
    """The inbound Call rows, once `done(rows)` holds (polled: another process writes them)."""
    assert callable(done)
    await open_db(url)
    try:
        async with asyncio.timeout(timeout):
            while True:
                rows = await Call.filter(ddi=DDI).order_by("id")
                if done(rows):
                    return rows
                await asyncio.sleep(0.05)
    finally:
        await close_db()


async def _alert_state(url: str) -> str:
    """What the database says of the calls and their alerts (a failure's report)."""
    await open_db(url)
    try:
        calls = await Call.filter(ddi=DDI).values_list("status", "outcome", "ended_at")
        deliveries = await Delivery.all().values_list("kind", "status", "attempts", "last_error")
        return f"calls {sorted(map(str, calls))}\ndeliveries {sorted(map(str, deliveries))}"
    finally:
        await close_db()


async def _count_missed(url: str) -> int:
    await open_db(url)
    try:
        return await Notification.filter(dedupe_key__startswith="missed_call:").count()
    finally:
        await close_db()


@pytest.mark.parametrize("database", ["default", "postgres"])
async def test_a_gateway_killed_while_fifty_calls_ring_ends_each_right_after_restart(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    """50 calls ring; SIGKILL; some end while the gateway is down (answered or not), the
    rest after it is back 3 s later: each ends with its outcome and one alert if missed."""
    if database == "postgres":
        request.getfixturevalue("pg_server")
        url = postgres_url_for(tmp_path / "fifty")
    else:
        url = database_url_for(tmp_path / "fifty.sqlite3")
    factory = CallFactory()
    plan: list[tuple[str, list[Frame], list[Frame], bool]] = []  # (linkedid, ring, end, when)
    for i in range(50):
        missed = i % 5 in (0, 1, 3)
        frames = (
            factory.missed(DDI, f"+30210100{i:04d}", f"Πελάτης {i}")
            if missed
            else factory.agent_answered(DDI, f"+30210100{i:04d}", f"Πελάτης {i}")
        )
        ring, end = split_at(frames, "HangupRequest" if missed else "DialEnd")
        plan.append((frames[0]["Linkedid"], ring, end, i % 5 in (0, 1, 2)))  # True: in outage
    expected = {
        lid: CallOutcome.ABANDONED if i % 5 in (0, 1, 3) else CallOutcome.ANSWERED
        for i, (lid, *_) in enumerate(plan)
    }

    async with AmiServer(secret=SECRET) as ami, BotApiServer(TOKEN) as bot:
        async with gateways(tmp_path, ami, bot, url) as group:
            port = await group.start()
            await ami.wait_logged_in(1, timeout=WAIT)
            await link_subscriber(group, bot)
            for _, ring, _, _ in plan:
                await ami.play(ring)
            await _wait_calls(url, lambda rows: len(rows) == 50)

            await group.kill(port)
            for _, _, end, in_outage in plan:
                if in_outage:
                    await ami.play(end)
            await asyncio.sleep(3)  # the scenario: the gateway comes back 3 s later
            await group.start()
            await ami.wait_logged_in(1, timeout=WAIT)
            await group.one_leader()
            for _, _, end, in_outage in plan:
                if not in_outage:
                    await ami.play(end)

            try:
                await bot.wait_until(
                    lambda: sum(map(is_missed_call, bot.sent)) >= 30, 2 * WAIT, "thirty alerts"
                )
            except TimeoutError:
                print(await _alert_state(url), f"alerts {sum(map(is_missed_call, bot.sent))}")
                raise
            rows = await _wait_calls(url, lambda rows: all(r.ended_at for r in rows))
            alerts = sum(map(is_missed_call, bot.sent))
    outcomes = {r.linkedid: r.outcome for r in rows}
    wrong = {lid: (outcomes[lid], want) for lid, want in expected.items() if outcomes[lid] != want}
    print(
        f"\n50 calls across a SIGKILL ({database}): {alerts} missed-call alerts, {len(wrong)} wrong"
    )
    index = {lid: i for i, (lid, *_) in enumerate(plan)}
    assert not wrong, sorted(index[lid] for lid in wrong)
    assert alerts == 30
