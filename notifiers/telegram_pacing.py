"""Pacing the bot's requests under Telegram's flood limits, so that a burst of alerts is
sent as fast as Telegram takes it and none is refused with 429.

Telegram documents (Bots FAQ): about 30 messages a second from one bot to different
chats; in one chat about one a second, short bursts allowed; 20 a minute to a group. It
does not say how it counts, so the bot-wide and group limits are kept in the strictest
reading, a sliding window measured where Telegram sees the requests: a request takes a
slot before it is sent and gives it back one window after its answer came. Telegram saw
the request between those two instants, so no window of Telegram's can hold more
requests than there are slots, whatever the network delay. A burst therefore goes as
`per_second` at once and as many again a second later: ~30/s sustained, none refused.

A private chat gets a token bucket (`chat_burst` at once, then `chat_per_second`), its
requests one at a time and in order, the bucket refilled from each answer on (the same
reasoning: Telegram counted the request before we had its answer). Only requests naming
a chat are paced (sendMessage, edits, cards...); getUpdates and setMyCommands are not.
After a 429 nothing is sent until its retry_after has passed, and the request fails
(RetryAfter) for its caller to reschedule: the outbox and the cards retry on their own
terms.

This one limiter serves the whole bot (python-telegram-bot's Application, bot/runtime.py)
because Telegram counts the bot's requests together. Several gateways on one bot token
must share the budget: give each `telegram.send_rate` = 30 / instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

JSONDict = dict[str, Any]
Result = bool | JSONDict | list[JSONDict]
PRUNE_AT = 1024  # idle per-chat states are forgotten past this many chats


class Window:
    """At most `limit` requests in any `period` seconds, as the receiver counts them."""

    def __init__(self, limit: int, period: float) -> None:
        self._free = asyncio.Semaphore(limit)
        self._period = period
        self._taken = 0  # slots in use or not yet given back

    @property
    def idle(self) -> bool:
        return self._taken == 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self._free.acquire()
        self._taken += 1
        try:
            yield
        finally:  # answered (or failed): the slot comes back one period later
            asyncio.get_running_loop().call_later(self._period, self._give_back)

    def _give_back(self) -> None:
        self._taken -= 1
        self._free.release()


@dataclass
class _Chat:
    tokens: float
    at: float
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)


class TelegramPacer(BaseRateLimiter[int]):
    def __init__(
        self,
        per_second: float = 30.0,
        chat_burst: int = 3,
        chat_per_second: float = 1.0,
        group_per_minute: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`per_second` <= 0: no bot-wide pacing (per chat and group still apply);
        `chat_per_second` <= 0: no pacing per chat (its requests still go in order)."""
        self._bot = Window(max(int(per_second), 1), 1.0) if per_second > 0 else None
        self._chat_burst, self._chat_rate = chat_burst, chat_per_second
        self._group_limit = group_per_minute
        self._clock = clock
        self._chats: dict[int, _Chat] = {}
        self._groups: dict[int | str, Window] = {}
        self._resume_at = 0.0  # after a 429: nothing is sent before
        self.refused = 0  # 429s seen

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Result:
        chat_id = data.get("chat_id")
        if chat_id is None:
            return await callback(*args, **kwargs)
        with contextlib.suppress(ValueError, TypeError):
            chat_id = int(chat_id)
        chat = self._chat(chat_id) if isinstance(chat_id, int) and chat_id > 0 else None
        async with contextlib.AsyncExitStack() as held:
            await self._after_refusal()
            if chat is not None:  # one request at a time per chat, in order
                await held.enter_async_context(chat.turn)
                if self._chat_rate > 0 and (tokens := self._tokens(chat)) < 1.0:
                    await asyncio.sleep((1.0 - tokens) / self._chat_rate)
            else:  # a group, a channel or an @username
                await held.enter_async_context(self._group(chat_id).slot())
            if self._bot is not None:
                await held.enter_async_context(self._bot.slot())
            tokens = self._tokens(chat) if chat is not None else 0.0
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                self.refused += 1
                self._resume_at = max(self._resume_at, self._clock() + _seconds(exc))
                raise
            finally:
                if chat is not None:  # refilled from the answer on: Telegram saw it by then
                    chat.tokens, chat.at = tokens - 1.0, self._clock()

    def _chat(self, chat_id: int) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            self._prune()
            chat = self._chats[chat_id] = _Chat(float(self._chat_burst), self._clock())
        return chat

    def _tokens(self, chat: _Chat) -> float:
        refill = (self._clock() - chat.at) * self._chat_rate
        return min(float(self._chat_burst), chat.tokens + refill)

    def _group(self, chat_id: int | str) -> Window:
        window = self._groups.get(chat_id)
        if window is None:
            if len(self._groups) > PRUNE_AT:
                self._groups = {k: w for k, w in self._groups.items() if not w.idle}
            window = self._groups[chat_id] = Window(self._group_limit, 60.0)
        return window

    def _prune(self) -> None:
        if len(self._chats) > PRUNE_AT:
            full = float(self._chat_burst)
            self._chats = {
                k: c for k, c in self._chats.items() if c.turn.locked() or self._tokens(c) < full
            }

    async def _after_refusal(self) -> None:
        if (wait := self._resume_at - self._clock()) > 0:
            await asyncio.sleep(wait)


def _seconds(exc: RetryAfter) -> float:
    retry = exc.retry_after
    return float(retry if isinstance(retry, int | float) else retry.total_seconds())
