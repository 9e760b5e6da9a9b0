"""PIN lockout under a burst of guesses: the count lives in the database, not in the
copies of the row each concurrent attempt read (SQLite, the real inbound path)."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

from gateway.control import admin, pins
from gateway.control.desk import CommandDesk
from gateway.control.inbound import InboundDesk
from gateway.control.lines import Control
from gateway.control.pins import MAX_FAILURES, PinCheck, check_pin
from gateway.delivery.notices import Notices
from models.db import AuditEntry, Notification, Subscriber
from models.settings import RoutingSettings
from models.vocab import Scenario
from notifiers.base import InboundMessage

EMAIL = "dr@example.org"
PIN = "4821"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class NoPbx:
    async def send_action(self, action: dict[str, str], timeout: float = 5.0) -> dict[str, str]:
        raise AssertionError(f"a refused command reached the PBX: {action}")


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same PBKDF2 code, fewer rounds: 40 checks stay quick.
    monkeypatch.setattr(pins, "ITERATIONS", 1_000)


async def subscriber_with_pin(ddi: str) -> Subscriber:
    created = await admin.add_subscriber(name="S", ddis=[ddi], language="en", timezone="UTC")
    return await admin.set_contact_points(created.subscriber.id, email=EMAIL, pin=PIN)


def email(text: str) -> InboundMessage:
    return InboundMessage("email", EMAIL, "replies@frontdesk.test", text, datetime.now(UTC))


async def test_40_concurrent_wrong_pins_lock_the_control_after_the_fifth(db: str) -> None:
    subscriber = await subscriber_with_pin("2100911")
    notices = Notices({"telegram", "email"}, RoutingSettings(default_channels="email"))
    inbound = InboundDesk(notices)
    inbound.on_text = CommandDesk(Control(NoPbx()), notices).on_inbound

    await asyncio.gather(*(inbound.receive(email("0000 closed")) for _ in range(40)))

    entries = await AuditEntry.filter(channel="email").order_by("id")
    assert len(entries) == 40
    assert sorted(e.result for e in entries) == ["locked"] * 35 + ["refused"] * MAX_FAILURES
    assert [e.detail for e in entries].count(PinCheck.LOCKED_NOW) == 1
    row = await Subscriber.get(id=subscriber.id)
    assert row.sms_locked_until is not None and row.sms_pin_failures == 0
    assert await Notification.filter(dedupe_key__startswith="sms_locked:").count() == 1
    # Locked: the right PIN is refused too, and nothing changes.
    await inbound.receive(email(f"{PIN} closed"))
    last = await AuditEntry.filter(channel="email").order_by("-id").first()
    assert last is not None and last.result == "locked"
    assert (await Subscriber.get(id=subscriber.id)).scenario is Scenario.AGENT


async def test_a_stale_copy_cannot_pass_the_right_pin_through_a_lock(db: str) -> None:
    subscriber = await subscriber_with_pin("2100912")
    stale = await Subscriber.get(id=subscriber.id)  # read before the burst, never refreshed
    copies = [await Subscriber.get(id=subscriber.id) for _ in range(12)]
    results = await asyncio.gather(*(check_pin(c, "0000", NOW) for c in copies))
    assert results.count(PinCheck.WRONG) == MAX_FAILURES - 1
    assert results.count(PinCheck.LOCKED_NOW) == 1
    assert results.count(PinCheck.LOCKED) == 12 - MAX_FAILURES
    assert await check_pin(stale, PIN, NOW + timedelta(minutes=1)) == PinCheck.LOCKED


async def test_each_failure_is_one_conditional_update(
    db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No read-modify-write in Python: the count and the lock are each one UPDATE whose
    WHERE re-checks the row (atomic on SQLite and, row-locked, on PostgreSQL)."""
    subscriber = await subscriber_with_pin("2100913")
    with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
        for _ in range(MAX_FAILURES):
            await check_pin(subscriber, "0000", NOW)
    # asyncpg numbers its parameters ($1): read them as SQLite's ? to check one shape.
    logged = [re.sub(r"\$\d+", "?", r.getMessage()) for r in caplog.records]
    updates = [m for m in logged if "UPDATE" in m]
    count, lock = updates[0].partition(" WHERE "), updates[-1].partition(" WHERE ")
    # The SQL is parameterised (?): the increment and the bound are in the statement.
    assert count[0] == 'UPDATE "subscriber" SET "sms_pin_failures"="sms_pin_failures"+?'
    assert '"sms_pin_failures"<?' in count[2] and '"sms_locked_until" IS NULL' in count[2]
    assert lock[0] == 'UPDATE "subscriber" SET "sms_pin_failures"=?,"sms_locked_until"=?'
    assert '"sms_pin_failures">=?' in lock[2] and '"sms_locked_until" IS NULL' in lock[2]
