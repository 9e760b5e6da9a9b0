"""Proof of delivery: a channel's reports move Deliveries from `sent` to `delivered` or
`failed`. A message split in parts (concatenated SMS) is delivered only when every part
is, and failed as soon as one part is undeliverable.

A report can arrive before we have stored the parts of the send it is about (the SMSC
answers fast); then it waits as a part with no delivery and is matched when the send's
parts are stored. Either order gives the same result.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError

from models.db import Delivery, DeliveryPart, DeliveryStatus
from notifiers.base import DeliveryReport

log = logging.getLogger(__name__)

OnFailed = Callable[[Delivery, str], Awaitable[None]]


class Receipts:
    def __init__(self, on_failed: OnFailed) -> None:
        self._on_failed = on_failed
        self.reports = 0
        # Told (delivery id, new status) when a report settles a delivery; the demo waits on it.
        self.observers: list[Callable[[int, DeliveryStatus], None]] = []

    async def parts_sent(self, delivery: Delivery, ids: Sequence[str]) -> None:
        """Record the ids a channel gave the pieces of a sent Delivery."""
        for message_id in ids:
            await _write_part(delivery.channel, message_id, delivery_id=delivery.id)
        # Each side writes, then reads what the other wrote: whichever writes last settles.
        await self._settle(delivery.id)

    async def on_report(self, report: DeliveryReport) -> None:
        self.reports += 1
        part = await _write_part(
            report.channel,
            report.message_id,
            delivered=report.delivered,
            detail=report.detail[:64],
            reported_at=datetime.now(UTC),
        )
        if part.delivery_id is not None:  # type: ignore[attr-defined]
            await self._settle(part.delivery_id)  # type: ignore[attr-defined]

    async def _settle(self, delivery_id: int) -> None:
        parts = await DeliveryPart.filter(delivery_id=delivery_id)
        failed = [p for p in parts if p.delivered is False]
        if failed:
            reason = f"undeliverable ({failed[0].detail or 'no detail'})"
            # From `sent` only: two failed parts make one failure and one fallback.
            changed = await Delivery.filter(id=delivery_id, status=DeliveryStatus.SENT).update(
                status=DeliveryStatus.FAILED, last_error=reason
            )
            if changed:
                log.warning("delivery %s: %s", delivery_id, reason)
                self._tell(delivery_id, DeliveryStatus.FAILED)
                await self._on_failed(await Delivery.get(id=delivery_id), reason)
        elif parts and all(p.delivered for p in parts):
            changed = await Delivery.filter(id=delivery_id, status=DeliveryStatus.SENT).update(
                status=DeliveryStatus.DELIVERED
            )
            if changed:
                self._tell(delivery_id, DeliveryStatus.DELIVERED)

    def _tell(self, delivery_id: int, status: DeliveryStatus) -> None:
        for observe in self.observers:
            observe(delivery_id, status)


async def _write_part(channel: str, message_id: str, **values: Any) -> DeliveryPart:
    """Create or update one part; the send and its report race to create it first."""
    if not await DeliveryPart.exists(channel=channel, message_id=message_id):
        try:
            return await DeliveryPart.create(channel=channel, message_id=message_id, **values)
        except IntegrityError:
            pass  # the other side created it between our look and our insert
    await DeliveryPart.filter(channel=channel, message_id=message_id).update(**values)
    return await DeliveryPart.get(channel=channel, message_id=message_id)
