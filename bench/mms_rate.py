"""MMS throughput: messages per second through the real MmsNotifier into the sandbox MMSC.

    python bench/mms_rate.py [--count N] [--in-flight K] [--repeat R]

Each message is a short Greek text plus a 10 KB attachment, sent as an MM7 SubmitReq over
loopback HTTP with K sends in flight; the MMSC parses and validates every one. The best
of R runs is kept (noise on a shared machine only ever slows a run down).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.settings import MmsSettings  # noqa: E402
from notifiers.base import Attachment, OutgoingMessage  # noqa: E402
from notifiers.mms.client import MmsNotifier  # noqa: E402
from sandbox.mmsc import MmscServer  # noqa: E402

ATTACHMENT = Attachment("voicemail.amr", "audio/amr", bytes(range(256)) * 40)  # 10 KB


async def mms_rate(count: int, in_flight: int = 10) -> float:
    """Messages per second for ``count`` sends, ``in_flight`` at a time."""
    async with MmscServer(username="bench", password="bench") as mmsc:
        settings = MmsSettings(
            url=mmsc.url, vasp_id="bench", vas_id="bench", username="bench", password="bench"
        )
        notifier = MmsNotifier(settings)
        await notifier.start()
        slots = asyncio.Semaphore(in_flight)

        async def send(n: int) -> None:
            async with slots:
                await notifier.send(
                    OutgoingMessage(
                        address="+306912345678",
                        text=f"Αναπάντητη κλήση #{n}",
                        subject="Frontdesk",
                        attachments=(ATTACHMENT,),
                        reference=f"bench-{n}",
                    )
                )

        try:
            started = time.perf_counter()
            await asyncio.gather(*(send(n) for n in range(count)))
            elapsed = time.perf_counter() - started
        finally:
            await notifier.stop()
        assert len(mmsc.submissions) == count
    return count / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--count", type=int, default=2000, help="messages per run")
    ap.add_argument("--in-flight", type=int, default=10, help="concurrent sends")
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best is kept")
    args = ap.parse_args()
    rate = max(asyncio.run(mms_rate(args.count, args.in_flight)) for _ in range(args.repeat))
    print(f"MM7 submit, text + 10 KB, {args.in_flight} in flight  {rate:>8,.0f} messages/s")


if __name__ == "__main__":
    main()
