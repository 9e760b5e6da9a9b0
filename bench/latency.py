"""Missed-call alert latency and burst rate: AMI Hangup -> sendMessage at the Bot API.

    python bench/latency.py [--live N] [--measure M] [--burst B] [--quick]
                            [--json PATH] [--profile PATH] [--no-flood-limits]

The real gateway (`main.py run`: gateway and bot) runs as a child process on a seeded
SQLite database (or --database-url, an empty one); the sandbox AMI and Bot API run in
this process, with Telegram's flood limits on (sandbox/flood.py: 30 messages/s per bot,
429 with retry_after past them). Every subscriber has its own DDI and Telegram chat.

1. N calls are opened and left ringing (every agent rings, nobody answers), and M + B
   more that will end; the gateway's /healthz must count them all as tracked.
2. Latency: M of those calls are ended one after another, each as its caller hanging up
   (HangupRequest ... FrontdeskCallEnd, Hangup: one write to the AMI socket), timed from
   that write until the Bot API receives the sendMessage to that subscriber's chat; a
   call starts at most every 1/--rate s (default 20/s), below Telegram's 30/s, so the
   figure is the gateway's delay and not the pacing's.
3. Burst: B calls of B different subscribers are ended evenly within one second; the
   figure is B / (time from the first write until the last alert is at the Bot API),
   with the 429s counted (the goal: >= 28/s and none).

Prints p50, p99 (target p99 <= 25 ms) and the burst; --json writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import pstats
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.live_gateway import (  # noqa: E402
    AMI_SECRET,
    TOKEN,
    GatewayProcess,
    chat_of,
    ddi_of,
    free_port,
    seed,
    write_config,
)
from sandbox.ami_server import AmiServer, encode_frame  # noqa: E402
from sandbox.call_scripts import CallFactory  # noqa: E402
from sandbox.flood import FloodLimits  # noqa: E402
from sandbox.telegram_api import BotApiServer  # noqa: E402

WARMUP = 20  # calls ended (not timed) before measuring: the backlog of setup is routed
OPEN_CHUNK = 100  # ringing calls written per push while setting up
TARGET_P99_MS = 25.0
TARGET_BURST = 28.0


class Arrivals:
    """When each chat's first sendMessage reached the Bot API (read incrementally)."""

    def __init__(self, bot: BotApiServer) -> None:
        self.bot = bot
        self.first: dict[int, float] = {}
        self.refused: dict[int, int] = {}  # chat -> 429s
        self._seen = 0

    def _scan(self) -> None:
        for call in self.bot.requests[self._seen :]:
            self._seen += 1
            chat = call.params.get("chat_id")
            if call.method != "sendMessage" or not isinstance(chat, int):
                continue
            if call.status == 429:
                self.refused[chat] = self.refused.get(chat, 0) + 1
            elif call.ok:
                self.first.setdefault(chat, call.at)

    async def wait(self, chats: Sequence[int], timeout: float) -> None:
        def arrived() -> bool:
            self._scan()
            return all(c in self.first for c in chats)

        await self.bot.wait_until(arrived, timeout, f"alerts to {len(chats)} chat(s)")


def split_missed(factory: CallFactory, subscriber: int) -> tuple[bytes, bytes]:
    """A missed call on the subscriber's DDI as (ringing part, the caller's hang-up)."""
    frames = factory.missed(ddi_of(subscriber), f"+30697{subscriber:07d}", f"Caller {subscriber}")
    cut = next(i for i, f in enumerate(frames) if f["Event"] == "HangupRequest")
    return b"".join(map(encode_frame, frames[:cut])), b"".join(map(encode_frame, frames[cut:]))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank, as latency percentiles are usually quoted."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ending = WARMUP + args.measure + args.burst
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = args.database_url or f"sqlite://{tmp / 'bench.sqlite3'}"
        seeded = await seed(url, ending)
        factory = CallFactory()
        ends: dict[int, bytes] = {}
        ringing: list[bytes] = []
        for i in range(1, ending + 1):  # subscriber i's call, ended below
            ringing_part, ends[i] = split_missed(factory, i)
            ringing.append(ringing_part)
        for j in range(args.live):  # the calls left ringing, on the same DDIs
            ringing.append(split_missed(factory, 1 + j % ending)[0])
        async with AmiServer(secret=AMI_SECRET) as ami, BotApiServer(TOKEN) as bot:
            flood = bot.rate_limit(None if args.flood_limits else FloodLimits(per_second=10**6))
            http_port = free_port()
            config = write_config(tmp, url, ami, bot, http_port)
            log = tmp / "gateway.log"
            launcher = ["-m", "cProfile", "-o", str(args.profile)] if args.profile else []
            async with GatewayProcess(config, http_port, log, [*launcher, "main.py"]) as gw:
                await gw.until("AMI login", lambda b: b.get("ami_connected"), 60)
                await ami.wait_logged_in(timeout=30)
                opened = time.perf_counter()
                for k in range(0, len(ringing), OPEN_CHUNK):
                    await ami.push_raw(b"".join(ringing[k : k + OPEN_CHUNK]))
                total = len(ringing)
                await gw.until(
                    f"{total} calls tracked",
                    lambda b: b.get("calls_in_progress", 0) >= total,
                    timeout=120 + total / 50,
                )
                opened = time.perf_counter() - opened
                arrivals = Arrivals(bot)
                # Warm-up: routed in order, so their alerts mean the setup's backlog is done.
                for i in range(1, WARMUP + 1):
                    await ami.push_raw(ends[i])
                await arrivals.wait([chat_of(i) for i in range(1, WARMUP + 1)], 120)
                settled = await gw.settle()  # steady state: 5,000 calls ring, nothing queued
                latencies = await measure(ami, arrivals, ends, WARMUP + 1, args)
                after = WARMUP + args.measure + 1
                burst_s, burst_429 = await burst(ami, arrivals, ends, after, args)
                if args.dump:
                    args.dump.write_text(json.dumps([round(x * 1000, 2) for x in latencies]))
                health = await gw.health() or {}
                rss = gw.rss_mb()
            if args.profile:
                print_profile(args.profile)
    p50, p99 = percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000
    return {
        "latency_p50_ms": round(p50, 2),
        "latency_p99_ms": round(p99, 2),
        "latency_max_ms": round(max(latencies) * 1000, 2),
        "latency_calls": len(latencies),
        "live_calls": args.live,
        "burst_calls": args.burst,
        "burst_s": round(burst_s, 3),
        "burst_per_s": round(args.burst / burst_s, 2),
        "burst_429s": burst_429,
        "http_429s": flood.refused,
        "latency_seed_s": round(seeded.seconds, 2),
        "latency_open_s": round(opened, 2),
        "latency_settle_s": round(settled, 1),
        "latency_gateway_rss_mb": round(rss, 1),
        "latency_tracked_at_end": health.get("calls_in_progress"),
        "database": url.split("://", 1)[0],
    }


async def measure(
    ami: AmiServer, arrivals: Arrivals, ends: dict[int, bytes], first: int, args: argparse.Namespace
) -> list[float]:
    latencies = []
    gap = 1.0 / args.rate
    for i in range(first, first + args.measure):
        start = time.monotonic()
        await ami.push_raw(ends[i])
        await arrivals.wait([chat_of(i)], 30)
        latencies.append(arrivals.first[chat_of(i)] - start)
        if (left := start + gap - time.monotonic()) > 0:
            await asyncio.sleep(left)  # pacing the load, not waiting for a result
    return latencies


async def burst(
    ami: AmiServer, arrivals: Arrivals, ends: dict[int, bytes], first: int, args: argparse.Namespace
) -> tuple[float, int]:
    """B hang-ups spread evenly over one second; seconds until the last alert arrived."""
    subscribers = list(range(first, first + args.burst))
    start = time.monotonic()
    for n, i in enumerate(subscribers):
        if (left := start + n / len(subscribers) - time.monotonic()) > 0:
            await asyncio.sleep(left)  # the hang-ups' schedule, not synchronisation
        await ami.push_raw(ends[i])
    chats = [chat_of(i) for i in subscribers]
    await arrivals.wait(chats, 60 + len(chats))
    last = max(arrivals.first[c] for c in chats)
    return last - start, sum(arrivals.refused.get(c, 0) for c in chats)


def print_profile(path: Path, top: int = 30) -> None:
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--live", type=int, default=5000, help="calls left ringing meanwhile")
    ap.add_argument("--measure", type=int, default=500, help="missed calls timed one by one")
    ap.add_argument("--burst", type=int, default=300, help="missed calls within one second")
    ap.add_argument("--rate", type=float, default=20.0, help="timed calls per second at most")
    ap.add_argument("--quick", action="store_true", help="500 live, 100 timed, burst of 60")
    ap.add_argument("--database-url", help="an empty database (default: a fresh SQLite file)")
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    ap.add_argument("--profile", type=Path, help="run the gateway under cProfile into this file")
    ap.add_argument("--dump", type=Path, help="write every timed latency (ms, in order) here")
    ap.add_argument(
        "--no-flood-limits", dest="flood_limits", action="store_false", help="Bot API unlimited"
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.live, args.measure, args.burst = 500, 100, 60
    logging.disable(logging.WARNING)
    figures = asyncio.run(run(args))
    print(
        f"missed call -> Bot API with {figures['live_calls']} calls tracked: "
        f"p50 {figures['latency_p50_ms']:.1f} ms, p99 {figures['latency_p99_ms']:.1f} ms, "
        f"max {figures['latency_max_ms']:.1f} ms over {figures['latency_calls']} calls "
        f"(target p99 <= {TARGET_P99_MS:.0f} ms)"
    )
    print(
        f"burst of {figures['burst_calls']} missed calls in 1 s: last alert after "
        f"{figures['burst_s']:.2f} s = {figures['burst_per_s']:.1f}/s, "
        f"{figures['burst_429s']} x 429 (target >= {TARGET_BURST:.0f}/s, no 429)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
