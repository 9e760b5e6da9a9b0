"""Telegram's flood limits for the Bot API stand-in (off unless a test or bench asks).

What Telegram documents (Bots FAQ, "My bot is hitting limits"): no more than about 30
messages per second from one bot to different chats; in one chat, no more than one
message per second, short bursts allowed, "but eventually you'll begin receiving 429
errors"; no more than 20 messages per minute to one group. A request over a limit is
answered 429 "Too Many Requests: retry after N" with parameters.retry_after = N.

Modelled strictly where Telegram is vague: the bot-wide limit is a sliding window (never
more than `per_second` accepted in any one second, so a client that sends 30 at once and
30 more a little under a second later is refused), a private chat is a token bucket
(`chat_burst` at once, refilled at `chat_per_second`), a group a sliding minute. Only
requests that put something in a chat count (send*, edit*, copy*, forward*), counted
when they arrive.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

COUNTED = ("send", "edit", "copy", "forward")


@dataclass
class FloodLimits:
    per_second: int = 30  # one bot, all chats together, in any one second
    chat_burst: int = 5  # a private chat: this many at once...
    chat_per_second: float = 1.0  # ...then this many a second
    group_per_minute: int = 20  # a group or channel (negative chat id), in any minute
    refused: int = 0  # 429s answered so far
    _bot: deque[float] = field(default_factory=deque)
    _chats: dict[int, tuple[float, float]] = field(default_factory=dict)  # tokens, when
    _groups: dict[int, deque[float]] = field(default_factory=dict)

    def check(self, method: str, chat_id: object, now: float) -> int | None:
        """None if the request may go (and it is counted), else the retry_after seconds."""
        if not method.lower().startswith(COUNTED) or method.lower() == "sendchataction":
            return None
        wait = _window_wait(self._bot, self.per_second, 1.0, now)
        group = isinstance(chat_id, int) and chat_id < 0
        if group:
            times = self._groups.setdefault(chat_id, deque())  # type: ignore[arg-type]
            wait = max(wait, _window_wait(times, self.group_per_minute, 60.0, now))
        elif isinstance(chat_id, int):
            tokens, then = self._chats.get(chat_id, (float(self.chat_burst), now))
            tokens = min(float(self.chat_burst), tokens + (now - then) * self.chat_per_second)
            if tokens < 1.0:
                wait = max(wait, (1.0 - tokens) / self.chat_per_second)
        if wait > 0:
            self.refused += 1
            return max(1, math.ceil(wait))
        self._bot.append(now)
        if group:
            self._groups[chat_id].append(now)  # type: ignore[index]
        elif isinstance(chat_id, int):
            self._chats[chat_id] = (tokens - 1.0, now)
        return None


def _window_wait(times: deque[float], limit: int, window: float, now: float) -> float:
    """Seconds until one more fits in a sliding window holding `times` (0: now)."""
    while times and times[0] <= now - window:
        times.popleft()
    if len(times) < limit:
        return 0.0
    return times[len(times) - limit] + window - now
