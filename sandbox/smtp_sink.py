"""A stand-in SMTP relay: aiosmtpd's protocol served in the caller's own event loop.

It speaks SMTP and nothing else, and imports nothing of the product. Tests read what it
accepted (``messages``), how often it was connected to (``connections``) and which AUTH
commands reached it (``auth_attempts``), and choose its faults: a refused recipient, the
next N messages failed with 451, the connection closed after DATA without an answer, DATA
never answered (a hung relay), every open session dropped (optionally after a 421, like a
relay's idle timeout).

TLS ("starttls" or implicit "tls") uses a throwaway CA made by trustme; clients trust it
through the PEM file at ``ca_pem_path``. With ``username`` set, MAIL needs AUTH (PLAIN or
LOGIN) with those credentials; without TLS AUTH is offered in clear, as a careless relay
would, so that a client's refusal to log in there can be observed.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from sandbox.lifecycle import Served

__all__ = ["ReceivedMessage", "SmtpSink", "TlsMode"]

TlsMode = Literal["none", "starttls", "tls"]
LOOPBACK = "127.0.0.1"
SERVER_NAME = "localhost"
TEMPORARY_FAILURE = "451 4.3.0 Temporary local problem, try again later"


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes  # as received after DATA, dot-unstuffed
    message: EmailMessage  # `raw` parsed with email.policy.default
    encrypted: bool  # the session ran under TLS (STARTTLS or implicit)
    login: str | None  # the user it authenticated as, if any


class _Session(SMTP):
    """aiosmtpd's protocol, plus what the sink needs to see and to cut.

    A session ends when aiosmtpd's task for it does, not at connection_lost: after a failed
    STARTTLS handshake aiosmtpd never gets connection_lost and its task waits on a dead
    reader, so the sink ends such sessions itself by cancelling that task.
    """

    def __init__(self, sink: SmtpSink, **options: Any) -> None:
        super().__init__(_Handler(sink), **options)
        self._sink = sink
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._socket_transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._socket_transport is None  # STARTTLS calls this again, with TLS on top
        if first:
            self._socket_transport = transport
        super().connection_made(transport)
        if first and self._handler_coroutine is not None:
            self._handler_coroutine.add_done_callback(self._end)

    def _end(self, task: asyncio.Task[None]) -> None:
        if not self.ended.done():
            self.ended.set_result(None)
        self._sink._session_ended(self)

    async def smtp_AUTH(self, arg: str) -> None:
        # The mechanism only: an initial response would carry the credentials.
        self._sink.auth_attempts.append((arg or "").split(" ")[0].upper())
        await super().smtp_AUTH(arg)

    async def smtp_QUIT(self, arg: str) -> None:
        self._sink.quits += 1
        await super().smtp_QUIT(arg)

    def close_now(self, reply: str | None = None) -> None:
        """Close the connection (after `reply`) and end the session, as smtp_QUIT does."""
        if self.transport is not None:
            if reply is not None and isinstance(self.transport, asyncio.WriteTransport):
                self.transport.write(reply.encode("ascii") + b"\r\n")
            self.transport.close()
        if self._handler_coroutine is not None:
            self._handler_coroutine.cancel()

    def abort(self) -> None:
        """Cut the socket, whatever state TLS is in."""
        if isinstance(self._socket_transport, asyncio.Transport):
            self._socket_transport.abort()


class _Handler:
    """aiosmtpd hooks; the sink's state and faults live on the sink."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, lines: list[str]
    ) -> list[str]:
        session.host_name = hostname  # this hook's duty, per aiosmtpd
        if self._sink.username is None:  # a relay without accounts does not offer AUTH
            lines = [line for line in lines if not line.startswith("250-AUTH")]
        return lines

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        if self._sink.username is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        refusal = self._sink._refused.get(address.lower())
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        sink = self._sink
        if sink._failures_left > 0:
            sink._failures_left -= 1
            return sink._failure_reply
        if sink._stalls_left > 0:
            sink._stalls_left -= 1
            # Never answered; the session's task waits here until its connection is closed.
            await asyncio.get_running_loop().create_future()
        if sink._drops_left > 0:
            sink._drops_left -= 1
            if sink._drop_keeps:
                await sink._record(server, session, envelope)
            assert isinstance(server, _Session)
            server.close_now()
            # Never answered: connection_lost cancels this session's task while it waits.
            await asyncio.get_running_loop().create_future()
        await sink._record(server, session, envelope)
        return f"250 2.0.0 OK: queued as {len(sink.messages)}"


class SmtpSink(Served):
    """An SMTP relay on loopback for one test; use as ``async with SmtpSink() as sink``."""

    host = LOOPBACK

    def __init__(
        self,
        port: int = 0,
        tls: TlsMode = "none",
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.tls: TlsMode = tls
        self.username = username
        self.password = password
        self.messages: list[ReceivedMessage] = []
        self.connections = 0  # TCP connections accepted since start
        self.auth_attempts: list[str] = []  # the mechanism of every AUTH command received
        self.quits = 0  # QUIT commands received
        self.ca_pem_path: str | None = None  # with TLS: the CA to trust, as a PEM file
        self._port = port
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._changed = asyncio.Condition()
        self._workdir: str | None = None
        self._server_tls: ssl.SSLContext | None = None
        self._refused: dict[str, str] = {}
        self._failures_left = 0
        self._failure_reply = TEMPORARY_FAILURE
        self._drops_left = 0
        self._drop_keeps = False
        self._stalls_left = 0
        self._notifiers: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def open_connections(self) -> int:
        return len(self._sessions)

    async def start(self) -> None:
        if self.tls != "none":
            # Key generation and a file write: kept off the loop.
            self._server_tls = await asyncio.to_thread(self._make_certificates)
        self._server = await asyncio.get_running_loop().create_server(
            self._new_session,
            self.host,
            self._port,
            ssl=self._server_tls if self.tls == "tls" else None,
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        sessions = list(self._sessions)
        await self.drop_connections()
        for session in sessions:  # a TLS shutdown the client never answers must not linger
            session.abort()
        await server.wait_closed()
        await asyncio.gather(*self._notifiers)
        if self._workdir is not None:
            await asyncio.to_thread(shutil.rmtree, self._workdir, True)
            self._workdir = None

    # -- faults ----------------------------------------------------------------------------

    def reject_recipient(
        self, address: str, reply: str = "550 5.1.1 Recipient address rejected: User unknown"
    ) -> None:
        """Answer RCPT TO for this address with `reply` (a 5xx or 4xx line)."""
        self._refused[address.lower()] = reply

    def fail_next(self, count: int = 1, reply: str = TEMPORARY_FAILURE) -> None:
        """Answer the end of DATA of the next `count` messages with `reply`, keeping none."""
        self._failures_left = count
        self._failure_reply = reply

    def drop_after_data(self, count: int = 1, keep: bool = False) -> None:
        """Close the connection after the next `count` messages' DATA, answering nothing.

        keep: record the message first (the relay queued it, the answer was lost).
        """
        self._drops_left = count
        self._drop_keeps = keep

    def stall_after_data(self, count: int = 1) -> None:
        """Never answer the end of DATA of the next `count` messages (a hung relay)."""
        self._stalls_left = count

    def close_connections(self, reply: str | None = None) -> None:
        """Start closing every open session, after `reply` if given; returns at once.

        A client that sends right away still believes its session open, as when an idle
        timeout and the next message cross on the wire.
        """
        for session in list(self._sessions):
            session.close_now(reply)

    async def drop_connections(self, reply: str | None = None, timeout: float = 5.0) -> None:
        """Close every open session (after `reply`, e.g. "421 4.4.2 Timeout") and wait."""
        sessions = list(self._sessions)
        self.close_connections(reply)
        if sessions:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(s.ended for s in sessions))

    # -- waiting ---------------------------------------------------------------------------

    async def wait_messages(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMessage]:
        """The first `count` messages accepted, waiting for them if need be."""
        await self.wait_until(lambda: len(self.messages) >= count, timeout)
        return self.messages[:count]

    async def wait_until(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds; rechecked when a message is accepted or a session
        ends."""
        await self._wait_for(predicate, timeout)

    # -- internals -------------------------------------------------------------------------

    def _make_certificates(self) -> ssl.SSLContext:
        authority = trustme.CA()
        certificate = authority.issue_cert(SERVER_NAME, LOOPBACK, "::1")
        self._workdir = tempfile.mkdtemp(prefix="smtp-sink-")
        ca_path = Path(self._workdir) / "ca.pem"
        authority.cert_pem.write_to_path(str(ca_path))
        self.ca_pem_path = str(ca_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(context)
        return context

    def _new_session(self) -> _Session:
        self.connections += 1
        starttls = self.tls == "starttls"
        session = _Session(
            self,
            hostname=SERVER_NAME,  # else aiosmtpd asks the resolver, blocking, per connection
            tls_context=self._server_tls if starttls else None,
            require_starttls=starttls,
            auth_require_tls=starttls,  # implicit TLS is already encrypted; "none" offers it bare
            authenticator=self._authenticate if self.username is not None else None,
            loop=asyncio.get_running_loop(),
        )
        self._sessions.add(session)
        return session

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        granted = (
            isinstance(data, LoginPassword)
            and self.username is not None
            and self.password is not None
            and data.login == self.username.encode()
            and data.password == self.password.encode()
        )
        # handled=False: aiosmtpd then answers a failure with 535 itself.
        return AuthResult(
            success=granted, handled=False, auth_data=self.username if granted else None
        )

    def _session_ended(self, session: _Session) -> None:
        self._sessions.discard(session)
        # connection_lost is synchronous; waiters are woken from a task.
        task = asyncio.get_running_loop().create_task(self._notify())
        self._notifiers.add(task)
        task.add_done_callback(self._notifiers.discard)

    async def _record(self, server: SMTP, session: Session, envelope: Envelope) -> None:
        raw = envelope.original_content or b""
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        transport = server.transport
        encrypted = transport is not None and transport.get_extra_info("ssl_object") is not None
        login = session.auth_data if isinstance(session.auth_data, str) else None
        received = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=raw,
            message=parsed,
            encrypted=encrypted,
            login=login,
        )
        async with self._changed:
            self.messages.append(received)
            self._changed.notify_all()
