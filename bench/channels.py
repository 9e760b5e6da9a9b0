"""Channel benchmark: deliveries per second on each channel against the sandbox, and the
SMPP window's effect, in one run.

    python bench/channels.py [--count N] [--repeat R] [--smsc-latency MS]

Each channel's real notifier sends to its sandbox peer on loopback:
  telegram  python-telegram-bot -> Bot API stand-in (sendMessage, one at a time)
  email     aiosmtplib, one reused connection -> aiosmtpd sink (bench/email_rate.py)
  sms       smpplib transceiver, window = smpp.window -> SMSC in a child process
            (bench/smpp_window.py), with delivery receipts
  mms       MM7 SubmitReq with a 10 KB attachment, 10 in flight -> MMSC (bench/mms_rate.py)
The SMSC answers each submit_sm after --smsc-latency ms (default 5, a real SMSC's few
milliseconds; at 0 a loopback round trip costs almost nothing and a window has little to
hide). Each figure is the best of R runs: noise on a shared machine only slows a run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from telegram import Bot  # noqa: E402
from telegram.request import HTTPXRequest  # noqa: E402

from bench.email_rate import email_rate  # noqa: E402
from bench.mms_rate import mms_rate  # noqa: E402
from bench.smpp_window import smpp_rate  # noqa: E402
from models.settings import SmppSettings  # noqa: E402
from notifiers.base import OutgoingMessage  # noqa: E402
from notifiers.telegram import TelegramNotifier  # noqa: E402
from sandbox.telegram_api import BotApiServer  # noqa: E402

TOKEN = "1:bench"
TEXT = "Αναπάντητη κλήση από +30 210 1234567 στις 14:32."
IN_FLIGHT = 1  # one at a time: concurrent sends through httpx were slower here


async def telegram_rate(count: int) -> float:
    async with BotApiServer(TOKEN) as server:
        # As the Application builder does: a pool wide enough for the sends in flight.
        request = HTTPXRequest(connection_pool_size=IN_FLIGHT)
        bot = Bot(
            TOKEN, base_url=server.base_url, base_file_url=server.base_file_url, request=request
        )
        async with bot:
            notifier = TelegramNotifier(bot)
            slots = asyncio.Semaphore(IN_FLIGHT)

            async def one(i: int) -> None:
                async with slots:
                    await notifier.send(OutgoingMessage(str(1000 + i % 50), TEXT))

            await one(0)  # connection set up before the clock starts
            start = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(count)))
            return count / (time.perf_counter() - start)


def best(runs: int, make: Callable[[], Coroutine[Any, Any, float]]) -> float:
    return max(asyncio.run(make()) for _ in range(runs))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--count", type=int, default=2000, help="messages per channel and run")
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best is kept")
    ap.add_argument("--smsc-latency", type=float, default=5.0, help="ms per submit_sm_resp")
    args = ap.parse_args()
    n, r, latency = args.count, args.repeat, args.smsc_latency / 1000
    window = SmppSettings().window
    print(f"best of {r}; {n} messages per run; SMSC latency {args.smsc_latency:g} ms")
    rates = {
        "telegram": best(r, lambda: telegram_rate(n)),
        "email": best(r, lambda: email_rate(n)),
        f"sms (window {window})": best(r, lambda: smpp_rate(window, n, latency=latency)),
        "mms": best(r, lambda: mms_rate(n)),
    }
    for channel, rate in rates.items():
        print(f"{channel:<16} {rate:>8,.0f} deliveries/s")
    # Window 1 waits a whole round trip per message: fewer messages keep the run short.
    few = max(50, min(n, int(2 / max(latency, 1e-3))))
    single = best(r, lambda: smpp_rate(1, few, latency=latency))
    windowed = rates[f"sms (window {window})"]
    print(f"sms (window 1)   {single:>8,.0f} deliveries/s")
    print(
        f"SMPP window {window} / window 1: {windowed / single:.1f}x (target >= 5x); "
        f"window {window}: {windowed:,.0f}/s (target >= 1,000/s)"
    )


if __name__ == "__main__":
    main()
