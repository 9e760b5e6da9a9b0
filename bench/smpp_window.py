"""SMPP window benchmark: short GSM messages through the real SmsNotifier, per second.

    python bench/smpp_window.py [--count N] [--repeat R] [--windows 1,10,50,100]
                                [--latencies 0,5] [--no-receipts] [--same-process]
                                [--json PATH]

The sandbox SMSC runs in a child process (its own interpreter and GIL, as a real SMSC is
another machine) unless --same-process. It sends a delivery receipt for every part, which
the notifier reads and reports as in production, so the rate includes that traffic
(--no-receipts: without). Latency is the SMSC's delay before each submit_sm_resp, in ms:
at 0 (loopback) a round trip costs little more than the CPU of one message, so the window
has little to hide; real SMSCs answer in milliseconds, which is what the window is for.
Each point is run R times and the best rate kept (as timeit does): the noise on a shared
machine only ever slows a run down. --json PATH writes {"smpp_per_s": ...}, the rate at
window 100 with a 5 ms SMSC and receipts (measured as well if the table has no such point).
The CPU column is this process's (every thread) per message: the SMSC's is not in it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.settings import SmppSettings  # noqa: E402
from notifiers.base import OutgoingMessage  # noqa: E402
from notifiers.sms.channel import SmsNotifier  # noqa: E402
from sandbox.smsc import SmscServer  # noqa: E402

SYSTEM_ID, PASSWORD = "bench", "bench"
DEFAULT_WINDOWS = (1, SmppSettings().window, 50, 100)
JSON_POINT = (100, 0.005)  # window, SMSC latency (s): the figure `make bench` keeps


def _serve(conn: Connection, latency: float, receipts: bool) -> None:
    """Child process: an SMSC until the parent says stop (or goes away)."""

    async def serve() -> None:
        smsc = SmscServer(system_id=SYSTEM_ID, password=PASSWORD, submit_latency=latency)
        smsc.receipts = receipts
        async with smsc:
            conn.send(smsc.port)
            await asyncio.get_running_loop().run_in_executor(None, _wait_for_parent, conn)

    asyncio.run(serve())


def _wait_for_parent(conn: Connection) -> None:
    try:
        conn.recv()
    except EOFError:
        pass


class SmscProcess:
    """The sandbox SMSC in a child process; `port` once entered."""

    def __init__(self, latency: float = 0.0, receipts: bool = True) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, latency, receipts), daemon=True)
        self.port = 0

    async def __aenter__(self) -> Self:
        self._process.start()
        self.port = await asyncio.to_thread(self._conn.recv)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._conn.send("stop")
        await asyncio.to_thread(self._process.join, 10)


async def _ignore(_: object) -> None:
    """The sinks: receipts are read and reported (that work is in the rate), not kept."""


@dataclasses.dataclass(frozen=True)
class Run:
    rate: float  # messages per second
    cpu_us: float  # CPU of this process (every thread) per message, in µs


async def _send_all(port: int, window: int, count: int) -> Run:
    settings = dataclasses.replace(
        SmppSettings(),
        host="127.0.0.1",
        port=port,
        system_id=SYSTEM_ID,
        password=PASSWORD,
        window=window,
        reconnect_min=0.05,
    )
    notifier = SmsNotifier(settings, _ignore, _ignore)
    await notifier.start()
    await notifier.wait_bound(5.0)
    try:
        messages = [OutgoingMessage("+306912345678", f"Missed call {i}") for i in range(count)]
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(notifier.send(m) for m in messages))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        return Run(count / elapsed, cpu / count * 1e6)
    finally:
        await notifier.stop()


async def smpp_rate(
    window: int,
    count: int,
    *,
    latency: float = 0.0,
    receipts: bool = True,
    same_process: bool = False,
) -> float:
    """Messages per second through one bind with this window (see `smpp_run`)."""
    run = await smpp_run(
        window, count, latency=latency, receipts=receipts, same_process=same_process
    )
    return run.rate


async def smpp_run(
    window: int,
    count: int,
    *,
    latency: float = 0.0,
    receipts: bool = True,
    same_process: bool = False,
) -> Run:
    """Messages per second through one bind with this window; the SMSC answers each
    submit_sm after `latency` seconds, in a child process (or, with same_process, in this
    process's event loop)."""
    if same_process:
        smsc = SmscServer(system_id=SYSTEM_ID, password=PASSWORD, submit_latency=latency)
        smsc.receipts = receipts
        async with smsc:
            return await _send_all(smsc.port, window, count)
    async with SmscProcess(latency, receipts) as child:
        return await _send_all(child.port, window, count)


def _count(count: int, window: int, latency: float) -> int:
    """Fewer messages where each run would otherwise take long: about 2 s at the ideal
    rate (window / latency), and at least a few windows' worth."""
    if latency <= 0:
        return count if window > 1 else min(count, 2000)
    return max(min(count, int(2.0 * window / latency)), 4 * window, 50)


def _best(
    repeat: int, window: int, count: int, latency: float, receipts: bool, same_process: bool
) -> Run:
    runs = [
        asyncio.run(
            smpp_run(window, count, latency=latency, receipts=receipts, same_process=same_process)
        )
        for _ in range(repeat)
    ]
    return max(runs, key=lambda run: run.rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--windows", default=",".join(map(str, DEFAULT_WINDOWS)))
    parser.add_argument("--latencies", default="0,5", help="ms before each submit_sm_resp")
    parser.add_argument("--no-receipts", action="store_true")
    parser.add_argument("--same-process", action="store_true")
    parser.add_argument("--json", type=Path, help='write {"smpp_per_s": ...} here')
    args = parser.parse_args()
    if args.json and args.no_receipts:
        parser.error("--json is the rate with receipts: drop --no-receipts")
    windows = [int(w) for w in args.windows.split(",")]
    where = "same process" if args.same_process else "SMSC in a child process"
    receipts = "without" if args.no_receipts else "with"
    print(f"best of {args.repeat}, {where}, {receipts} delivery receipts")
    kept: Run | None = None
    for latency in (float(ms) / 1000 for ms in args.latencies.split(",")):
        print(f"SMSC latency {latency * 1000:g} ms:")
        rates: dict[int, float] = {}
        for window in windows:
            count = _count(args.count, window, latency)
            run = _best(
                args.repeat, window, count, latency, not args.no_receipts, args.same_process
            )
            rates[window] = run.rate
            if (window, latency) == JSON_POINT:
                kept = run
            print(
                f"  window {window:>4}: {run.rate:>8.0f} msg/s  {run.cpu_us:>5.0f} µs CPU/msg"
                f"  ({count} messages)"
            )
        if base := rates.get(1):
            ratios = ", ".join(f"{w}: {r / base:.1f}x" for w, r in rates.items() if w != 1)
            print(f"  against window 1: {ratios}")
    if args.json:
        window, latency = JSON_POINT
        if kept is None:
            count = _count(args.count, window, latency)
            kept = _best(args.repeat, window, count, latency, True, args.same_process)
            print(f"window {window}, SMSC latency {latency * 1000:g} ms: {kept.rate:.0f} msg/s")
        args.json.write_text(json.dumps({"smpp_per_s": round(kept.rate)}) + "\n")


if __name__ == "__main__":
    main()
