"""Statistics on a year of calls: how long the KPIs, the usage CSV and a PDF report take.

    python bench/stats.py [--calls N]

Seeds a throw-away SQLite database with a year of calls (200,000 by default, with the
voicemails, faxes, messages taken, deliveries, SMS/MMS parts and presence spans that go
with them: tests/report_seed.py), then times each query over one month and over the whole
year. Prints seconds per operation; the goal is well under a second for a month.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.admin import report_pdf, stats, usage  # noqa: E402
from models.database import close_db, migrate, open_db  # noqa: E402
from tests.report_seed import TZ, seed  # noqa: E402

YEAR_START = datetime(2025, 12, 31, 22, 0, tzinfo=UTC)  # 2026 in Athens
YEAR_END = datetime(2026, 12, 31, 22, 0, tzinfo=UTC)
NOW = datetime(2027, 1, 15, tzinfo=UTC)


async def timed(label: str, work: Callable[[], Awaitable[Any]]) -> Any:
    began = time.perf_counter()
    result = await work()
    print(f"{label:<40} {time.perf_counter() - began:8.3f} s")
    return result


async def bench(calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite://{Path(tmp) / 'bench.sqlite3'}"
        await migrate(url)
        await open_db(url)
        try:
            seeded = await timed(
                f"seed {calls} calls over a year", lambda: seed(calls, YEAR_START, YEAR_END)
            )
            month = stats.month_period("2026-11", TZ)
            year = stats.parse_period("2026-01-01..2026-12-31", NOW, TZ)
            k = await timed("KPIs, one month (every grouping)", lambda: stats.kpis(month, NOW))
            print(f"  {k.total.inbound} inbound calls in the month")
            k = await timed("KPIs, the whole year", lambda: stats.kpis(year, NOW))
            print(f"  {k.total.inbound} inbound calls in the year")
            sub = seeded.subscribers[0].id
            await timed(
                "KPIs, one subscriber's month", lambda: stats.kpis(month, NOW, subscriber_id=sub)
            )
            await timed("usage CSV, one month", lambda: usage.usage("2026-11", TZ))
            data = await timed(
                "PDF report, one subscriber's month",
                lambda: report_pdf.report("2026-11", TZ, sub, "en"),
            )
            print(f"  {len(data)} bytes of PDF")
        finally:
            await close_db()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    asyncio.run(bench(args.calls))


if __name__ == "__main__":
    main()
