"""SMSC outage drill: messages queued while the SMSC is down all arrive after it, once.

    python bench/sms_outage.py [--seconds 30] [--messages 20]

The real gateway (outbox, notices, receipts, SmsNotifier over smpplib) runs against the
sandbox SMSC. The SMSC stops; messages are taken for a subscriber over the outage (the
outbox retries each with doubling backoff, capped at 5 s here); the SMSC comes back on
the same port. Prints how many were queued, delivered and duplicated, and how long the
backlog took to drain. Exits 1 unless every message was delivered exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.app import Gateway  # noqa: E402
from gateway.control import admin  # noqa: E402
from models.database import close_db, migrate, open_db  # noqa: E402
from models.db import Delivery, DeliveryStatus, Urgency  # noqa: E402
from models.settings import load_settings, with_section  # noqa: E402
from notifiers.sms.channel import SmsNotifier  # noqa: E402
from sandbox.smsc import SmscServer  # noqa: E402

MOBILE = "+306944000999"


async def drill(workdir: Path, seconds: float, messages: int) -> bool:
    async with SmscServer(system_id="drill", password="drill") as smsc:
        s = load_settings(None, environ={})
        s = with_section(s, "database", url=f"sqlite://{workdir / 'drill.sqlite3'}")
        s = with_section(s, "http", port=0)
        s = with_section(s, "ami", port=1, reconnect_min=5.0)  # no Asterisk in this drill
        s = with_section(s, "outbox", idle_poll=0.2, retry_initial=0.5, retry_max=5.0)
        s = with_section(
            s, "smpp", host=smsc.host, port=smsc.port, system_id="drill", password="drill"
        )
        s = with_section(s, "smpp", reconnect_min=0.2, reconnect_max=2.0)
        await migrate(s.database.url)
        await open_db(s.database.url)
        gateway = Gateway(s)
        gateway.add_notifier(SmsNotifier(s.smpp, gateway.on_report, gateway.on_inbound))
        delivered = asyncio.Event()
        done: set[int] = set()

        def observe(delivery_id: int, status: DeliveryStatus) -> None:
            if status is DeliveryStatus.DELIVERED:
                done.add(delivery_id)
                if len(done) == messages:
                    delivered.set()

        gateway.receipts.observers.append(observe)
        await gateway.start()
        try:
            created = await admin.add_subscriber(
                name="Drill", ddis=["2100999"], language="el", timezone="Europe/Athens"
            )
            sid = created.subscriber.id
            await admin.set_contact_points(sid, mobile=MOBILE)
            await admin.set_route(sid, "message", Urgency.NORMAL, ["sms"])

            await smsc.stop()
            print(f"SMSC down for {seconds:g} s; taking {messages} messages meanwhile")
            down_at = time.monotonic()
            for n in range(messages):
                await admin.take_message(gateway.notices, sid, f"drill message {n}")
                await asyncio.sleep(seconds / messages)  # spread over the outage, as in life
            await smsc.start()
            back_at = time.monotonic()
            print(f"SMSC back after {back_at - down_at:.1f} s")
            await asyncio.wait_for(delivered.wait(), 120)
            drained = time.monotonic() - back_at
        finally:
            await gateway.stop()
            rows = await Delivery.filter(kind="message")
            await close_db()
    texts = Counter(m.text.rsplit(" / ", 1)[-1] for m in smsc.messages)
    duplicates = sum(n - 1 for n in texts.values() if n > 1)
    attempts = sum(r.attempts for r in rows)
    print(f"queued during the outage: {messages}")
    print(f"delivered after it:       {len(done)} (delivery receipts), SMSC saw {len(texts)}")
    print(f"duplicates:               {duplicates}")
    print(f"send attempts in all:     {attempts} (failed ones retried with backoff)")
    print(f"backlog drained in:       {drained:.1f} s after the SMSC came back")
    return len(done) == messages and len(texts) == messages and duplicates == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="how long the SMSC is down")
    ap.add_argument("--messages", type=int, default=20, help="messages taken meanwhile")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ok = asyncio.run(drill(Path(tmp), args.seconds, args.messages))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
