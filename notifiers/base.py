"""The Notifier protocol every channel implements, and the two ways a send can fail."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Button:
    text: str
    data: str  # opaque callback data, routed by bot/handlers.py's one dispatcher


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # e.g. "audio/mpeg", "application/pdf", "text/calendar"
    data: bytes


@dataclass(frozen=True)
class OutgoingMessage:
    address: str  # channel-specific: a Telegram chat id, an E.164 number, an email address
    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    subject: str = ""  # email and MMS; localised by the caller
    html: str = ""  # email: an HTML alternative to `text`
    attachments: tuple[Attachment, ...] = ()
    # Our id for this message (the Delivery id): lets a channel correlate replies and reports.
    reference: str = ""


@dataclass(frozen=True)
class Receipt:
    """What the channel gave back on acceptance. `parts` lists one id per piece when the
    channel split the message (concatenated SMS); delivery reports name those ids."""

    message_id: str
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeliveryReport:
    """A channel's later word on a message it accepted (SMS receipt, MM7 report)."""

    channel: str
    message_id: str  # a Receipt.message_id or one of its parts
    delivered: bool  # False: the network gave up (expired, rejected, undeliverable)
    detail: str = ""  # e.g. "DELIVRD", "UNDELIV", "Retrieved"


@dataclass(frozen=True)
class InboundMessage:
    """Text a person sent us (an MO SMS, an email reply), for the command grammar."""

    channel: str
    sender: str  # E.164 number or email address
    recipient: str  # our number / address it was sent to
    text: str
    received_at: datetime


ReportSink = Callable[[DeliveryReport], Awaitable[None]]
InboundSink = Callable[[InboundMessage], Awaitable[None]]


class TransientError(Exception):
    """Try again later (network, 5xx, throttling); retry_after when the peer said when."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentError(Exception):
    """This address will not take this message (blocked bot, invalid number): do not retry."""


class Notifier(Protocol):
    @property
    def channel(self) -> str:  # a models.vocab.Channel
        ...

    async def send(self, message: OutgoingMessage) -> Receipt: ...


@runtime_checkable
class ManagedNotifier(Notifier, Protocol):
    """A channel with a connection to open and close (SMPP bind, SMTP session)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
