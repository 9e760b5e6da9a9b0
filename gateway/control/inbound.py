"""Inbound text (an MO SMS, later email replies): stored first, then acted on.

Storing comes first so nothing a person sent is lost whatever the command layer does. A
message from a subscriber's registered number counts as acknowledging their open urgent
notifications (a reply is proof they have seen them). The command grammar arrives as one
hook (`on_text`) wired by main.py/bot; the gateway never imports bot. A `screen` given at
construction sees each stored message first and may take it (an end customer's answer to
a reminder): a message it takes goes no further.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from gateway.delivery.notices import Notices
from models.db import InboundMessage, Subscriber
from models.vocab import Channel
from notifiers.base import InboundMessage as Inbound

log = logging.getLogger(__name__)

TextHook = Callable[[InboundMessage], Awaitable[None]]
ScreenHook = Callable[[InboundMessage], Awaitable[bool]]  # True: taken, not a command


async def sender_subscriber(channel: str, sender: str) -> Subscriber | None:
    """The one subscriber whose registered mobile (SMS) or email address the sender is;
    None for anyone else. A forward target never identifies anybody: only
    Subscriber.mobile does, and it is unique. An email address on file for several
    subscribers identifies none of them (which one would the command act on?)."""
    if not sender:
        return None
    column = "email" if channel == Channel.EMAIL else "mobile"  # Subscriber columns
    found = await Subscriber.filter(**{column: sender}).order_by("id").limit(2)
    if len(found) > 1:
        log.warning("inbound %s: %s is on file for several subscribers; none acts", channel, column)
        return None
    return found[0] if found else None


class InboundDesk:
    def __init__(self, notices: Notices, screen: ScreenHook | None = None) -> None:
        self._notices = notices
        self._screen = screen
        self.on_text: TextHook | None = None

    async def receive(self, message: Inbound) -> InboundMessage:
        subscriber = await sender_subscriber(message.channel, message.sender)
        stored = await InboundMessage.create(
            channel=message.channel,
            sender=message.sender,
            recipient=message.recipient,
            text=message.text,
            subscriber=subscriber,
            received_at=message.received_at,
        )
        try:
            await self._act(stored, subscriber)
        except Exception:
            # Stored is what the sender's channel is answered on: acting failing must not
            # make it deliver the message again (it would be stored twice).
            log.exception("inbound %s #%s kept; acting on it failed", message.channel, stored.id)
        return stored

    async def _act(self, stored: InboundMessage, subscriber: Subscriber | None) -> None:
        if self._screen is not None and await self._screen(stored):
            return
        if subscriber is None:
            # Unknown senders are kept for the admin but tell them nothing about anyone.
            log.info("inbound %s from an unknown sender kept as #%s", stored.channel, stored.id)
        else:
            await self._notices.acknowledge(subscriber_id=subscriber.id)
        if self.on_text is not None:
            await self.on_text(stored)
