"""Proof of delivery: a channel's reports move Deliveries from `sent` to `delivered` or
`failed`. A message split in parts (concatenated SMS) is delivered only when every part
is, and failed as soon as one part is undeliverable.

A report can arrive before we have stored the parts of the send it is about (the SMSC
answers fast); then it waits as a part with no delivery and is matched when the send's
parts are stored. Either order gives the same result. The outbox stores the parts in the
transaction that stores `sent` (`store_parts`), then calls `settled_after_send`: a crash
never leaves a `sent` row whose parts are unknown, so its reports always find it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models.db import Delivery, DeliveryPart, DeliveryStatus
from notifiers.base import DeliveryReport

log = logging.getLogger(__name__)

OnFailed = Callable[[Delivery, str], Awaitable[None]]


Decision = tuple[DeliveryStatus, str]  # a report settled a delivery: its status, the reason


class Receipts:
    def __init__(self, on_failed: OnFailed) -> None:
        self._on_failed = on_failed
        self.reports = 0
        # Told (delivery id, new status) when a report settles a delivery; the demo waits on it.
        self.observers: list[Callable[[int, DeliveryStatus], None]] = []
        # Settled inside the outbox's transaction, told once it committed.
        self._decided: dict[int, Decision] = {}

    async def parts_sent(self, delivery: Delivery, ids: Sequence[str]) -> None:
        """Record the ids a channel gave the pieces of a sent Delivery, and settle it."""
        async with in_transaction():
            await self.store_parts(delivery, ids)
        await self.settled_after_send(delivery)

    async def store_parts(self, delivery: Delivery, ids: Sequence[str]) -> None:
        """In the caller's transaction (the one storing `sent`): the part rows, and the
        settlement if every report already came, so no crash can split them."""
        for message_id in ids:
            await _write_part(delivery.channel, message_id, delivery_id=delivery.id)
        # Each side writes, then reads what the other wrote: whichever writes last settles.
        decided = await self._decide(delivery.id)
        if decided is not None:
            self._decided[delivery.id] = decided

    async def settled_after_send(self, delivery: Delivery) -> None:
        """After the transaction of store_parts committed: observers, then fallback."""
        decided = self._decided.pop(delivery.id, None)
        if decided is not None:
            await self._announce(delivery.id, decided)

    async def on_report(self, report: DeliveryReport) -> None:
        self.reports += 1
        decided = None
        async with in_transaction():
            part = await _write_part(
                report.channel,
                report.message_id,
                delivered=report.delivered,
                detail=report.detail[:64],
                reported_at=datetime.now(UTC),
            )
            delivery_id = part.delivery_id  # type: ignore[attr-defined]
            if delivery_id is not None:
                decided = await self._decide(delivery_id)
        if decided is not None:
            await self._announce(delivery_id, decided)

    async def _decide(self, delivery_id: int) -> Decision | None:
        """Move a `sent` delivery on if its parts say so (in the caller's transaction)."""
        parts = await DeliveryPart.filter(delivery_id=delivery_id)
        failed = [p for p in parts if p.delivered is False]
        if failed:
            reason = f"undeliverable ({failed[0].detail or 'no detail'})"
            # From `sent` only: two failed parts make one failure and one fallback.
            changed = await Delivery.filter(id=delivery_id, status=DeliveryStatus.SENT).update(
                status=DeliveryStatus.FAILED, last_error=reason
            )
            return (DeliveryStatus.FAILED, reason) if changed else None
        if parts and all(p.delivered for p in parts):
            changed = await Delivery.filter(id=delivery_id, status=DeliveryStatus.SENT).update(
                status=DeliveryStatus.DELIVERED
            )
            return (DeliveryStatus.DELIVERED, "") if changed else None
        return None

    async def _announce(self, delivery_id: int, decided: Decision) -> None:
        status, reason = decided
        self._tell(delivery_id, status)
        if status is DeliveryStatus.FAILED:
            log.warning("delivery %s: %s", delivery_id, reason)
            await self._on_failed(await Delivery.get(id=delivery_id), reason)

    def _tell(self, delivery_id: int, status: DeliveryStatus) -> None:
        for observe in self.observers:
            observe(delivery_id, status)


async def _write_part(channel: str, message_id: str, **values: Any) -> DeliveryPart:
    """Create or update one part; the send and its report race to create it first."""
    if not await DeliveryPart.exists(channel=channel, message_id=message_id):
        try:
            # In a savepoint: PostgreSQL aborts the whole transaction on a failed INSERT.
            async with in_transaction():
                return await DeliveryPart.create(channel=channel, message_id=message_id, **values)
        except IntegrityError:
            pass  # the other side created it between our look and our insert
    await DeliveryPart.filter(channel=channel, message_id=message_id).update(**values)
    return await DeliveryPart.get(channel=channel, message_id=message_id)
