"""The bot's pacing (notifiers/telegram_pacing.py) against the Bot API stand-in with
Telegram's flood limits on: a burst goes as fast as the limits allow and none is refused;
after a 429 nothing more is sent until its retry_after has passed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from telegram.error import RetryAfter
from telegram.ext import ExtBot

from notifiers.telegram_pacing import TelegramPacer
from sandbox.flood import FloodLimits
from sandbox.telegram_api import BotApiServer

TOKEN = "123456:TEST-pacing"


@pytest.fixture
async def server() -> AsyncIterator[BotApiServer]:
    async with BotApiServer(TOKEN) as srv:
        yield srv


async def paced_bot(server: BotApiServer, pacer: TelegramPacer) -> ExtBot[None]:
    bot: ExtBot[None] = ExtBot(
        TOKEN,
        base_url=server.base_url,
        base_file_url=server.base_file_url,
        rate_limiter=pacer,
    )
    await bot.initialize()
    return bot


async def test_a_burst_to_many_chats_keeps_the_bot_limit(server: BotApiServer) -> None:
    flood = server.rate_limit(FloodLimits(per_second=5))
    bot = await paced_bot(server, TelegramPacer(per_second=5))
    try:
        sent = await asyncio.gather(*(bot.send_message(1000 + n, f"alert {n}") for n in range(12)))
    finally:
        await bot.shutdown()
    assert len(sent) == 12 and flood.refused == 0
    times = sorted(c.at for c in server.sent)
    # 5 at once, 5 more a second later, the last 2 a second after that: no faster.
    assert times[-1] - times[0] >= 2.0
    assert all(times[k + 5] - times[k] > 1.0 for k in range(len(times) - 5))


async def test_one_chat_gets_its_burst_then_one_a_second(server: BotApiServer) -> None:
    flood = server.rate_limit(FloodLimits(chat_burst=2, chat_per_second=1.0))
    bot = await paced_bot(server, TelegramPacer(chat_burst=2, chat_per_second=1.0))
    try:
        sends = [bot.send_message(77, f"alert {n}") for n in range(4)]
        await asyncio.gather(*sends, bot.send_message(78, "another chat"))
    finally:
        await bot.shutdown()
    assert flood.refused == 0
    texts = [c.params["text"] for c in server.sent]
    assert [t for t in texts if t.startswith("alert")] == [f"alert {n}" for n in range(4)]
    assert texts.index("another chat") < texts.index("alert 2")  # not held up by chat 77
    at = [c.at for c in server.sent if c.params["chat_id"] == 77]
    assert at[2] - at[0] >= 1.0 and at[3] - at[2] >= 0.95


async def test_after_a_429_nothing_is_sent_until_retry_after(server: BotApiServer) -> None:
    server.fail_next("sendMessage", status=429, retry_after=1)
    pacer = TelegramPacer()
    bot = await paced_bot(server, pacer)
    try:
        with pytest.raises(RetryAfter):  # the caller (outbox, cards) reschedules it
            await bot.send_message(5, "refused")
        await bot.send_message(6, "after the pause")
    finally:
        await bot.shutdown()
    refused, after = server.requests[-2:]
    assert (refused.status, after.status, pacer.refused) == (429, 200, 1)
    assert after.at - refused.at >= 0.95
