"""How updates are processed: different chats at once, one chat's in order.

A chat waiting on a slow PBX (an AMI action answered only at its timeout) must not stall
every other chat, so updates run concurrently. Within one chat they still run one at a
time, in the order Telegram gave them: "closed" then "agent" typed quickly ends in
`agent`, as the subscriber meant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor


class OnePerChat(BaseUpdateProcessor):
    """At most `max_concurrent_updates` updates at once, and one per chat."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}  # updates holding or awaiting each chat's lock

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._waiting[chat.id] = self._waiting.get(chat.id, 0) + 1
        try:
            async with lock:  # FIFO: the chat's updates in the order they arrived
                await coroutine
        finally:
            self._waiting[chat.id] -= 1
            if not self._waiting[chat.id]:  # nobody else: forget the chat
                del self._waiting[chat.id], self._locks[chat.id]

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
