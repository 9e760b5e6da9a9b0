"""smpplib's client on the event loop: bind in a thread, then every read and write on the
loop, the common PDUs through the struct codec (pdu_codec.py) and the rest through smpplib.

smpplib is synchronous. It connects and binds in a worker thread, with its own blocking
reads and writes. Once bound, the socket turns non-blocking and belongs to the loop: one
recv() takes what has arrived, whole PDUs are cut from it, and submit_sm_resp, deliver_sm,
enquire_link(_resp) and generic_nack are read by pdu_codec (no thread, no hand-over, a
tenth of the CPU of smpplib's parsers or less). Any other PDU, or one of those with
anything unusual in it, is given to smpplib's `read_once` as if it had read it from the
socket: its states, handlers and answers stay in charge there. Writes queued in one turn
of the loop leave in one send(). Sequence numbers come from smpplib's generator.

A request's future is registered under its sequence number before the PDU can leave, so
a fast answer always finds it. `open_link` connects, binds and starts reading;
`Link.request` sends a PDU and waits for its response; `Link.close` unbinds and closes.
What the PDUs mean (submits, receipts, MO text) is the SMS channel's business
(notifiers/sms/channel.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import smpplib.client
import smpplib.exceptions
import smpplib.smpp

from models.settings import SmppSettings
from notifiers.base import TransientError
from notifiers.sms import pdu_codec

log = logging.getLogger(__name__)
# smpplib logs every PDU in hex at DEBUG, the bind with our password in it: keep it quiet.
WIRE_LOGGER = "notifiers.sms.channel.wire"

_MAX_UNREADABLE = 5  # PDUs in a row smpplib cannot parse before we suspect lost framing
_READ_SIZE = 65536

# smpplib's deliver_sm handler: our deliver_sm_resp status, or None to answer later
# (SmppClient.answer_deliver). It gets smpplib's DeliverSM or a pdu_codec.DeliverSm.
DeliverHandler = Callable[..., int | None]


@dataclass(frozen=True, slots=True)
class Encoded:
    """A request PDU already encoded (pdu_codec): what Link.request needs of a PDU."""

    command: str
    sequence: int
    data: bytes


# -- smpplib, bound, on the loop -----------------------------------------------------------


class LockedSequence(smpplib.client.SimpleSequenceGenerator):
    # The bind's thread and then the loop draw from it: never at once, but cheap to be sure.
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def next_sequence(self) -> int:
        with self._lock:
            return int(super().next_sequence())


class SmppClient(smpplib.client.Client):
    """smpplib's client. During the bind (a worker thread) it reads and writes its own way;
    once `write_through` is given a `LoopWriter`, PDUs are written by the loop, and reads
    come from `Link`, which hands smpplib the PDUs the codec leaves to it (`act_on`).
    Responses read by smpplib go to `on_response`."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        super().__init__(
            host,
            port,
            timeout=timeout,
            sequence_generator=LockedSequence(),
            logger_name=WIRE_LOGGER,
            allow_unknown_opt_params=True,
        )
        self.send_lock = threading.Lock()
        self.on_response: Callable[[Any], object] | None = None
        self.unreadable = 0  # PDUs in a row that did not parse
        self._writer: LoopWriter | None = None
        self._inbox = b""  # the PDU smpplib is reading (act_on)
        self._inbox_at = -1  # where in it; -1: smpplib reads the socket (binding)

    def write_through(self, writer: LoopWriter) -> None:
        """From now on PDUs leave through the loop's writer (call it on the loop)."""
        self._writer = writer

    def send_pdu(self, p: Any) -> bool:
        if isinstance(p, Encoded):
            self.send_raw(p.data)
        elif self._writer is None:
            with self.send_lock:
                return bool(super().send_pdu(p))
        else:
            self._writer.write(p.generate())
        return True

    def send_raw(self, data: bytes) -> None:
        if self._writer is None:
            with self.send_lock:
                self._socket.sendall(data)
        else:
            self._writer.write(data)

    def deliver(self, pdu: Any) -> None:
        """A deliver_sm read by the codec, handled as smpplib handles one it read."""
        self._message_received(pdu)

    def _message_received(self, pdu: Any) -> None:
        # smpplib answers every deliver_sm as soon as its handler returns; a None from ours
        # means "answered later", once what the PDU carries is stored.
        status = self.message_received_handler(pdu=pdu)
        if status is not None:
            self.answer_deliver(pdu.sequence, status)

    def answer_deliver(self, sequence: int, status: int) -> None:
        self.send_raw(pdu_codec.deliver_sm_resp(sequence, status))

    def act_on(self, pdu: bytes) -> None:
        """smpplib reads this whole PDU and acts on it as in its listen() loop."""
        self._inbox, self._inbox_at = pdu, 0
        try:
            self.read_once(auto_send_enquire_link=False)
        finally:
            self._inbox, self._inbox_at = b"", -1

    def read_pdu(self) -> Any:
        pdu = super().read_pdu()
        self.unreadable = 0
        if pdu.is_response():
            if self.on_response is not None:
                self.on_response(pdu)
        elif pdu.command == "unbind":  # the SMSC is leaving; smpplib would not answer
            answer = smpplib.smpp.make_pdu("unbind_resp", client=self)
            answer.sequence = pdu.sequence
            self.send_pdu(answer)
        return pdu

    def _recv_exact(self, exact_size: int) -> bytes:
        if self._inbox_at < 0:  # binding: smpplib's own blocking reads
            return bytes(super()._recv_exact(exact_size))
        start, self._inbox_at = self._inbox_at, self._inbox_at + exact_size
        if exact_size < 0 or self._inbox_at > len(self._inbox):
            raise smpplib.exceptions.PDUError("PDU shorter than its command_length")
        return self._inbox[start : self._inbox_at]

    def set_nodelay(self) -> None:
        # smpplib never does: Nagle + delayed ACK hold each small PDU back ~40 ms.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def socket(self) -> socket.socket:
        return self._socket


class LoopWriter:
    """Writes encoded PDUs from the event loop without blocking it: what is queued in one
    turn of the loop leaves in one send(), and what the socket cannot take yet waits for
    it to become writable."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        lock: threading.Lock,
        on_error: Callable[[], object],
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._lock = lock
        self._on_error = on_error
        self._buffer = bytearray()
        self._flush_soon = False
        self._watching = False  # waiting for the socket to drain
        self._closed = False

    def write(self, data: bytes) -> None:
        if self._closed:
            return
        self._buffer += data
        if not self._flush_soon and not self._watching:
            self._flush_soon = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        if self._closed or not self._buffer:
            return
        try:
            with self._lock:  # never contended: the bind that also takes it is over
                sent = self._sock.send(self._buffer, socket.MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.close()
            self._on_error()
            return
        del self._buffer[:sent]
        if self._buffer and not self._watching:
            self._loop.add_writer(self._fd, self._flush)
            self._watching = True
        elif not self._buffer and self._watching:
            self._loop.remove_writer(self._fd)
            self._watching = False

    def close(self) -> None:
        """Stop writing; call before the socket closes (its fd may be reused)."""
        self._closed = True
        if self._watching:
            self._loop.remove_writer(self._fd)
            self._watching = False


# -- one link ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """A response PDU: its command_status and message_id (as the SMSC wrote it, if any)."""

    status: int
    message_id: bytes | str | None


class Link:
    """One connection and bind: the client, its reads, our requests in flight."""

    def __init__(self, client: SmppClient) -> None:
        self.client = client
        self.pending: dict[int, asyncio.Future[Response]] = {}
        self.lost = asyncio.Event()
        self.writer: LoopWriter | None = None
        self.template: pdu_codec.SubmitTemplate | None = None  # the channel's submit_sm
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd = -1
        self._received = bytearray()  # the start of a PDU not yet whole

    def resolve(self, sequence: int, status: int, message_id: bytes | str | None) -> None:
        future = self.pending.pop(sequence, None)
        if future is not None and not future.done():
            future.set_result(Response(status, message_id))

    def fail(self, reason: str) -> None:
        self.stop_reading()
        self.lost.set()
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(TransientError(reason))

    async def request(self, pdu: Any, timeout: float) -> Response:
        """Send a request PDU (smpplib's or `Encoded`) and wait for its response;
        TransientError on timeout or when the link goes."""
        if self.lost.is_set():
            raise TransientError("sms: link to the SMSC lost")
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.pending[pdu.sequence] = future  # before the PDU leaves: the answer can be fast
        try:
            self.client.send_pdu(pdu)  # written by the loop once this turn is over
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise TransientError(f"sms: no {pdu.command}_resp within {timeout}s") from None
        finally:
            self.pending.pop(pdu.sequence, None)

    async def enquire_link(self, timeout: float) -> None:
        """One enquire_link answered; TransientError if not."""
        await self.request(smpplib.smpp.make_pdu("enquire_link", client=self.client), timeout)

    async def close(self, unbind_timeout: float) -> None:
        """Unbind (unless lost), then stop reading and writing and close."""
        try:
            if not self.lost.is_set():
                with contextlib.suppress(TransientError):
                    unbind = smpplib.smpp.make_pdu("unbind", client=self.client)
                    await self.request(unbind, unbind_timeout)
        finally:
            # Both watchers go before the socket closes: its fd may be reused at once.
            if self.writer is not None:
                self.writer.close()
            self.fail("link to the SMSC closed")
            _disconnect_quietly(self.client)

    # -- reading ---------------------------------------------------------------------------

    def start_reading(self, loop: asyncio.AbstractEventLoop) -> None:
        sock = self.client.socket
        sock.setblocking(False)
        self._loop, self._fd = loop, sock.fileno()
        loop.add_reader(self._fd, self._readable)

    def stop_reading(self) -> None:
        if self._loop is not None and self._fd >= 0:
            self._loop.remove_reader(self._fd)
        self._fd = -1

    def _readable(self) -> None:
        data: bytes | bytearray
        try:
            data = self.client.socket.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.fail("link to the SMSC lost")
            return
        if self._received:
            self._received += data
            data = self._received
        try:
            pdus, used = pdu_codec.split(data)
        except ValueError as exc:
            log.error("sms: SMSC stream cannot be framed (%s); dropping the link", exc)
            self.fail("SMSC stream unreadable")
            return
        self._received = bytearray(data[used:])
        for pdu in pdus:
            if self._fd < 0:  # a PDU before this one ended the link
                return
            self.received(pdu)

    def received(self, pdu: bytes) -> None:
        """Act on one whole PDU: the codec's fast path, or smpplib."""
        command_id, status, sequence = pdu_codec.HEADER.unpack_from(pdu)[1:]
        try:
            if self._fast(pdu, command_id, status, sequence):
                self.client.unreadable = 0
                return
        except Exception:
            log.exception("sms: handling what the SMSC sent failed")
            return
        try:
            self.client.act_on(pdu)
        except Exception:  # smpplib could not parse or act on it; it was read whole
            self.client.unreadable += 1
            log.exception("sms: unreadable PDU from the SMSC, skipped")
            if self.client.unreadable >= _MAX_UNREADABLE:
                self.fail("SMSC stream unreadable")

    def _fast(self, pdu: bytes, command_id: int, status: int, sequence: int) -> bool:
        """True when the codec read the PDU and it was acted on."""
        if command_id == pdu_codec.SUBMIT_SM_RESP:
            plain, message_id = pdu_codec.submit_sm_resp_id(pdu)
            if plain:
                self.resolve(sequence, status, message_id)
            return plain
        if command_id == pdu_codec.DELIVER_SM:
            deliver = pdu_codec.parse_deliver_sm(pdu)
            if deliver is not None:
                self.client.deliver(deliver)
            return deliver is not None
        if len(pdu) != pdu_codec.HEADER_SIZE:
            return False
        if command_id in (pdu_codec.ENQUIRE_LINK_RESP, pdu_codec.GENERIC_NACK):
            self.resolve(sequence, status, None)
            return True
        if command_id == pdu_codec.ENQUIRE_LINK:
            self.client.send_raw(pdu_codec.enquire_link_resp(sequence))
            return True
        return False


async def open_link(settings: SmppSettings, on_deliver: DeliverHandler) -> Link:
    """Connect and bind (in a worker thread), then read on the loop. `on_deliver` is called
    on the loop as `on_deliver(pdu=..., client=...)`."""
    loop = asyncio.get_running_loop()
    connecting = loop.run_in_executor(None, connect_and_bind, settings)
    try:
        client = await asyncio.shield(connecting)
    except asyncio.CancelledError:  # stopping: close it whenever the thread is done
        connecting.add_done_callback(_close_once_connected)
        raise
    return attach(client, on_deliver)


def attach(client: SmppClient, on_deliver: DeliverHandler) -> Link:
    """A link reading and writing a bound client's socket on the running loop."""
    loop = asyncio.get_running_loop()
    link = Link(client)
    client.on_response = lambda pdu: link.resolve(*_summary(pdu))
    client.set_message_received_handler(functools.partial(on_deliver, client=client))
    client.set_message_sent_handler(lambda pdu: None)  # answered through on_response
    client.set_error_pdu_handler(lambda pdu: None)  # ... errors too, with their status
    link.writer = LoopWriter(
        loop, client.socket, client.send_lock, lambda: link.fail("write failed")
    )
    client.write_through(link.writer)
    link.start_reading(loop)
    return link


def connect_and_bind(settings: SmppSettings) -> SmppClient:
    """Blocking: runs in a worker thread."""
    s = settings
    client = SmppClient(s.host, s.port, timeout=s.response_timeout)
    try:
        client.connect()
        client.set_nodelay()
        client.bind_transceiver(
            system_id=s.system_id, password=s.password, system_type=s.system_type
        )
    except smpplib.exceptions.PDUError as exc:
        client.disconnect()
        status = exc.args[1] if len(exc.args) > 1 else -1
        raise ConnectionError(f"bind refused, command_status 0x{status:02X}") from None
    except BaseException:
        client.disconnect()
        raise
    return client


def _summary(pdu: Any) -> tuple[int, int, bytes | str | None]:
    return pdu.sequence, pdu.status, getattr(pdu, "message_id", None)


def _close_once_connected(connecting: asyncio.Future[SmppClient]) -> None:
    if not connecting.cancelled() and connecting.exception() is None:
        _disconnect_quietly(connecting.result())


def _disconnect_quietly(client: SmppClient) -> None:
    with contextlib.suppress(Exception):
        client.disconnect()
