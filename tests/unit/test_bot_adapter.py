"""The Telegram adapter's own duties: updates of different chats at once but one chat's in
order (bot/updates.py), and an error escaping a handler logged and answered (on_error)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from telegram import Chat, Message, Update

from bot.handlers import FAILED, on_error
from bot.updates import OnePerChat
from locales import tr


def _update(update_id: int, chat_id: int) -> Update:
    chat = Chat(id=chat_id, type=Chat.PRIVATE)
    return Update(update_id, message=Message(update_id, datetime.now(UTC), chat, text="status"))


async def test_other_chats_go_on_while_one_chat_waits_and_a_chat_keeps_its_order() -> None:
    processor = OnePerChat(8)
    pbx_answers = asyncio.Event()
    order: list[str] = []

    async def slow(name: str) -> None:
        order.append(f"{name} start")
        await pbx_answers.wait()
        order.append(f"{name} end")

    async def quick(name: str) -> None:
        order.append(name)

    a1 = asyncio.create_task(processor.process_update(_update(1, 10), slow("A1")))
    a2 = asyncio.create_task(processor.process_update(_update(2, 10), quick("A2")))
    b = asyncio.create_task(processor.process_update(_update(3, 20), quick("B")))
    await b  # chat B is done while A's first update still waits
    assert order == ["A1 start", "B"] and not a2.done()
    pbx_answers.set()
    await asyncio.gather(a1, a2)
    assert order == ["A1 start", "B", "A1 end", "A2"]


@dataclass
class Sender:
    language_code: str | None = "ru"


@dataclass
class Said:
    texts: list[str] = field(default_factory=list)

    async def answer(self, text: str | None = None, **_: Any) -> bool:
        self.texts.append(text or "")
        return True

    async def reply_text(self, text: str, **_: Any) -> None:
        self.texts.append(text)


@dataclass
class Broken:
    effective_message: Said | None = None
    callback_query: Said | None = None
    effective_user: Sender = field(default_factory=Sender)


@dataclass
class Context:
    error: Exception


async def test_a_failed_update_is_logged_without_its_text_and_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failed = tr("ru", FAILED)
    message, query = Said(), Said()
    error = RuntimeError("database is locked")
    await on_error(Broken(effective_message=message), cast(Any, Context(error)))
    await on_error(Broken(message, callback_query=query), cast(Any, Context(error)))
    assert message.texts == [failed]  # a button's query is answered, not a new message
    assert query.texts == [failed]
    assert "RuntimeError" in caplog.text and "status" not in caplog.text
    await on_error(None, cast(Any, Context(error)))  # no chat: only logged
