"""Telegram answering 429 and 500 in bursts while a burst of messages to many chats goes
out: every message arrives, once, and after a 429 the bot sends nothing before the
retry_after it gave (Telegram counts a bot's requests together; bot/runtime.py paces them
all through one limiter).

The sandbox Bot API answers the next sendMessage requests with the faults queued by
`fail_next`, in order, before handling them (so a 500 here never delivered anything: no
crash, and no duplicate allowed)."""

from __future__ import annotations

from pathlib import Path

from models.db import Delivery
from sandbox.telegram_api import Call
from tests.faults.conftest import Report
from tests.faults.office import office

CHATS = 10
PER_CHAT = 3  # within Telegram's burst in one chat
RETRY_AFTER = 1  # seconds; the Bot API's retry_after is a whole number
BURSTS = [(429, 2), (500, 4), (429, 1), (500, 3)]  # consumed in this order


async def test_telegram_429_and_500_bursts(fault_db: Path, fault_report: Report) -> None:
    async with office(fault_db) as here:
        chats = await here.more_chats(CHATS)
        for sid in chats:
            await here.route("telegram", subscriber=sid)
        for status, count in BURSTS:
            retry_after = RETRY_AFTER if status == 429 else None
            here.bot.fail_next("sendMessage", status=status, retry_after=retry_after, count=count)
        for n in range(PER_CHAT):
            for sid in chats:
                await here.messages([f"Call back, burst-{sid}-{n}."], subscriber=sid)
        ids = dict(await Delivery.filter(kind="message").values_list("id", "channel"))
        settled = True
        try:
            await here.until(lambda: here.finished(ids) == len(ids))
        except TimeoutError:
            settled = False
        tally = await here.tally("telegram_429_500_bursts")
        sends = [c for c in here.bot.requests if c.method == "sendMessage"]
    fault_report(tally)

    assert settled, tally.detail()
    assert len(ids) == CHATS * PER_CHAT and tally.lost == [], tally.detail()
    # No kill here: the bound on Telegram's repeats (outbox.in_flight per kill) is 0.
    assert tally.duplicated == 0 and tally.channels["telegram"].sent == len(ids)
    faults = [c.status for c in sends if not c.ok]
    assert sorted(faults) == sorted(s for s, n in BURSTS for _ in range(n)), faults
    early = [_too_soon(c, sends) for c in sends if c.status == 429]
    assert [e for e in early if e] == [], "requests sent before a 429's retry_after"


def _too_soon(refused: Call, sends: list[Call]) -> str:
    """Requests that came within retry_after of a 429 (of any chat: the bot is refused)."""
    soon = [c for c in sends if refused.at < c.at < refused.at + RETRY_AFTER]
    return ", ".join(f"{c.params.get('chat_id')} after {c.at - refused.at:.3f}s" for c in soon)
