"""Outbox worker: claim due Delivery rows, send, record the receipt; retry, give up, dead-letter.

A claim is a lease (status `sending` until `claimed_until`): a gateway killed between
claim and send leaves rows whose lease runs out, and the next worker takes them again.
A message is therefore sent once unless the process dies after the channel accepted it
and before the receipt was stored (Telegram has no idempotency key to prevent that).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from gateway import attachments
from models.db import Delivery, DeliveryStatus
from models.settings import OutboxSettings
from notifiers.base import Button, Notifier, OutgoingMessage, PermanentError, TransientError

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def backoff(settings: OutboxSettings, attempts: int) -> float:
    """Doubling delay after the n-th failed attempt, capped at retry_max."""
    return float(min(settings.retry_initial * 2 ** max(attempts - 1, 0), settings.retry_max))


def outgoing(delivery: Delivery) -> OutgoingMessage:
    buttons = [[Button(b["text"], b["data"]) for b in row] for row in delivery.buttons or []]
    return OutgoingMessage(
        address=delivery.address,
        text=delivery.text,
        buttons=buttons,
        subject=delivery.subject,
        html=delivery.html,
        reference=str(delivery.id),
    )


# Told of a delivery that ended badly (failed or dead), with the reason: the next channel.
OnGiveUp = Callable[[Delivery, str], Awaitable[None]]
# Told of the part ids of a sent delivery, for channels that report delivery later.
OnParts = Callable[[Delivery, Sequence[str]], Awaitable[None]]


class Outbox:
    def __init__(
        self,
        notifiers: Mapping[str, Notifier],
        settings: OutboxSettings,
        clock: Clock = utcnow,
        on_give_up: OnGiveUp | None = None,
        on_parts: OnParts | None = None,
    ) -> None:
        self._notifiers = notifiers
        self._on_give_up = on_give_up
        self._on_parts = on_parts
        self.settings = settings
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._stopping = False
        self.sent = 0
        self.retried = 0
        self.failed = 0
        # Told (delivery id, new status) once each attempt is stored; tests wait on it.
        self.observers: list[Callable[[int, DeliveryStatus], None]] = []

    def wake(self) -> None:
        """New rows are due now: do not wait for the idle poll."""
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            batch = await self.claim()
            if batch:
                await asyncio.gather(*(self._deliver(d) for d in batch))
                continue
            try:
                await asyncio.wait_for(self._wakeup.wait(), self.settings.idle_poll)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def claim(self) -> list[Delivery]:
        now = self._clock()
        due = Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now) | Q(
            status=DeliveryStatus.SENDING, claimed_until__lt=now
        )
        async with in_transaction():
            ids = await (
                Delivery.filter(due)
                .order_by("next_attempt_at", "id")
                .limit(self.settings.batch)
                .select_for_update(skip_locked=True)
                .values_list("id", flat=True)
            )
            if not ids:
                return []
            await Delivery.filter(Q(id__in=ids) & due).update(
                status=DeliveryStatus.SENDING,
                claimed_until=now + timedelta(seconds=self.settings.lease_seconds),
                attempts=F("attempts") + 1,
            )
        return await Delivery.filter(id__in=ids, status=DeliveryStatus.SENDING).order_by("id")

    async def _deliver(self, delivery: Delivery) -> None:
        notifier = self._notifiers.get(delivery.channel)
        try:
            if notifier is None:
                raise PermanentError(f"no notifier configured for channel {delivery.channel!r}")
            message = outgoing(delivery)
            if delivery.attachments:
                files = await attachments.for_channel(delivery.channel, delivery.attachments)
                message = replace(message, attachments=files)
            receipt = await notifier.send(message)
        except TransientError as exc:
            await self._retry_or_give_up(delivery, str(exc), exc.retry_after)
        except PermanentError as exc:
            self.failed += 1
            log.warning("delivery %s failed for good: %s", delivery.id, exc)
            if await self._finish(delivery, DeliveryStatus.FAILED, last_error=str(exc)):
                await self._gave_up(delivery, str(exc))
        except Exception as exc:  # a bug in a notifier must not lose the message
            log.exception("delivery %s: unexpected error", delivery.id)
            await self._retry_or_give_up(delivery, f"unexpected: {exc!r}", None)
        else:
            self.sent += 1
            stored = await self._finish(
                delivery, DeliveryStatus.SENT, receipt=receipt.message_id, sent_at=self._clock()
            )
            # Channels that report delivery later (SMS, MMS) name the parts they made.
            parts = receipt.parts or (
                (receipt.message_id,) if getattr(notifier, "reports_delivery", False) else ()
            )
            if stored and parts and self._on_parts is not None:
                try:
                    await self._on_parts(delivery, parts)
                except Exception:  # the send is stored; its receipt may then go unmatched
                    log.exception("delivery %s: could not record its parts", delivery.id)

    async def _retry_or_give_up(
        self, delivery: Delivery, reason: str, retry_after: float | None
    ) -> None:
        now = self._clock()
        if (now - delivery.created_at).total_seconds() >= self.settings.give_up_after:
            self.failed += 1
            log.error(
                "delivery %s dead after %d attempts: %s", delivery.id, delivery.attempts, reason
            )
            if await self._finish(delivery, DeliveryStatus.DEAD, last_error=reason):
                await self._gave_up(delivery, reason)
            return
        self.retried += 1
        delay = (
            retry_after if retry_after is not None else backoff(self.settings, delivery.attempts)
        )
        log.info("delivery %s retry in %.1fs: %s", delivery.id, delay, reason)
        await self._finish(
            delivery,
            DeliveryStatus.PENDING,
            last_error=reason,
            next_attempt_at=now + timedelta(seconds=delay),
        )
        # The worker may be idle by then; make sure it looks again when the retry is due.
        asyncio.get_running_loop().call_later(delay, self._wakeup.set)

    async def _gave_up(self, delivery: Delivery, reason: str) -> None:
        if self._on_give_up is None:
            return
        try:
            await self._on_give_up(delivery, reason)
        except Exception:  # the failure is stored; a broken fallback must not stop the worker
            log.exception("delivery %s: fallback failed", delivery.id)

    async def _finish(self, delivery: Delivery, status: DeliveryStatus, **values: object) -> bool:
        # Conditional on our claim: a row whose lease expired and was re-claimed is not ours.
        stored = await Delivery.filter(
            id=delivery.id, status=DeliveryStatus.SENDING, attempts=delivery.attempts
        ).update(status=status, claimed_until=None, **values)
        if stored:
            for observe in self.observers:
                observe(delivery.id, status)
        return bool(stored)
