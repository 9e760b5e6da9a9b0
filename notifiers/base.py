"""The Notifier protocol every channel implements, and the two ways a send can fail."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Button:
    text: str
    data: str  # opaque callback data, routed by bot/handlers.py's one dispatcher


@dataclass(frozen=True)
class OutgoingMessage:
    address: str  # channel-specific: a Telegram chat id, an E.164 number, an email address
    text: str
    buttons: list[list[Button]] = field(default_factory=list)


@dataclass(frozen=True)
class Receipt:
    message_id: str


class TransientError(Exception):
    """Try again later (network, 5xx, throttling); retry_after when the peer said when."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentError(Exception):
    """This address will not take this message (blocked bot, invalid number): do not retry."""


class Notifier(Protocol):
    channel: str

    async def send(self, message: OutgoingMessage) -> Receipt: ...
