"""The SMSC down while messages are taken, then back: every message queued during the
outage is delivered once it returns (0 lost, 0 duplicated by the SMSC's message ids).

A real minute is too slow for the suite: the outage lasts OUTAGE seconds and the outbox
retries every 0.05-0.5 s, so each message fails and is put back several times over, which
is what a minute with the default backoff does too. The minute itself is the drill
`python bench/sms_outage.py --seconds 60`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from models.db import Delivery, DeliveryStatus
from tests.faults.conftest import Report
from tests.faults.office import office

MESSAGES = 30
FAILED_TRIES = 2  # each message fails at least this often before the SMSC returns


@pytest.mark.parametrize("outage", [2.0])
async def test_smsc_down_then_back(fault_db: Path, fault_report: Report, outage: float) -> None:
    async with office(fault_db) as here:
        await here.route("sms")
        await here.smsc.wait_bound(1, timeout=10)
        tries: dict[int, int] = {}
        here.runtime.gateway.outbox.observers.append(
            lambda i, st: tries.__setitem__(i, tries.get(i, 0) + (st is DeliveryStatus.PENDING))
        )
        await here.smsc.stop()
        down = asyncio.get_running_loop().time()
        await here.messages([f"Call back, outage-{n:03d}." for n in range(MESSAGES)])
        ids = dict(await Delivery.filter(kind="message").values_list("id", "channel"))

        # The outage lasts `outage` seconds (the fault itself, not a wait for the product),
        # and at least until every message has failed and been put back FAILED_TRIES times
        # (or was given up: the ledger below then counts it lost).
        def tried(delivery: int) -> bool:
            return tries.get(delivery, 0) >= FAILED_TRIES or here.finished({delivery: "sms"}) > 0

        await here.until(lambda: all(tried(i) for i in ids))
        await asyncio.sleep(max(0.0, down + outage - asyncio.get_running_loop().time()))
        assert here.smsc.messages == []
        await here.smsc.start()  # back on the same port
        settled = True
        try:
            await here.until(lambda: here.finished(ids) == len(ids))
        except TimeoutError:
            settled = False
        tally = await here.tally(f"smsc_down_then_back({outage:g}s)")
        statuses = set(await Delivery.filter(kind="message").values_list("status", flat=True))
    fault_report(tally)

    assert settled, tally.detail()
    assert len(ids) == MESSAGES and tally.lost == [], tally.detail()
    sms = tally.channels["sms"]
    assert (sms.sent, sms.duplicated, sms.unrecorded, sms.stray) == (MESSAGES, 0, 0, 0)
    assert statuses == {DeliveryStatus.DELIVERED}
