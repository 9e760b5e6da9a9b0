"""Memory of a loaded gateway: VmRSS with many subscribers, DDIs and live calls.

    python bench/rss.py [--subscribers N] [--ddis-each D] [--calls C] [--quick]
                        [--json PATH] [--tracemalloc]

Seeds a throw-away SQLite database in bulk (N subscribers, D DDIs and a Telegram chat
each), starts the real gateway (`main.py run`: gateway and bot) as a child process
against the sandbox AMI and Bot API in this process, waits for its AMI login and the
AstDB re-assert that follows (until /healthz counts the login synced, `pbx_syncs`, or
--settle seconds), opens C calls that keep ringing, waits until /healthz counts them all and the
router has written them, then reads VmRSS from /proc/<pid>/status (target <= 250 MB at
100,000 subscribers, 300,000 DDIs and 20,000 calls). --tracemalloc runs the gateway with
tracemalloc on and prints where its Python memory is, by line; with it or --trim the
gateway then collects garbage and returns free pages (malloc_trim) and says its RSS again:
what is left is live, what went was only held by the allocator.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import logging
import os
import signal
import sys
import tempfile
import tracemalloc
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
from sandbox.telegram_api import BotApiServer  # noqa: E402

TARGET_MB = 250.0
OPEN_CHUNK = 200  # ringing calls per write
TRACE_TOP = 25


def ringing(factory: CallFactory, ddi: str, n: int) -> bytes:
    """A call that rings the agents and goes on ringing (its end is never sent)."""
    frames = factory.missed(ddi, f"+30697{n:07d}", f"Caller {n}")
    cut = next(i for i, f in enumerate(frames) if f["Event"] == "HangupRequest")
    return b"".join(map(encode_frame, frames[:cut]))


async def synced(gw: GatewayProcess, limit: float) -> bool:
    """Until the gateway says its login is synced (calls reconciled, AstDB re-asserted:
    /healthz `pbx_syncs`), or `limit` seconds passed. A quiet AMI is no such sign: the
    re-assert reads the database between its bursts of actions."""
    try:
        await gw.until("AstDB re-assert", lambda b: b.get("pbx_syncs", 0) >= 1, limit)
    except TimeoutError:
        return False
    return True


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = f"sqlite://{tmp / 'rss.sqlite3'}"
        seeded = await seed(url, args.subscribers, args.ddis_each)
        per = args.ddis_each
        factory = CallFactory()
        subscriber = [1 + n % args.subscribers for n in range(args.calls)]
        calls = [ringing(factory, ddi_of(subscriber[n], 0, per), n) for n in range(args.calls)]
        # One more call, ended: routed after all the others (in order), its alert says so.
        marker = factory.missed(ddi_of(1, 0, per), "+306970000000", "Marker")
        async with AmiServer(secret=AMI_SECRET) as ami, BotApiServer(TOKEN) as bot:
            http_port = free_port()
            config = write_config(tmp, url, ami, bot, http_port)
            trace = tmp / "tracemalloc.txt"
            python_args = ["main.py"]
            if args.tracemalloc or args.trim:
                traced = ["-X", "tracemalloc=1"] if args.tracemalloc else []
                python_args = [*traced, __file__, "--serve-traced", str(trace)]
            async with GatewayProcess(config, http_port, tmp / "gateway.log", python_args) as gw:
                await gw.until("AMI login", lambda b: b.get("ami_connected"), 120)
                idle_rss = gw.rss_mb()
                reasserted = await synced(gw, args.settle)
                actions = len(ami.actions)
                after_login = gw.rss_mb()
                for k in range(0, len(calls), OPEN_CHUNK):
                    await ami.push_raw(b"".join(calls[k : k + OPEN_CHUNK]))
                await gw.until(
                    f"{args.calls} calls tracked",
                    lambda b: b.get("calls_in_progress", 0) >= args.calls,
                    timeout=120 + args.calls / 50,
                )
                await ami.play(marker)
                await bot.wait_until(
                    lambda: any(c.params.get("chat_id") == chat_of(1) for c in bot.sent),
                    timeout=120 + args.calls / 100,
                    what="the marker call's alert",
                )
                rss = gw.rss_mb()
                if args.tracemalloc or args.trim:
                    assert gw.proc is not None
                    gw.proc.send_signal(signal.SIGUSR1)
                    await gw.until("", lambda b: trace.exists(), 300, every=1.0)
                    print(trace.read_text())
    return {
        "rss_mb": round(rss, 1),
        "rss_subscribers": args.subscribers,
        "rss_ddis": seeded.ddis,
        "rss_live_calls": args.calls,
        "rss_idle_mb": round(idle_rss, 1),
        "rss_after_login_mb": round(after_login, 1),
        "rss_reassert_done": reasserted,
        "rss_ami_actions": actions,
        "rss_seed_s": round(seeded.seconds, 1),
        "database": "sqlite",
    }


def serve_traced(out: str, argv: list[str]) -> int:
    """The gateway (main.py's main) with tracemalloc on: SIGUSR1 writes the top lines."""
    import main as frontdesk

    def dump(signum: int, frame: object) -> None:
        lines = []
        if tracemalloc.is_tracing():
            stats = tracemalloc.take_snapshot().statistics("lineno")
            total = sum(s.size for s in stats)
            lines += [f"tracemalloc: {total / 2**20:.1f} MB in Python objects; top by line:"]
            lines += [
                f"  {s.size / 2**20:8.1f} MB {s.count:>9} {s.traceback}" for s in stats[:TRACE_TOP]
            ]
        # Live or only held by the allocator? Collect, give free pages back, look again.
        before = _own_rss_mb()
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        lines.append(
            f"RSS {before:.0f} MB; after gc.collect() and malloc_trim(0): {_own_rss_mb():.0f} MB"
        )
        tmp = out + ".part"
        Path(tmp).write_text("\n".join(lines) + "\n")
        os.replace(tmp, out)

    signal.signal(signal.SIGUSR1, dump)
    return frontdesk.main(argv)


def _own_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve-traced"]:
        return serve_traced(argv[1], argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=100_000)
    ap.add_argument("--ddis-each", type=int, default=3)
    ap.add_argument("--calls", type=int, default=20_000, help="live calls, left ringing")
    ap.add_argument("--settle", type=float, default=300.0, help="longest wait for re-assert")
    ap.add_argument("--quick", action="store_true", help="a tenth of everything")
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    ap.add_argument("--tracemalloc", action="store_true", help="print where memory goes")
    ap.add_argument("--trim", action="store_true", help="print the RSS after malloc_trim too")
    args = ap.parse_args(argv)
    if args.quick:
        args.subscribers, args.calls = args.subscribers // 10, args.calls // 10
    logging.disable(logging.WARNING)
    figures = asyncio.run(run(args))
    print(
        f"gateway RSS with {figures['rss_subscribers']:,} subscribers, {figures['rss_ddis']:,} "
        f"DDIs, {figures['rss_live_calls']:,} live calls: {figures['rss_mb']:.0f} MB "
        f"(target <= {TARGET_MB:.0f} MB; idle {figures['rss_idle_mb']:.0f} MB, after the "
        f"login's re-assert {figures['rss_after_login_mb']:.0f} MB, re-assert "
        f"{'done' if figures['rss_reassert_done'] else 'NOT done'}: "
        f"{figures['rss_ami_actions']:,} AMI actions)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
