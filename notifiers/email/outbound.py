"""Email channel over SMTP (aiosmtplib): one reused session to the configured relay.

Messages are 7-bit on the wire (RFC 2047 headers, base64/quoted-printable bodies), so any
relay takes them without 8BITMIME or SMTPUTF8. Sends share one connection under a lock; a
session the relay closed while idle is reopened within the send that finds it closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.utils import format_datetime, make_msgid, parseaddr

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPException,
    SMTPRecipientRefused,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from models.settings import ConfigError, SmtpSettings, smtp_cleartext_login
from models.vocab import Channel
from notifiers.base import Attachment, OutgoingMessage, PermanentError, Receipt, TransientError

log = logging.getLogger(__name__)

SECURITY_MODES = ("starttls", "tls", "none")
# ASCII-only output: headers RFC 2047-encoded, non-ASCII bodies base64 or quoted-printable.
WIRE_POLICY = policy.SMTP.clone(cte_type="7bit")
SERVICE_CLOSING = 421  # "closing transmission channel": how relays announce an idle timeout
AUTHENTICATION_REQUIRED = 530

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def mailbox(address: str) -> str:
    """The address as an ASCII addr-spec (IDN domains in punycode), else PermanentError.

    Local parts must be ASCII: this channel does not use SMTPUTF8.
    """
    local, at, domain = address.strip().rpartition("@")
    refused = PermanentError(f"email: not an email address: {address!r}")
    if not at or len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        raise refused
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise refused from exc
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise refused
    return f"{local}@{ascii_domain}"


def _add_attachment(email: EmailMessage, attachment: Attachment) -> None:
    parsed = Message()
    parsed["Content-Type"] = attachment.content_type  # parses "type/subtype; param=value"
    maintype, subtype = parsed.get_content_maintype(), parsed.get_content_subtype()
    if "/" not in attachment.content_type or maintype in {"multipart", "message"}:
        maintype, subtype = "application", "octet-stream"
    params = {key: value for key, value in (parsed.get_params() or [])[1:] if value}
    email.add_attachment(
        attachment.data,
        maintype=maintype,
        subtype=subtype,
        filename=attachment.filename,
        params=params,
    )


def compose(message: OutgoingMessage, recipient: str, settings: SmtpSettings) -> EmailMessage:
    """The MIME message: text/plain, +html as multipart/alternative, +files as multipart/mixed."""
    sender_domain = parseaddr(settings.from_address)[1].rpartition("@")[2] or "localhost"
    email = EmailMessage(policy=WIRE_POLICY)
    email["From"] = settings.from_address
    email["To"] = recipient
    email["Subject"] = " ".join(message.subject.split())  # a stray newline must not fail it
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = make_msgid(domain=sender_domain)
    if settings.reply_to:
        email["Reply-To"] = settings.reply_to
    if message.reference:
        email["X-Frontdesk-Reference"] = message.reference
    email.set_content(message.text)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    for attachment in message.attachments:
        _add_attachment(email, attachment)
    return email


def load_tls_context(ca_file: str) -> ssl.SSLContext:
    """The system's trust store plus `ca_file`; blocking (reads files): run it off the loop."""
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"config key smtp.ca_file: cannot load {ca_file!r}: {exc}") from exc
    return context


def describe(exc: Exception) -> str:
    if isinstance(exc, SMTPResponseException):
        return f"{exc.code} {exc.message}"
    return str(exc) or type(exc).__name__


def classify(exc: Exception) -> TransientError | PermanentError:
    """Map an SMTP failure to the outbox's two outcomes."""
    # Our credentials, not this message: retrying after the operator fixes them works.
    if isinstance(exc, SMTPAuthenticationError):
        return TransientError(
            f"email: relay refused our login ({describe(exc)}); "
            "check smtp.username and smtp.password"
        )
    if isinstance(exc, SMTPResponseException) and exc.code == AUTHENTICATION_REQUIRED:
        return TransientError(
            f"email: relay wants a login ({describe(exc)}); set smtp.username and smtp.password"
        )
    if isinstance(exc, SMTPResponseException):
        what = "recipient refused" if isinstance(exc, SMTPRecipientRefused) else "relay said"
        reason = f"email: {what}: {exc.code} {exc.message}"
        return PermanentError(reason) if 500 <= exc.code < 600 else TransientError(reason)
    if isinstance(exc, SMTPTimeoutError | TimeoutError):
        return TransientError(f"email: relay timed out: {describe(exc)}")
    return TransientError(f"email: {describe(exc)}")


class EmailNotifier:
    channel = Channel.EMAIL

    def __init__(self, settings: SmtpSettings) -> None:
        if settings.security not in SECURITY_MODES:
            raise ConfigError("config key smtp.security: one of starttls, tls, none")
        if problem := smtp_cleartext_login(settings):
            raise ConfigError(problem)  # settings built in code skip load_settings' check
        envelope_sender = parseaddr(settings.from_address)[1]
        if "@" not in envelope_sender:
            raise ConfigError(f"config key smtp.from_address: no address in {envelope_sender!r}")
        self._settings = settings
        self._sender = envelope_sender
        self._lock = asyncio.Lock()  # one SMTP session, one transaction at a time
        self._tls_context: ssl.SSLContext | None = None
        self._smtp = SMTP(
            hostname=settings.host,
            port=settings.port,
            timeout=settings.timeout,
            use_tls=settings.security == "tls",
            start_tls=False,  # done by hand in _connect, so that it can be required
        )

    async def start(self) -> None:
        """Load the trust store now, so that a bad smtp.ca_file stops start-up, not a send."""
        if self._settings.security != "none":
            await self._tls()

    async def stop(self) -> None:
        async with self._lock:
            if self._smtp.is_connected:
                with contextlib.suppress(SMTPException, OSError):
                    await self._smtp.quit()
            self._smtp.close()

    async def send(self, message: OutgoingMessage) -> Receipt:
        recipient = mailbox(message.address)
        email = compose(message, recipient, self._settings)
        payload = email.as_bytes()
        async with self._lock:
            try:
                await self._transfer(recipient, payload)
            except (SMTPException, OSError, ConfigError) as exc:
                raise classify(exc) from exc
            except asyncio.CancelledError:
                self._smtp.close()  # cancelled mid-transaction: the session state is unknown
                raise
        return Receipt(message_id=str(email["Message-ID"]))

    async def _transfer(self, recipient: str, payload: bytes) -> None:
        reused = self._smtp.is_connected
        if not reused:
            await self._connect()
        try:
            await self._envelope(recipient)
        except (SMTPServerDisconnected, SMTPResponseException) as exc:
            closed = isinstance(exc, SMTPServerDisconnected) or exc.code == SERVICE_CLOSING
            if not (reused and closed):
                raise
            # The relay ended our idle session; nothing of this message went out yet.
            log.info("email: relay closed the idle session (%s); reconnecting", describe(exc))
            self._smtp.close()
            await self._connect()
            await self._envelope(recipient)
        try:
            await self._smtp.data(payload)
        except SMTPServerDisconnected as exc:
            # Not resent here: the relay may have queued it before the connection went.
            raise TransientError(
                "email: connection lost after DATA; the relay may or may not have the message"
            ) from exc
        except SMTPResponseException:
            await self._reset()
            raise

    async def _envelope(self, recipient: str) -> None:
        try:
            await self._smtp.mail(self._sender)
            await self._smtp.rcpt(recipient)
        except SMTPResponseException:
            await self._reset()
            raise

    async def _reset(self) -> None:
        """End a refused transaction so the session can carry the next one."""
        if not self._smtp.is_connected:  # e.g. after a 421, aiosmtplib has closed it
            return
        try:
            await self._smtp.rset()
        except (SMTPException, OSError):
            self._smtp.close()

    async def _connect(self) -> None:
        settings = self._settings
        tls_context = await self._tls() if settings.security != "none" else None
        await self._smtp.connect(tls_context=tls_context)
        try:
            if settings.security == "starttls":
                await self._smtp.ehlo()
                if not self._smtp.supports_extension("starttls"):
                    raise TransientError(
                        f"email: {settings.host}:{settings.port} does not offer STARTTLS and "
                        "smtp.security is starttls; not sending credentials or mail in clear"
                    )
                await self._smtp.starttls()
            if settings.username:
                await self._smtp.login(settings.username, settings.password)
        except BaseException:
            self._smtp.close()
            raise
        log.info(
            "email: connected to %s:%s (%s%s)",
            settings.host,
            settings.port,
            settings.security,
            f", as {settings.username}" if settings.username else "",
        )

    async def _tls(self) -> ssl.SSLContext:
        if self._tls_context is None:
            self._tls_context = await asyncio.to_thread(load_tls_context, self._settings.ca_file)
        return self._tls_context
