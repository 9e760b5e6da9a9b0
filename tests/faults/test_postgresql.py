"""PostgreSQL unreachable during a burst: the server stopped (`pg_ctl stop -m fast`, every
session ended) for a few seconds while messages go out on all four channels and calls
ring, then started again on the same port.

A cluster of this test's own (tests/pg_cluster), so stopping it touches no other test. One
gateway (and bot) runs on it in this process. An SMS is accepted by the SMSC and its answer
held until the server is down, so a send always meets the outage before its outcome is
stored (the store is retried, not the send). The leader's lock session dies with the
server: the gateway must step down (another gateway may lead by now), take the lock again
once the server is back, and catch up with the calls that ended meanwhile from the
database, the PBX's channels and its end journal.

Asserted: 0 lost, 0 duplicated on every channel (one gateway: nothing is sent twice, each
outcome is stored once the server returns); every missed call alerted once, answered ones
not; the loops failed rounds and recovered by themselves, /healthz 503 during the outage
and 200 after; the gateway led again, by a new election.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tortoise.queryset import QuerySet

from gateway.control import admin
from gateway.leadership import AdvisoryLockLeader
from gateway.supervise import LoopState
from models.db import Call, Delivery, Notification, Urgency
from models.events import CallOutcome
from sandbox.call_scripts import CallFactory
from tests import pg_cluster
from tests.cluster import split_at
from tests.faults.conftest import Report
from tests.faults.office import DDI, office
from tests.stack import LoopStates, health

OUTAGE = 3.0  # seconds the server is down
MESSAGES = 20  # to the office, by email, SMS and MMS at once
CHATS, PER_CHAT = 8, 3  # and by Telegram to chats of their own
MISSED, ANSWERED = 6, 2  # calls ringing when the server stops; all end during the outage
EVERY_CHANNEL = ("telegram", "email", "sms", "mms")
WAIT = 30.0


@pytest.fixture
async def server() -> AsyncIterator[tuple[Path, str]]:
    """A private cluster: its folder and URL. Not under pytest's tmp folder: the server
    runs as `postgres`, which cannot enter it."""
    if pg_cluster.binaries() is None:
        pytest.skip("PostgreSQL server binaries not found (make pgdeps installs them)")
    folder = Path(tempfile.mkdtemp(prefix="frontdesk-pg-outage-"))
    try:
        yield folder, await asyncio.to_thread(pg_cluster.start, folder)
    finally:
        await asyncio.to_thread(pg_cluster.stop, folder)
        shutil.rmtree(folder, ignore_errors=True)


async def polled(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Until `condition()` holds (rows the gateway's tasks write)."""
    try:
        async with asyncio.timeout(WAIT):
            while not await condition():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_postgresql_unreachable_during_a_burst(
    server: tuple[Path, str], tmp_path: Path, fault_report: Report
) -> None:
    folder, url = server
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    factory = CallFactory()
    calls = [
        (factory.missed(DDI, f"+302100003{n:02d}", "A"), "HangupRequest", CallOutcome.ABANDONED)
        for n in range(MISSED)
    ] + [
        (factory.agent_answered(DDI, f"+302100004{n:02d}", "B"), "DialEnd", CallOutcome.ANSWERED)
        for n in range(ANSWERED)
    ]
    expected = {frames[0]["Linkedid"]: outcome for frames, _, outcome in calls}
    parts = [split_at(frames, cut) for frames, cut, _ in calls]
    async with office(tmp_path / "unused.sqlite3", database_url=url) as here:
        gateway = here.runtime.gateway
        leader = gateway.leader
        assert isinstance(leader, AdvisoryLockLeader)
        loops = LoopStates(gateway.supervisor)
        await gateway.wait_synced(0, WAIT)  # leading, logged in, calls synced
        assert leader.leading and leader.elections == 1
        await here.route("email+sms+mms")
        await admin.set_route(here.subscriber, "missed_call", Urgency.NORMAL, ["sms+email"])
        chats = await here.more_chats(CHATS)
        for sid in chats:
            await here.route("telegram", subscriber=sid)
        await here.smsc.wait_bound(1, timeout=10)
        for ringing, _ in parts:
            await here.ami.play(ringing)
        await gateway.drain()  # the calls are in the database as ringing

        here.smsc.hold_responses()  # the first SMS's outcome comes once the server is down
        await here.messages([f"Call back, pg-{n:03d}." for n in range(MESSAGES)])
        for n in range(PER_CHAT):
            for sid in chats:
                await here.messages([f"Call back, pg-{sid}-{n}."], subscriber=sid)
        await here.smsc.wait_in_flight(1, timeout=10)

        syncs, clock = gateway.pbx_syncs, asyncio.get_running_loop().time
        stopped_at = clock()
        stopping = asyncio.create_task(asyncio.to_thread(pg_cluster.stop, folder, "fast"))
        felt_by = await loops.first(LoopState.FAILING, timeout=WAIT)  # the outage is felt
        here.smsc.release_responses()  # an outcome to store now, while the server is down
        # Ended at once: the leader (checking its lock every second) most likely still
        # leads and its router meets the outage with them; else nobody leads.
        heard_by_leader = leader.leading
        half = len(parts) // 2
        for _, end in parts[:half]:
            await here.ami.play(end)
        await stopping
        await loops.wait("leader", LoopState.FAILING, timeout=WAIT)
        stepped_down = clock() - stopped_at
        led_in_outage = leader.leading
        for _, end in parts[half:]:  # nobody leads: the end journal in AstDB keeps them
            await here.ami.play(end)
        status_down, body_down = await health(here.healthz)
        failing = {name for name, state in loops.seen if state is LoopState.FAILING}
        # The fault's length, not a wait for the product.
        await asyncio.sleep(max(0.0, stopped_at + OUTAGE - clock()))
        await asyncio.to_thread(pg_cluster.serve, folder, port)
        back_at = clock()

        await gateway.wait_synced(syncs, WAIT)  # led again: calls restored and reconciled
        relead = clock() - back_at
        leads_again, elections = leader.leading, leader.elections
        await polled(
            lambda: _count(Call.filter(ended_at__isnull=False), len(calls)), "every call's end"
        )
        await polled(
            lambda: _count(Notification.filter(kind="missed_call"), MISSED), "the missed calls"
        )
        await asyncio.wait_for(gateway.drain(), WAIT)
        ids = dict(
            await Delivery.filter(notification_id__isnull=False).values_list("id", "channel")
        )
        settled = True
        try:
            await here.until(lambda: here.finished(ids) == len(ids))
        except TimeoutError:
            settled = False
        await polled(lambda: _healthy(here.healthz), "/healthz 200")
        status, body = await health(here.healthz)
        tally = await here.tally(f"postgresql_unreachable({OUTAGE:g}s)")
        outcomes = dict(await Call.filter(ddi=DDI).values_list("linkedid", "outcome"))
        alerts = await Notification.filter(kind="missed_call").count()
    fault_report(
        tally,
        f"leader stepped down {stepped_down:.2f}s into the outage, led again"
        f" {relead:.2f}s after the server was back (elections {elections})",
        f"loops failing meanwhile: {sorted(failing)} (first {felt_by});"
        f" /healthz {status_down} then {status}",
        f"{'the leader' if heard_by_leader else 'nobody leading'} heard the first {half} ends",
        f"calls {len(calls)}: missed {MISSED} alerted {alerts}",
    )

    assert settled, tally.detail()
    assert tally.notifications == MESSAGES + CHATS * PER_CHAT + MISSED
    assert tally.lost == [], tally.detail()
    assert tally.duplicated_on(EVERY_CHANNEL) == 0, tally.detail()
    assert sum(c.unrecorded + c.stray for c in tally.channels.values()) == 0, tally.detail()
    assert tally.sent == len(ids) == MESSAGES * 3 + CHATS * PER_CHAT + MISSED * 2
    assert alerts == MISSED and outcomes == expected, outcomes
    # The lock's session died with the server: stepped down, then elected anew.
    assert not led_in_outage and leads_again and elections == 2
    assert status_down == 503 and body_down["leader"] is False, body_down
    assert "outbox" in failing, failing  # its store of the held SMS's outcome met it
    if heard_by_leader:  # its router met the outage, held the calls' ends and retried
        assert "router" in failing, failing
    assert status == 200 and set(body["loops"].values()) == {"running"}, body


async def _count(query: QuerySet[Any], wanted: int) -> bool:
    return await query.count() >= wanted


async def _healthy(url: str) -> bool:
    return (await health(url))[0] == 200
