"""The send and its receipt race to create the same DeliveryPart: the loser's INSERT fails
on the unique key inside its transaction, and that transaction must still go on (on
PostgreSQL a failed statement aborts the whole transaction unless it ran in a savepoint).
Run on PostgreSQL with FRONTDESK_TEST_DB=postgres: on SQLite the failed INSERT alone is
rolled back either way."""

from __future__ import annotations

from typing import Any

import pytest
from tortoise.transactions import in_transaction

from gateway.delivery import receipts
from models.db import DeliveryPart


async def test_losing_the_race_to_create_a_part_keeps_the_transaction_usable(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await DeliveryPart.create(channel="sms", message_id="3e8a0001")  # the other side won

    async def not_yet(**_: Any) -> bool:  # ... just after our look found nothing
        return False

    monkeypatch.setattr(DeliveryPart, "exists", not_yet)
    async with in_transaction():
        part = await receipts._write_part("sms", "3e8a0001", delivered=True, detail="DELIVRD")
        other = await DeliveryPart.create(channel="sms", message_id="3e8a0002")
    stored = await DeliveryPart.get(channel="sms", message_id="3e8a0001")
    assert part.delivered is True and stored.delivered is True and stored.detail == "DELIVRD"
    assert await DeliveryPart.filter(id=other.id).exists()
