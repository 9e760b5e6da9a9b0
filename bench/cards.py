"""Screen-pop delay: from the DialBegin that rings an agent to the card's sendMessage.

    python bench/cards.py [--calls N] [--history H]

The gateway and bot run in this process as `main.py run` wires them, against the sandbox
AMI and Bot API on loopback. Each call (the caller has H earlier calls on record) is
played up to its first agent's DialBegin, timed from the moment those bytes are written
to the AMI socket until the Bot API stand-in receives the sendMessage of that agent's
card; then the call is played to its end (the cards' edits are not timed). Prints the
median, 95th percentile and worst delay; the goal is under a second.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.control import admin  # noqa: E402
from models.db import Call, Role, User  # noqa: E402
from models.events import CallOutcome, CallStatus  # noqa: E402
from models.staff import Agent  # noqa: E402
from sandbox.ami_server import AmiServer  # noqa: E402
from sandbox.call_scripts import CallFactory  # noqa: E402
from sandbox.telegram_api import BotApiServer  # noqa: E402
from sandbox.telegram_api import Call as BotCall  # noqa: E402
from tests.stack import running, sandbox_settings  # noqa: E402

TOKEN = "123456:BENCH-token"
DDI = "2100001"
CHATS = {"PJSIP/agent1": 901, "PJSIP/agent2": 902}
WAIT = 10.0


async def bench(calls: int, past: int) -> list[float]:
    delays: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot:
            settings = sandbox_settings(Path(tmp) / "bench.sqlite3", ami, bot, TOKEN)
            async with running(settings) as runtime:
                await ami.wait_logged_in(timeout=WAIT)
                created = await admin.add_subscriber(
                    name="Bench office",
                    ddis=[DDI],
                    language="en",
                    timezone="Europe/Athens",
                    mobile="+306900000009",
                )
                for n, (interface, chat) in enumerate(CHATS.items(), 1):
                    user = await User.create(
                        name=f"Agent {n}", role=Role.AGENT, telegram_chat_id=chat
                    )
                    await Agent.create(user=user, interface=interface)
                factory = CallFactory()
                for i in range(calls):
                    caller = f"+3021000{i:05d}"
                    since = datetime.now(UTC) - timedelta(days=30)
                    for k in range(past):
                        await Call.create(
                            linkedid=f"past.{i}.{k}", subscriber=created.subscriber,
                            caller_number=caller, started_at=since + timedelta(hours=k),
                            status=CallStatus.LOST, outcome=CallOutcome.ABANDONED,
                        )  # fmt: skip
                    frames = factory.missed(DDI, caller, f"Caller {i}", agents=("1", "2"))
                    dial = next(n for n, f in enumerate(frames) if f["Event"] == "DialBegin")
                    seen = len(bot.requests)

                    def card(c: BotCall, caller: str = caller) -> bool:
                        return (
                            c.method == "sendMessage"
                            and str(c.params.get("chat_id")) == str(CHATS["PJSIP/agent1"])
                            and caller in str(c.params.get("text", ""))
                        )

                    await ami.play(frames[:dial])
                    await runtime.gateway.drain()  # the call is tracked and routed
                    start = time.monotonic()
                    await ami.play(frames[dial : dial + 1])
                    sent = await bot.wait_for(card, timeout=WAIT)
                    delays.append(sent.at - start)
                    assert len(bot.requests) > seen
                    await ami.play(frames[dial + 1 :])
                    await runtime.gateway.drain()
                    await runtime.gateway.cards.drain()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--history", type=int, default=20, help="earlier calls per caller")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the missed calls' "no channel reaches them"
    delays = sorted(asyncio.run(bench(args.calls, args.history)))
    p95 = delays[min(len(delays) - 1, round(0.95 * (len(delays) - 1)))]
    print(
        f"screen-pop: {len(delays)} calls, DialBegin -> sendMessage: "
        f"median {statistics.median(delays) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
        f"worst {delays[-1] * 1000:.1f} ms (goal: under 1000 ms)"
    )


if __name__ == "__main__":
    main()
