"""Outbox worker: claim due Delivery rows, send, record the receipt; retry, give up, dead-letter.

A claim is a lease (status `sending` until `claimed_until`): a gateway killed between
claim and send leaves rows whose lease runs out, and the next worker takes them again.
A message is therefore sent once unless the process dies after the channel accepted it
and before its outcome was stored (Telegram has no idempotency key to prevent that).
That window is kept small: each outcome is stored in its own short transaction as soon
as its send returns (with the part ids of the send, so receipts always find them), and
at most `outbox.in_flight` sends per channel are under way at once. A kill therefore
repeats at most `in_flight` messages per channel. Storing an outcome is retried until the
database takes it: giving up would send the message again after the lease.

A failed round (the database locked by another writer) is logged and retried after a
capped backoff; the worker never ends before stop().
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from gateway.delivery import attachments
from gateway.supervise import LoopReport
from models.db import Delivery, DeliveryStatus
from models.settings import OutboxSettings
from notifiers.base import (
    Button,
    Notifier,
    OutgoingMessage,
    PermanentError,
    Receipt,
    TransientError,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
T = TypeVar("T")


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
# Told of the part ids of a sent delivery, for channels that report delivery later; runs
# inside the transaction that stores `sent`, so status and parts are written together.
OnParts = Callable[[Delivery, Sequence[str]], Awaitable[None]]
# Told after that transaction committed (settle reports that came before the parts).
OnPartsStored = Callable[[Delivery], Awaitable[None]]
STOP_TRIES = 3  # stores tried while stopping before an outcome is left to the lease


class Outbox:
    def __init__(
        self,
        notifiers: Mapping[str, Notifier],
        settings: OutboxSettings,
        clock: Clock = utcnow,
        on_give_up: OnGiveUp | None = None,
        on_parts: OnParts | None = None,
        on_parts_stored: OnPartsStored | None = None,
        report: LoopReport | None = None,
    ) -> None:
        self._notifiers = notifiers
        self._on_give_up = on_give_up
        self._on_parts = on_parts
        self._on_parts_stored = on_parts_stored
        self.settings = settings
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        # Where failed rounds go (the supervisor's health); set before run().
        self.report = report or LoopReport("outbox")
        self.sent = 0
        self.retried = 0
        self.failed = 0
        # Told (delivery id, new status) once each attempt is stored; tests wait on it.
        self.observers: list[Callable[[int, DeliveryStatus], None]] = []
        # Told (channel, seconds, the error or None) after each send: metrics and health.
        self.send_observers: list[Callable[[str, float, Exception | None], None]] = []

    def wake(self) -> None:
        """New rows are due now: do not wait for the idle poll."""
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            try:
                batch = await self.claim()
            except Exception as exc:  # e.g. `database is locked`: the next round retries
                await self._pause(self.report.failed(exc))
                continue
            self.report.ok()
            if not batch:
                await self._idle()
                continue
            try:
                await self._send(batch)
            except Exception as exc:  # a bug: the rows' leases run out, they are retried
                await self._pause(self.report.failed(exc))

    async def _idle(self) -> None:
        try:
            await asyncio.wait_for(self._wakeup.wait(), self.settings.idle_poll)
        except TimeoutError:
            pass

    async def _pause(self, seconds: float) -> None:
        """Back off, but not past stop()."""
        try:
            await asyncio.wait_for(self._stopped.wait(), seconds)
        except TimeoutError:
            pass

    def stop(self) -> None:
        self._stopping = True
        self._stopped.set()
        self._wakeup.set()

    async def _send(self, batch: list[Delivery]) -> None:
        """Channels side by side, each with at most `in_flight` sends under way."""
        by_channel: dict[str, list[Delivery]] = defaultdict(list)
        for delivery in batch:
            by_channel[delivery.channel].append(delivery)
        await asyncio.gather(*(self._send_channel(rows) for rows in by_channel.values()))

    async def _send_channel(self, rows: list[Delivery]) -> None:
        limit = asyncio.Semaphore(max(self.settings.in_flight, 1))

        async def one(delivery: Delivery) -> None:
            async with limit:
                if self._stopping:
                    await self._release(delivery)
                else:
                    await self._deliver(delivery)

        await asyncio.gather(*(one(d) for d in rows))

    async def claim(self) -> list[Delivery]:
        now = self._clock()
        due = Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now) | Q(
            status=DeliveryStatus.SENDING, claimed_until__lt=now
        )
        lease = now + timedelta(seconds=self.settings.lease_seconds)
        async with in_transaction():
            # PostgreSQL: the rows are locked (FOR UPDATE) and those another gateway has
            # locked are skipped, so claims running at once never take the same row.
            # (tortoise drops FOR UPDATE from a values_list query: select objects.)
            rows = await (
                Delivery.filter(due)
                .order_by("next_attempt_at", "id")
                .limit(self.settings.batch)
                .only("id")
                .select_for_update(skip_locked=True)
            )
            if not rows:
                return []
            ids = [row.id for row in rows]
            await Delivery.filter(Q(id__in=ids) & due).update(
                status=DeliveryStatus.SENDING, claimed_until=lease, attempts=F("attempts") + 1
            )
        # Ours are those our update leased (a row another took meanwhile is not).
        return await Delivery.filter(
            id__in=ids, status=DeliveryStatus.SENDING, claimed_until=lease
        ).order_by("id")

    async def _deliver(self, delivery: Delivery) -> None:
        notifier = self._notifiers.get(delivery.channel)
        try:
            if notifier is None:
                raise PermanentError(f"no notifier configured for channel {delivery.channel!r}")
            message = outgoing(delivery)
            if delivery.attachments:
                files = await attachments.for_channel(delivery.channel, delivery.attachments)
                message = replace(message, attachments=files)
            receipt = await self._timed_send(notifier, delivery.channel, message)
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
            # Channels that report delivery later (SMS, MMS) name the parts they made.
            parts = receipt.parts or (
                (receipt.message_id,) if getattr(notifier, "reports_delivery", False) else ()
            )
            stored = await self._finish(
                delivery,
                DeliveryStatus.SENT,
                parts=parts,
                receipt=receipt.message_id,
                sent_at=self._clock(),
            )
            if stored and parts and self._on_parts_stored is not None:
                on_stored = self._on_parts_stored
                await self._until_done(
                    f"delivery {delivery.id}: settle", lambda: on_stored(delivery)
                )

    async def _timed_send(
        self, notifier: Notifier, channel: str, message: OutgoingMessage
    ) -> Receipt:
        started = time.perf_counter()
        try:
            receipt = await notifier.send(message)
        except Exception as exc:
            self._timed(channel, started, exc)
            raise
        self._timed(channel, started, None)
        return receipt

    def _timed(self, channel: str, started: float, error: Exception | None) -> None:
        for observe in self.send_observers:
            observe(channel, time.perf_counter() - started, error)

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

    async def _release(self, delivery: Delivery) -> None:
        """Stopping: a claimed row not yet sent is due again at once, this try uncounted."""
        await self._until_done(
            f"delivery {delivery.id}: release",
            lambda: Delivery.filter(
                id=delivery.id, status=DeliveryStatus.SENDING, attempts=delivery.attempts
            ).update(status=DeliveryStatus.PENDING, claimed_until=None, attempts=F("attempts") - 1),
        )

    async def _finish(
        self,
        delivery: Delivery,
        status: DeliveryStatus,
        parts: Sequence[str] = (),
        **values: object,
    ) -> bool:
        """Store one attempt's outcome (with its parts) in a short transaction of its own."""
        stored = await self._until_done(
            f"delivery {delivery.id}: store {status.value}",
            lambda: self._store(delivery, status, parts, values),
        )
        if stored:
            for observe in self.observers:
                observe(delivery.id, status)
        return bool(stored)

    async def _store(
        self,
        delivery: Delivery,
        status: DeliveryStatus,
        parts: Sequence[str],
        values: Mapping[str, object],
    ) -> bool:
        async with in_transaction():
            # Conditional on our claim: a row whose lease expired and was re-claimed is not ours.
            stored = await Delivery.filter(
                id=delivery.id, status=DeliveryStatus.SENDING, attempts=delivery.attempts
            ).update(status=status, claimed_until=None, **values)
            if stored and parts and self._on_parts is not None:
                await self._on_parts(delivery, parts)
        return bool(stored)

    async def _until_done(self, what: str, action: Callable[[], Awaitable[T]]) -> T | None:
        """Retry a write the send depends on until the database takes it (a lock held by
        another process passes); while stopping, give up after a few tries."""
        tries = 0
        while True:
            try:
                # Each try in a task of its own: tortoise sets the transaction's connection in
                # a context variable and, when releasing a connection the database dropped
                # fails, never resets it; in this loop's own context every later try would
                # reuse that dead connection ("connection is closed" until the end).
                result = await asyncio.ensure_future(action())
            except Exception as exc:
                tries += 1
                if self._stopping and tries >= STOP_TRIES:
                    log.error("%s: not stored, left to the lease: %r", what, exc)
                    return None
                log.warning("%s failed (try %d): %r", what, tries, exc)
                await self._pause(self.report.failed(exc))
                continue
            if tries:
                self.report.ok()
            return result
