"""The web desk's calls page on 100,000 calls: first page, a deep page, a search.

    python bench/web_desk.py [--calls N] [--others N] [--repeat R]

Seeds a throw-away SQLite database with N calls for one subscriber and as many for
others, mounts the desk on an aiohttp server, logs in by a magic link and times each
page over HTTP (best and median of R requests), then prints the query plan of the
calls query (the (subscriber_id, started_at) index of 0009_web). Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tortoise import Tortoise  # noqa: E402

from gateway.control.lines import Control  # noqa: E402
from gateway.delivery.notices import Notices  # noqa: E402
from gateway.web.app import WebDesk  # noqa: E402
from gateway.web.context import PAGE_SIZE  # noqa: E402
from gateway.web.links import issue_link  # noqa: E402
from models.database import close_db, migrate, open_db  # noqa: E402
from models.db import Call, Subscriber  # noqa: E402
from models.events import CallOutcome, CallStatus  # noqa: E402
from models.settings import RoutingSettings, WebSettings  # noqa: E402

BATCH = 5000
START = datetime(2025, 1, 1, tzinfo=UTC)


async def seed(subscriber: Subscriber, others: list[Subscriber], calls: int, rest: int) -> None:
    """`calls` calls for `subscriber`, `rest` spread over `others`, a few minutes apart."""
    owners = [(subscriber, calls)] + [(o, rest // len(others)) for o in others]
    made = 0
    for owner, count in owners:
        for first in range(0, count, BATCH):
            rows = [
                Call(
                    linkedid=f"{owner.id}-{n}",
                    ddi=f"21000{owner.id:05d}",
                    subscriber_id=owner.id,
                    caller_number=f"+3069{n % 50_000:08d}",
                    caller_name=f"Caller {n % 50_000}",
                    status=CallStatus.ANSWERED if n % 3 else CallStatus.LOST,
                    outcome=CallOutcome.ANSWERED if n % 3 else CallOutcome.ABANDONED,
                    started_at=START + timedelta(minutes=5 * n + owner.id),
                )
                for n in range(first, min(first + BATCH, count))
            ]
            await Call.bulk_create(rows)
            made += len(rows)
    print(f"seeded {made} calls ({calls} for the subscriber)")


async def timed(http: aiohttp.ClientSession, label: str, url: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        async with http.get(url) as r:
            body = await r.text()
            assert r.status == 200, (url, r.status)
        times.append(time.perf_counter() - began)
    rows = body.count('data-testid="call-row"')
    best, median = min(times) * 1000, statistics.median(times) * 1000
    print(f"{label:<36} best {best:8.1f} ms  median {median:8.1f} ms  rows {rows}")
    return times


async def plan(subscriber_id: int) -> None:
    conn = Tortoise.get_connection("default")
    sql = (
        'EXPLAIN QUERY PLAN SELECT * FROM "call" WHERE "subscriber_id"=? '
        'ORDER BY "started_at" DESC, "id" DESC LIMIT 51 OFFSET 99950'
    )
    for row in await conn.execute_query_dict(sql, [subscriber_id]):
        print(f"  plan: {row['detail']}")


async def bench(calls: int, others: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite://{Path(tmp) / 'bench.sqlite3'}"
        await migrate(url)
        await open_db(url)
        try:
            subscriber = await Subscriber.create(name="Bench", timezone="Europe/Athens")
            rest = [await Subscriber.create(name=f"Other {n}") for n in range(4)]
            began = time.perf_counter()
            await seed(subscriber, rest, calls, others)
            print(f"seeding took {time.perf_counter() - began:.1f} s")
            settings = WebSettings(session_secret="bench")
            app = web.Application()
            port: list[int] = []
            # GET pages only: no command reaches the control (it is not needed here).
            desk = WebDesk(
                settings,
                cast(Control, None),
                Notices([], RoutingSettings()),
                lambda: f"http://127.0.0.1:{port[0]}",
            )
            desk.install(app)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port.append(runner.addresses[0][1])
            try:
                jar = aiohttp.CookieJar(unsafe=True)
                async with aiohttp.ClientSession(cookie_jar=jar) as http:
                    link = await issue_link(subscriber.id, desk.links.base_url())
                    async with http.get(link) as r:
                        assert r.status == 200
                    base = desk.links.base_url()
                    deep = max(1, calls // PAGE_SIZE)
                    for label, path in [
                        ("calls, first page", "/desk/calls"),
                        (f"calls, page {deep // 2}", f"/desk/calls?page={deep // 2}"),
                        (f"calls, last page ({deep})", f"/desk/calls?page={deep}"),
                        ("calls, search by number", "/desk/calls?q=%2B306900012345"),
                        ("calls, search by name", "/desk/calls?q=Caller%2049999"),
                        ("today", "/desk/"),
                    ]:
                        await timed(http, label, f"{base}{path}", repeat)
            finally:
                await runner.cleanup()
            await plan(subscriber.id)
        finally:
            await close_db()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--others", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(bench(args.calls, args.others, args.repeat))


if __name__ == "__main__":
    main()
