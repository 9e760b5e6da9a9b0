"""The Bot API stand-in's flood limits (sandbox/flood.py): off by default; when on, 429 with
retry_after past 30 messages a second per bot, a private chat's burst, a group's minute."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from sandbox.flood import FloodLimits
from sandbox.telegram_api import BotApiServer

TOKEN = "123456:TEST-token_abc"


def test_the_bot_limit_is_a_sliding_second() -> None:
    limits = FloodLimits(per_second=30)
    assert all(limits.check("sendMessage", 100 + n, 0.0) is None for n in range(30))
    assert limits.check("sendMessage", 200, 0.5) == 1  # 31 within one second
    assert limits.check("sendMessage", 200, 0.99) == 1  # still the same second
    assert limits.check("sendMessage", 200, 1.0) is None  # the first has left the window
    assert limits.refused == 2


def test_only_messages_into_chats_count() -> None:
    limits = FloodLimits(per_second=1)
    assert limits.check("sendMessage", 1, 0.0) is None
    for method in ("getUpdates", "answerCallbackQuery", "sendChatAction", "setMyCommands"):
        assert limits.check(method, 2, 0.1) is None
    assert limits.check("editMessageText", 3, 0.2) == 1


def test_a_private_chat_bursts_then_one_a_second() -> None:
    limits = FloodLimits(chat_burst=3, chat_per_second=1.0)
    assert [limits.check("sendMessage", 7, 0.0) for _ in range(4)] == [None, None, None, 1]
    assert limits.check("sendMessage", 8, 0.0) is None  # another chat is not held up
    assert limits.check("sendMessage", 7, 1.0) is None  # one token back after a second
    assert limits.check("sendMessage", 7, 1.5) == 1


def test_a_group_takes_twenty_a_minute() -> None:
    limits = FloodLimits(group_per_minute=20)
    assert all(limits.check("sendMessage", -100, t / 10) is None for t in range(20))
    assert limits.check("sendMessage", -100, 30.0) == 30  # until the first is a minute old
    assert limits.check("sendMessage", -100, 60.0) is None


@pytest.fixture
async def server() -> AsyncIterator[BotApiServer]:
    async with BotApiServer(TOKEN) as srv:
        yield srv


async def test_past_the_limit_the_answer_is_429_with_retry_after(server: BotApiServer) -> None:
    async with aiohttp.ClientSession() as http:

        async def send(chat: int) -> tuple[int, dict[str, object]]:
            url = f"{server.base_url}{TOKEN}/sendMessage"
            async with http.post(url, json={"chat_id": chat, "text": "hi"}) as resp:
                return resp.status, await resp.json()

        assert (await send(1))[0] == 200 and (await send(2))[0] == 200  # off by default
        server.rate_limit(FloodLimits(per_second=2))
        assert (await send(3))[0] == 200 and (await send(4))[0] == 200
        status, body = await send(5)
    assert status == 429
    assert body == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    assert [c.status for c in server.requests] == [200, 200, 200, 200, 429]
    assert server.flood is not None and server.flood.refused == 1
