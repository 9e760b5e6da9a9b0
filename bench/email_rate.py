"""Email send-rate benchmark: plain-text messages per second through one SMTP session.

    python bench/email_rate.py [--count N] [--repeat R]

The real EmailNotifier sends into the sandbox's SMTP sink on loopback (no TLS, no AUTH),
one message after another over one reused connection: MAIL, RCPT and DATA per message,
composition included. Each run is repeated R times and the best rate is kept (as timeit
does): the noise on a shared machine only ever slows a run down.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.settings import SmtpSettings  # noqa: E402
from notifiers.base import OutgoingMessage  # noqa: E402
from notifiers.email.outbound import EmailNotifier  # noqa: E402
from sandbox.smtp_sink import SmtpSink  # noqa: E402

TEXT = "Αναπάντητη κλήση από +30 210 1234567 στις 14:32. Πατήστε για επανάκληση."


async def email_rate(count: int) -> float:
    """Messages per second, `count` plain-text messages over one reused connection."""
    async with SmtpSink() as sink:
        settings = SmtpSettings(
            host=sink.host, port=sink.port, security="none", from_address="bench@frontdesk.test"
        )
        notifier = EmailNotifier(settings)
        await notifier.start()
        try:
            # Connect before the clock starts: the rate is of sends, not of the handshake.
            await notifier.send(OutgoingMessage("warm-up@example.gr", TEXT, subject="warm-up"))
            start = time.perf_counter()
            for i in range(count):
                message = OutgoingMessage(f"user{i}@example.gr", TEXT, subject="Κλήση")
                await notifier.send(message)
            elapsed = time.perf_counter() - start
        finally:
            await notifier.stop()
        if len(sink.messages) != count + 1 or sink.connections != 1:
            raise RuntimeError(
                f"sink saw {len(sink.messages)} messages on {sink.connections} connections"
            )
    return count / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--count", type=int, default=2000, help="messages per run")
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best is kept")
    args = ap.parse_args()
    rate = max(asyncio.run(email_rate(args.count)) for _ in range(args.repeat))
    print(f"email over one SMTP session  {rate:>8,.0f} messages/s  ({args.count} per run)")


if __name__ == "__main__":
    main()
