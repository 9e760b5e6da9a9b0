"""Outbox drain: how fast N gateways empty a queue of Telegram messages on one database.

    python bench/outbox_drain.py [--database-url URL] [--instances N] [--count C]
                                 [--quick] [--json PATH]

Seeds C due deliveries (one chat each: Telegram paces one chat to a message a second),
starts N real gateways (`main.py run`) on the database against the sandbox AMI and Bot API
in this process, and times from the first message at the Bot API to the last; prints
messages/s, and lost and duplicated (which must be 0). The gateways run with the default
outbox settings (in_flight 1, batch 50, lease 60 s) and `telegram.send_rate` lifted, as the
sandbox Bot API has no flood limit: the figure is the outbox's, not Telegram's 30/s.
SQLite allows one gateway; PostgreSQL any number (claims are FOR UPDATE SKIP LOCKED).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.leadership import is_postgres  # noqa: E402
from models.database import close_db, migrate, open_db  # noqa: E402
from models.db import Delivery  # noqa: E402
from sandbox.ami_server import AmiServer  # noqa: E402
from sandbox.telegram_api import BotApiServer  # noqa: E402
from tests.cluster import SECRET, TOKEN, gateways  # noqa: E402

FIRST_CHAT = 500_000


async def seed(url: str, count: int) -> None:
    await migrate(url)
    await open_db(url)
    try:
        now = datetime.now(UTC)
        for start in range(0, count, 1000):
            await Delivery.bulk_create(
                [
                    Delivery(
                        dedupe_key=f"drain:{i}",
                        kind="message",
                        channel="telegram",
                        address=str(FIRST_CHAT + i),
                        text=f"drain {i}",
                        next_attempt_at=now,
                    )
                    for i in range(start, min(start + 1000, count))
                ]
            )
    finally:
        await close_db()


async def drain(url: str, instances: int, count: int, workdir: Path) -> dict[str, float]:
    await seed(url, count)
    async with AmiServer(secret=SECRET) as ami, BotApiServer(TOKEN) as bot:
        extra = {
            "FRONTDESK__OUTBOX__LEASE_SECONDS": "60",
            "FRONTDESK__TELEGRAM__SEND_RATE": "100000",
            "FRONTDESK__LOG__LEVEL": "WARNING",
        }
        async with gateways(workdir, ami, bot, url, **extra) as group:

            def drained() -> list[str]:
                return [
                    str(c.params.get("text"))
                    for c in bot.sent
                    if c.method == "sendMessage"
                    and str(c.params.get("text", "")).startswith("drain ")
                ]

            for _ in range(instances):
                await group.start()
            # Timed from the first message on: the gateways' start-up is not the outbox's.
            await bot.wait_until(lambda: bool(drained()), 120, "the first message")
            started = time.monotonic()
            await bot.wait_until(lambda: len(set(drained())) >= count, 600, "the drain")
            seconds = time.monotonic() - started
        texts = Counter(drained())
    return {
        "per_s": count / seconds,
        "seconds": seconds,
        "lost": count - len(texts),
        "duplicated": sum(n - 1 for n in texts.values()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default="", help="default: a throw-away SQLite file")
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--quick", action="store_true", help="1,000 messages")
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    args = ap.parse_args(argv)
    count = 1000 if args.quick else args.count
    with tempfile.TemporaryDirectory(prefix="drain-") as tmp:
        url = args.database_url or f"sqlite://{Path(tmp) / 'drain.sqlite3'}"
        database = "postgres" if is_postgres(url) else "sqlite"
        if database == "sqlite" and args.instances != 1:
            ap.error("SQLite allows one gateway: --instances 1")
        figures = asyncio.run(drain(url, args.instances, count, Path(tmp)))
    print(
        f"outbox drain, {database}, {args.instances} gateway(s): {count} messages in "
        f"{figures['seconds']:.1f}s = {figures['per_s']:.0f}/s; "
        f"lost {figures['lost']}, duplicated {figures['duplicated']}"
    )
    if args.json:
        result = {
            "outbox_drain": {database: {str(args.instances): round(figures["per_s"], 1)}},
            "database": database,
            f"outbox_drain_{database}_{args.instances}_lost": figures["lost"],
            f"outbox_drain_{database}_{args.instances}_duplicated": figures["duplicated"],
        }
        args.json.write_text(json.dumps(result, indent=2), "utf-8")
    return 0 if figures["lost"] == 0 and figures["duplicated"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
