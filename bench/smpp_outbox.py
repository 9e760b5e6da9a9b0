"""SMS through the whole outbox: Delivery rows claimed, sent by SMPP, receipts stored.

    python bench/smpp_outbox.py [--count N] [--repeat R] [--window 100] [--in-flight 100]
                                [--batch 500] [--latency 5] [--database-url URL]
                                [--json PATH]

Each run writes N pending SMS Delivery rows, then the real pieces do the rest, as in the
gateway: `Outbox` (gateway/delivery/outbox.py) claims them in batches and sends each with
the real `SmsNotifier` (one bind, window W, `--in-flight` sends at once) to the sandbox
SMSC in a child process (answering each submit_sm after --latency ms, then a receipt);
the parts are stored with `sent`, and each receipt through `Receipts.on_report`
(gateway/delivery/receipts.py), which moves the row to `delivered`. The rate is N over the
time from the first claim until the last row is delivered; the CPU column is this
process's per message (the database driver's threads included, the SMSC's not).

--database-url: a throw-away SQLite file by default; any URL tortoise takes (e.g.
postgres://user:password@host:5432/db), migrated first with models.database.migrate.
The bench's rows (kind "bench_sms") are deleted before and after each run, with their
parts. Best of R runs; --json PATH writes {"smpp_outbox_per_s": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.smpp_window import PASSWORD, SYSTEM_ID, SmscProcess  # noqa: E402
from gateway.delivery.outbox import Outbox  # noqa: E402
from gateway.delivery.receipts import Receipts  # noqa: E402
from models.database import close_db, migrate, open_db  # noqa: E402
from models.db import Delivery, DeliveryPart, DeliveryStatus  # noqa: E402
from models.settings import OutboxSettings, SmppSettings  # noqa: E402
from notifiers.base import InboundMessage  # noqa: E402
from notifiers.sms.channel import SmsNotifier  # noqa: E402

KIND = "bench_sms"
NUMBER = "+306912345678"
FIRST_SMSC_ID = 0x3E8A0001  # the sandbox SMSC's first message id (sandbox/smsc.py)
SETTLE_TIMEOUT = 300.0
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Run:
    rate: float  # deliveries per second, claim to receipt stored
    cpu_us: float  # this process's CPU per delivery, µs
    sent: int
    delivered: int


async def _clean(count: int) -> None:
    """Remove the bench's rows (their parts go with them) and parts a broken run left
    unattached under the ids the sandbox SMSC is about to give again."""
    rows = await Delivery.filter(kind=KIND).values_list("id", flat=True)
    for chunk in _chunks(list(rows)):
        await DeliveryPart.filter(delivery_id__in=chunk).delete()
        await Delivery.filter(id__in=chunk).delete()
    for ids in _chunks([f"{FIRST_SMSC_ID + n:x}" for n in range(count)]):
        await DeliveryPart.filter(channel="sms", delivery_id=None, message_id__in=ids).delete()


def _chunks(values: list[T]) -> list[list[T]]:
    return [values[n : n + 500] for n in range(0, len(values), 500)]


async def _write_rows(count: int, run: int) -> None:
    now = datetime.now(UTC)
    rows = [
        Delivery(
            dedupe_key=f"bench-sms:{run}:{n}",
            kind=KIND,
            channel="sms",
            address=NUMBER,
            text=f"Missed call from +30 210 000 {n:04d}",
            next_attempt_at=now,
        )
        for n in range(count)
    ]
    await Delivery.bulk_create(rows, batch_size=500)


async def _ignore_inbound(_: InboundMessage) -> None:
    """No MO traffic in this bench."""


async def one_run(args: argparse.Namespace, url: str, run: int) -> Run:
    count = args.count
    async with SmscProcess(args.latency / 1000, receipts=True) as smsc:
        await open_db(url)
        try:
            await _clean(count)
            await _write_rows(count, run)
            return await _drain(args, smsc.port, count)
        finally:
            await _clean(count)
            await close_db()


async def _drain(args: argparse.Namespace, port: int, count: int) -> Run:
    delivered = 0
    done = asyncio.Event()

    def settled(_: int, status: DeliveryStatus) -> None:
        nonlocal delivered
        delivered += status is DeliveryStatus.DELIVERED
        if delivered >= count:
            done.set()

    async def fall_back(delivery: Delivery, reason: str) -> None:
        print(f"  delivery {delivery.id} failed: {reason}", file=sys.stderr)

    receipts = Receipts(on_failed=fall_back)
    receipts.observers.append(settled)
    smpp = dataclasses.replace(
        SmppSettings(),
        host="127.0.0.1",
        port=port,
        system_id=SYSTEM_ID,
        password=PASSWORD,
        window=args.window,
        reconnect_min=0.05,
    )
    notifier = SmsNotifier(smpp, receipts.on_report, _ignore_inbound)
    outbox = Outbox(
        {"sms": notifier},
        dataclasses.replace(OutboxSettings(), batch=args.batch, in_flight=args.in_flight),
        on_give_up=fall_back,
        on_parts=receipts.store_parts,
        on_parts_stored=receipts.settled_after_send,
    )
    await notifier.start()
    try:
        await notifier.wait_bound(5.0)
        started, cpu = time.perf_counter(), time.process_time()
        worker = asyncio.create_task(outbox.run())
        try:
            await asyncio.wait_for(done.wait(), SETTLE_TIMEOUT)
        except TimeoutError:
            print(f"  only {delivered} of {count} delivered", file=sys.stderr)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        outbox.stop()
        await worker
    finally:
        await notifier.stop()
    return Run(delivered / elapsed, cpu / max(delivered, 1) * 1e6, outbox.sent, delivered)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--count", type=int, default=3000, help="deliveries per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--window", type=int, default=100, help="smpp.window")
    parser.add_argument("--in-flight", type=int, default=100, help="outbox.in_flight")
    parser.add_argument("--batch", type=int, default=500, help="outbox.batch")
    parser.add_argument("--latency", type=float, default=5.0, help="ms per submit_sm_resp")
    parser.add_argument("--database-url", default="", help="default: a throw-away SQLite")
    parser.add_argument("--json", type=Path, help='write {"smpp_outbox_per_s": ...} here')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smpp-outbox-") as tmp:
        url = args.database_url or f"sqlite://{Path(tmp) / 'bench.sqlite3'}"
        database = url.split(":", 1)[0]
        print(
            f"best of {args.repeat}: {args.count} SMS deliveries through the outbox on "
            f"{database}; window {args.window}, in_flight {args.in_flight}, batch "
            f"{args.batch}, SMSC latency {args.latency:g} ms, receipts stored"
        )
        asyncio.run(migrate(url))
        runs = []
        for n in range(args.repeat):
            run = asyncio.run(one_run(args, url, n))
            runs.append(run)
            print(
                f"  run {n + 1}: {run.rate:>7.0f} deliveries/s  {run.cpu_us:>6.0f} µs CPU each"
                f"  ({run.sent} sent, {run.delivered} delivered)"
            )
    best = max(runs, key=lambda r: r.rate)
    print(f"best: {best.rate:.0f} deliveries/s, claim to receipt stored")
    if args.json:
        args.json.write_text(json.dumps({"smpp_outbox_per_s": round(best.rate)}) + "\n")


if __name__ == "__main__":
    main()
