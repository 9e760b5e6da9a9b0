"""One chat waiting on a slow PBX does not stall the others.

Runtime (gateway + bot) against the sandbox AMI and Bot API. Chat A presses "Call back":
its Originate reaches the sandbox AMI, which holds it unanswered. While it is held, chat
B types `status` and gets its reply; only then is A's action answered, and A's button
gets its own answer. The order is checked on events, not on time: B's reply is awaited
while A's action is known to be pending at the PBX.

With updates processed one by one (python-telegram-bot's default) B's reply waits for
A's action to end (at the AMI timeout): the same test then fails, as the strict xfail
case shows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import runtime as bot_runtime
from bot.runtime import Runtime
from gateway.control import admin, callbacks
from locales import tr
from models.database import migrate
from models.db import Call as CallRow
from sandbox.ami_server import AmiServer
from sandbox.telegram_api import BotApiServer, Call
from tests.stack import sandbox_settings

TOKEN = "123456:TEST-concurrent"
CHAT_A, CHAT_B = 5001, 5002
WAIT = 10.0


@dataclass
class Chats:
    ami: AmiServer
    bot: BotApiServer
    call_id: int  # a call of chat A's subscriber


def _to(chat: int, text: str) -> Callable[[Call], bool]:
    return lambda c: (
        c.method == "sendMessage"
        and c.params.get("chat_id") == chat
        and c.params.get("text", "").startswith(text)
    )


def _answer_of(query: dict[str, object]) -> Callable[[Call], bool]:
    query_id = query["id"]
    return lambda c: (
        c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == query_id
    )


@pytest.fixture(
    params=[
        pytest.param(64, id="concurrent"),
        pytest.param(
            0,
            id="one-by-one",
            marks=pytest.mark.xfail(strict=True, reason="B waits for A's PBX action"),
        ),
    ]
)
async def chats(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Chats]:
    monkeypatch.setattr(bot_runtime, "CONCURRENT_UPDATES", request.param)
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot:
        settings = sandbox_settings(tmp_path / "chats.sqlite3", ami, bot, TOKEN)
        await migrate(settings.database.url)
        runtime = Runtime(settings)
        await runtime.start()
        try:
            await ami.wait_logged_in(timeout=WAIT)
            a = await admin.add_subscriber(
                name="A", ddis=["2100501"], language="en", timezone="UTC", mobile="+306944000501"
            )
            b = await admin.add_subscriber(
                name="B", ddis=["2100502"], language="en", timezone="UTC", mobile="+306944000502"
            )
            for chat, created in ((CHAT_A, a), (CHAT_B, b)):
                bot.inject_message(chat, f"/start {created.link_code}")
                await bot.wait_for(_to(chat, "Linked to"), timeout=WAIT)
            call = await CallRow.create(
                linkedid="501.1",
                ddi="2100501",
                subscriber=a.subscriber,
                caller_number="+302101234567",
                started_at=datetime.now(UTC),
            )
            yield Chats(ami, bot, call.id)
        finally:
            await runtime.stop()


async def test_a_chat_waiting_on_the_pbx_does_not_stall_another(chats: Chats) -> None:
    ami, bot = chats.ami, chats.bot
    ami.held.add("originate")
    pressed = bot.inject_callback(CHAT_A, 1, callbacks.call_back(chats.call_id))
    query = pressed["callback_query"]
    await ami.wait_action("Originate", timeout=WAIT)  # A's action is pending at the PBX

    bot.inject_message(CHAT_B, "status")
    status = tr("en", "Calls: {scenario}.", scenario="Our secretary answers")
    await bot.wait_for(_to(CHAT_B, status), timeout=WAIT)
    assert not [c for c in bot.requests if _answer_of(query)(c)], "A was answered before B"

    assert await ami.release() == 1  # the PBX answers A's action at last
    answer = await bot.wait_for(_answer_of(query), timeout=WAIT)
    assert answer.params["text"] == tr(
        "en", "Calling your mobile now; then we connect {caller}.", caller="+302101234567"
    )
