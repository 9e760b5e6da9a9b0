"""The database briefly unavailable during a burst: 0 lost, 0 duplicated on any channel.

SQLite: another process holds `BEGIN EXCLUSIVE` for a few seconds while messages go out
on all four channels and missed calls come in over AMI. The outbox meets the lock between
a send and the storing of its outcome (an SMS whose answer the SMSC holds until the lock is
taken: the store is retried, not the send), and the router meets it with the calls' ends
(their events wait in memory). The locker is the one of
tests/e2e/test_database_busy.py (a real second process, as a backup tool would be).

PostgreSQL unreachable: tests/faults/test_postgresql.py."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest

from gateway.control import admin
from gateway.supervise import LoopState
from models.db import Delivery, Notification, Urgency
from sandbox.call_scripts import CallFactory
from tests.e2e.test_database_busy import _locked, _release
from tests.faults.conftest import Report
from tests.faults.office import DDI, office
from tests.stack import LoopStates, health

HOLD = 2.5  # seconds the other process keeps the write lock
MESSAGES = 30  # to the office, by email, SMS and MMS at once
CHATS, PER_CHAT = 8, 2  # and by Telegram to chats of their own
CALLS = 8  # missed calls while the lock is held, told by SMS and email
EVERY_CHANNEL = ("telegram", "email", "sms", "mms")


async def test_sqlite_locked_during_a_burst(
    fault_db: Path, fault_report: Report, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "gateway.delivery.outbox")
    # A short busy timeout: the gateway's rounds fail (and are retried) while locked.
    async with office(fault_db, "?busy_timeout=200") as here:
        loops = LoopStates(here.runtime.gateway.supervisor)
        await here.route("email+sms+mms")
        await admin.set_route(here.subscriber, "missed_call", Urgency.NORMAL, ["sms+email"])
        chats = await here.more_chats(CHATS)
        for sid in chats:
            await here.route("telegram", subscriber=sid)
        await here.smsc.wait_bound(1, timeout=10)
        # The first SMS is accepted by the SMSC and its answer held back until the lock is
        # taken: the lock comes between a send and the storing of its outcome, every time.
        here.smsc.hold_responses()
        await here.messages([f"Call back, locked-{n:03d}." for n in range(MESSAGES)])
        for n in range(PER_CHAT):
            for sid in chats:
                await here.messages([f"Call back, locked-{sid}-{n}."], subscriber=sid)

        await here.smsc.wait_in_flight(1, timeout=10)  # mid-burst: the lock comes now
        async with _locked(fault_db) as locker:
            locked_at = asyncio.get_running_loop().time()
            here.smsc.release_responses()
            factory = CallFactory()
            for n in range(CALLS):
                frames = factory.missed(ddi=DDI, caller_num=f"+3021000001{n:02d}", caller_name="A")
                await here.ami.play(frames)
            failing = await loops.first(LoopState.FAILING, timeout=HOLD + 10)
            # The lock lasts HOLD seconds: the fault's length, not a wait for the product.
            await asyncio.sleep(max(0.0, locked_at + HOLD - asyncio.get_running_loop().time()))
            await _release(locker)

        await asyncio.wait_for(here.runtime.gateway.drain(), 30)
        ids = dict(
            await Delivery.filter(notification_id__isnull=False).values_list("id", "channel")
        )
        settled = True
        try:
            await here.until(lambda: here.finished(ids) == len(ids))
        except TimeoutError:
            settled = False
        tally = await here.tally(f"sqlite_locked({HOLD:g}s)")
        calls = await Notification.filter(kind="missed_call").count()
        status, body = await health(here.healthz)
    fault_report(tally)

    assert settled, tally.detail()
    assert calls == CALLS
    assert tally.notifications == MESSAGES + CHATS * PER_CHAT + CALLS
    assert tally.lost == [], tally.detail()
    assert tally.duplicated_on(EVERY_CHANNEL) == 0, tally.detail()
    assert sum(c.unrecorded + c.stray for c in tally.channels.values()) == 0, tally.detail()
    assert tally.sent == len(ids) == MESSAGES * 3 + CHATS * PER_CHAT + CALLS * 2
    # The lock was felt (a loop failed rounds) and no loop died of it.
    assert failing in {"outbox", "router"}, failing
    assert re.search(r"store sent failed \(try 1\).*locked", caplog.text), "no send met the lock"
    assert status == 200 and set(body["loops"].values()) == {"running"}, body
