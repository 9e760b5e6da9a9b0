"""Replies to our emails, received over SMTP (aiosmtpd), handed to the inbound desk.

Only the first text/plain part matters (the grammar reads its first line, above the
quoted message). The envelope is accepted as soon as the message is stored, so a reply is
never lost to a slow command.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from models.settings import MailInSettings
from models.vocab import Channel
from notifiers.base import InboundMessage

log = logging.getLogger(__name__)

InboundSink = Callable[[InboundMessage], Awaitable[None]]


def reply_text(raw: bytes) -> tuple[str, str]:
    """(sender address, the reply's own text) of a raw email."""
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    sender = parseaddr(str(message.get("From", "")))[1].lower()
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    return sender, str(text)


# What a sender's server is told when something went wrong on our side: never the error
# itself (aiosmtpd's default answer quotes the exception). Temporary, so the reply is
# sent again rather than lost; the details are in our log.
LOCAL_ERROR = "451 4.3.0 Local error in processing; please try again later"


class _Handler:
    def __init__(self, on_inbound: InboundSink) -> None:
        self._on_inbound = on_inbound

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            sender, text = reply_text(raw)
        except Exception as exc:  # a malformed message is refused, not dropped silently
            log.warning("inbound email refused: %s", exc)
            return "550 5.6.0 message could not be read"
        sender = sender or (envelope.mail_from or "").lower()
        recipient = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        message = InboundMessage(Channel.EMAIL, sender, recipient, text, datetime.now(UTC))
        try:
            await self._on_inbound(message)
        except Exception:
            log.exception("inbound email from %s could not be handed on", sender)
            return LOCAL_ERROR
        return "250 OK"

    async def handle_exception(self, error: Exception) -> str:
        """Anything else that fails in a session: logged, answered without detail."""
        log.error("SMTP session failed", exc_info=error)
        return LOCAL_ERROR


class MailIn:
    def __init__(self, settings: MailInSettings, on_inbound: InboundSink) -> None:
        self.settings = settings
        self._handler = _Handler(on_inbound)
        self._server: Any = None
        self.port: int | None = None

    async def start(self) -> None:
        if not self.settings.host:
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self._handler, data_size_limit=self.settings.max_bytes),
            self.settings.host,
            self.settings.port,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("accepting email replies on %s:%s", self.settings.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
