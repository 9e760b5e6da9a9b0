"""The outbox survives a failed round, stores each send's outcome on its own (with its
parts, in one transaction) and keeps at most `in_flight` sends per channel under way."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from datetime import UTC, datetime

from tortoise.exceptions import OperationalError

from gateway.delivery.outbox import Outbox
from gateway.delivery.receipts import Receipts
from gateway.supervise import Backoff, Supervisor
from models.db import Delivery, DeliveryPart, DeliveryStatus
from models.settings import OutboxSettings
from notifiers.base import DeliveryReport, OutgoingMessage, Receipt

FAST = OutboxSettings(idle_poll=0.05, retry_initial=0.05, retry_max=0.1, batch=50)
LOCKED = "database is locked"


class Channel:
    """Counts how many of its sends are under way at once; each waits for `gate`."""

    def __init__(self, channel: str = "telegram", parts: int = 0) -> None:
        self.channel = channel
        self.parts = parts
        self.sent: list[OutgoingMessage] = []
        self.under_way = 0
        self.most_under_way = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.held = asyncio.Event()  # a send waits at the closed gate

    async def send(self, message: OutgoingMessage) -> Receipt:
        self.under_way += 1
        self.most_under_way = max(self.most_under_way, self.under_way)
        try:
            if not self.gate.is_set():
                self.held.set()
                await self.gate.wait()
            await asyncio.sleep(0)  # let the other sends of the batch start, if allowed
            self.sent.append(message)
            n = len(self.sent)
            ids = tuple(f"{message.reference}.{p}" for p in range(self.parts))
            return Receipt(message_id=ids[0] if ids else str(n), parts=ids)
        finally:
            self.under_way -= 1


async def rows(count: int, channel: str = "telegram") -> list[int]:
    now = datetime.now(UTC)
    await Delivery.bulk_create(
        [
            Delivery(
                dedupe_key=f"t:{channel}:{n}",
                kind="message",
                channel=channel,
                address="+306900000000" if channel == "sms" else "77",
                text=f"message {n}",
                next_attempt_at=now,
            )
            for n in range(count)
        ]
    )
    return list(await Delivery.filter(channel=channel).values_list("id", flat=True))


class Settled:
    """Waits for the outbox to store a given number of outcomes of one status."""

    def __init__(self, box: Outbox, status: DeliveryStatus) -> None:
        self.ids: list[int] = []
        self._status = status
        self._changed = asyncio.Event()
        box.observers.append(self._observe)

    def _observe(self, delivery_id: int, status: DeliveryStatus) -> None:
        if status is self._status:
            self.ids.append(delivery_id)
            self._changed.set()

    async def wait(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.ids) < count:
                self._changed.clear()
                await self._changed.wait()


async def running(box: Outbox) -> asyncio.Task[None]:
    return asyncio.create_task(box.run())


async def stopped(box: Outbox, task: asyncio.Task[None]) -> None:
    box.stop()
    await asyncio.wait_for(task, 10)


async def test_at_most_in_flight_sends_per_channel_are_under_way(db: str) -> None:
    """A kill repeats what the channel accepted and we had not stored: one send, not a
    batch of fifty."""
    await rows(20, "telegram")
    await rows(20, "sms")
    telegram, sms = Channel("telegram"), Channel("sms")
    box = Outbox({"telegram": telegram, "sms": sms}, FAST)
    sent = Settled(box, DeliveryStatus.SENT)
    task = await running(box)
    await sent.wait(40)
    await stopped(box, task)
    assert (telegram.most_under_way, sms.most_under_way) == (1, 1)
    assert len(telegram.sent) == len(sms.sent) == 20


async def test_each_outcome_is_stored_when_its_send_returns(db: str) -> None:
    """While the second send of a batch is under way, the first is already `sent`."""
    first, second = await rows(2)
    channel = Channel()
    box = Outbox({"telegram": channel}, FAST)
    sent = Settled(box, DeliveryStatus.SENT)
    channel.gate.clear()
    box.observers.append(lambda _i, _s: channel.gate.clear())  # hold each next send
    task = await running(box)
    async with asyncio.timeout(10):
        await channel.held.wait()  # the first send may be held: let it through
        channel.held.clear()
        channel.gate.set()
        await channel.held.wait()  # the second send hangs, as a killed process's would
    stored = {d.id: d.status for d in await Delivery.all()}
    channel.gate.set()
    await sent.wait(2)
    await stopped(box, task)
    assert stored == {sent.ids[0]: DeliveryStatus.SENT, sent.ids[1]: DeliveryStatus.SENDING}
    assert sorted(sent.ids) == [first, second]


async def test_sent_and_its_parts_are_stored_together(db: str) -> None:
    """If the parts cannot be written, `sent` is not written either: the row is not left
    `sent` with parts no receipt can find (it is retried until both are stored)."""
    [delivery_id] = await rows(1, "sms")
    receipts = Receipts(on_failed=_no_fallback)
    failures = [OperationalError(LOCKED)]

    async def parts(delivery: Delivery, ids: Sequence[str]) -> None:
        await receipts.store_parts(delivery, ids)
        if failures:
            raise failures.pop()  # after the part rows were written: all must roll back

    box = Outbox(
        {"sms": Channel("sms", parts=2)},
        FAST,
        on_parts=parts,
        on_parts_stored=receipts.settled_after_send,
    )
    sent = Settled(box, DeliveryStatus.SENT)
    [claimed] = await box.claim()
    await box._deliver(claimed)
    await sent.wait(1)
    row = await Delivery.get(id=delivery_id)
    part_ids = sorted(
        await DeliveryPart.filter(delivery_id=delivery_id).values_list("message_id", flat=True)
    )
    assert row.status is DeliveryStatus.SENT and not failures
    assert part_ids == [f"{delivery_id}.0", f"{delivery_id}.1"]
    # Both reports match: the delivery is delivered.
    for part in part_ids:
        await receipts.on_report(DeliveryReport("sms", part, delivered=True))
    assert (await Delivery.get(id=delivery_id)).status is DeliveryStatus.DELIVERED


async def _no_fallback(delivery: Delivery, reason: str) -> None:
    raise AssertionError(f"no fallback expected: {reason}")


async def test_a_failed_parts_write_leaves_no_sent_row_without_parts(db: str) -> None:
    """The crash case: the write of the parts fails for good after `sent` would have been
    written. Nothing may be left `sent` without its parts."""
    [delivery_id] = await rows(1, "sms")
    receipts = Receipts(on_failed=_no_fallback)

    async def parts(delivery: Delivery, ids: Sequence[str]) -> None:
        await receipts.store_parts(delivery, ids)
        raise RuntimeError("killed here")

    box = Outbox({"sms": Channel("sms", parts=2)}, FAST, on_parts=parts)
    box.stop()  # stopping: the store is given up after a few tries, as at a shutdown
    [claimed] = await box.claim()
    await box._deliver(claimed)
    row = await Delivery.get(id=delivery_id)
    assert row.status is DeliveryStatus.SENDING  # its lease runs out; it is sent again
    assert await DeliveryPart.filter(delivery_id=delivery_id).count() == 0


async def test_a_locked_database_does_not_end_the_worker(db: str) -> None:
    """Claims that fail (another process holds the lock) are retried after a backoff;
    the loop reports them and recovers."""
    await rows(3)
    channel = Channel()
    failures = [OperationalError(LOCKED) for _ in range(3)]

    class Locked(Outbox):
        async def claim(self) -> list[Delivery]:
            if failures:
                raise failures.pop()
            return await super().claim()

    sup = Supervisor(Backoff(0.01, 0.05), failing_after=2)
    states: list[str] = []
    sup.observers.append(lambda name, state: states.append(state.value))
    box = Locked({"telegram": channel}, FAST, report=sup.report("outbox"))
    sent = Settled(box, DeliveryStatus.SENT)
    sup.start("outbox", box.run)
    await sent.wait(3)
    assert sup.states() == {"outbox": "running"}
    assert states == ["running", "failing", "running"]
    assert sup.restarts() == {"outbox": 0}
    box.stop()
    await sup.stop(cancel=False)
    assert len(channel.sent) == 3


async def test_an_outcome_the_database_refuses_is_stored_later_not_resent(db: str) -> None:
    """`sent` could not be written (locked): it is written once the lock is gone, and the
    message is not sent a second time."""
    [delivery_id] = await rows(1)
    channel = Channel()
    failures = [OperationalError(LOCKED), OperationalError(LOCKED)]

    class Refusing(Outbox):
        async def _store(self, *args: object, **kwargs: object) -> bool:
            if failures:
                raise failures.pop()
            return await super()._store(*args, **kwargs)  # type: ignore[arg-type]

    box = Refusing({"telegram": channel}, FAST)
    sent = Settled(box, DeliveryStatus.SENT)
    task = await running(box)
    await sent.wait(1)
    await stopped(box, task)
    assert len(channel.sent) == 1 and not failures
    assert (await Delivery.get(id=delivery_id)).status is DeliveryStatus.SENT


async def test_a_failed_store_leaves_nothing_in_the_loops_context() -> None:
    """tortoise keeps a transaction's connection in a context variable and, when the
    database dropped that connection, may fail to reset it: a try that fails so must not
    leave the next try, in the same loop, on the dead connection."""
    marker: contextvars.ContextVar[str | None] = contextvars.ContextVar("conn", default=None)
    seen: list[str | None] = []

    async def store() -> bool:
        seen.append(marker.get())
        if len(seen) == 1:
            marker.set("the dropped connection")  # as tortoise's __aexit__ leaves it
            raise OSError("connection is closed")
        return True

    box = Outbox({"telegram": Channel()}, FAST)
    assert await box._until_done("delivery 1: store sent", store) is True
    assert seen == [None, None]
    assert marker.get() is None
