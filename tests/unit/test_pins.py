"""SMS PINs: hashed, checked, and locked after five wrong attempts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.control import admin, pins
from gateway.control.pins import LOCK_FOR, PinCheck, check_pin, hash_pin, pin_matches
from models.db import Subscriber

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """PINs hashed with few rounds: a hash records its rounds, and checking reads them."""
    monkeypatch.setattr(pins, "ITERATIONS", 1_000)


def test_the_pin_is_never_stored_and_matches_only_itself() -> None:
    stored = hash_pin("4821")
    assert "4821" not in stored and stored.startswith("pbkdf2_sha256$")
    assert pin_matches("4821", stored) and not pin_matches("4822", stored)
    assert hash_pin("4821") != stored  # salted
    assert not pin_matches("4821", "garbage")
    assert stored.startswith(f"pbkdf2_sha256${pins.ITERATIONS}$") and pins.ITERATIONS >= 200_000


@pytest.mark.usefixtures("quick_hashes")
async def test_five_wrong_pins_lock_sms_control_then_it_unlocks(db: str) -> None:
    created = await admin.add_subscriber(name="S", ddis=["2100901"], language="en", timezone="UTC")
    await admin.set_contact_points(created.subscriber.id, pin="4821")
    subscriber = await Subscriber.get(id=created.subscriber.id)
    results = [await check_pin(subscriber, "0000", NOW) for _ in range(5)]
    assert results == [PinCheck.WRONG] * 4 + [PinCheck.LOCKED_NOW]  # the fifth locks
    # The sixth attempt is locked out, even with the right PIN.
    assert await check_pin(subscriber, "4821", NOW + timedelta(minutes=1)) == PinCheck.LOCKED
    assert await check_pin(subscriber, "4821", NOW + LOCK_FOR + timedelta(seconds=1)) == PinCheck.OK
    assert (await Subscriber.get(id=subscriber.id)).sms_pin_failures == 0


@pytest.mark.usefixtures("quick_hashes")
async def test_a_right_pin_resets_the_count(db: str) -> None:
    created = await admin.add_subscriber(name="S", ddis=["2100902"], language="en", timezone="UTC")
    await admin.set_contact_points(created.subscriber.id, pin="4821")
    subscriber = await Subscriber.get(id=created.subscriber.id)
    for _ in range(4):
        await check_pin(subscriber, "1111", NOW)
    assert await check_pin(subscriber, "4821", NOW) == PinCheck.OK
    assert [await check_pin(subscriber, "1111", NOW) for _ in range(4)] == [PinCheck.WRONG] * 4
    assert await check_pin(subscriber, None, NOW) == PinCheck.LOCKED_NOW  # no PIN counts too
