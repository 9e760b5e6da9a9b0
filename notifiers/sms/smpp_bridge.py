"""smpplib's blocking client bridged to asyncio: the threads, the writes, the requests.

smpplib is synchronous. Its client gets a reader thread (`listen()`, which also answers
deliver_sm); the event loop writes, without blocking, everything queued in one turn in
one send(), under a send lock, with sequence numbers from a locked generator. What the
reader learns reaches the loop through `call_soon_threadsafe`, a batch per wake-up.

A request's future is registered under its sequence number before the PDU can leave, so
a fast answer always finds it. `open_link` connects and binds in a worker thread and
starts the reader; `Link.request` sends a PDU and waits for its response; `Link.close`
unbinds, stops the reader and closes. What the PDUs mean (submits, receipts, MO text)
is the SMS channel's business (notifiers/sms/channel.py).
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
from typing import Any, BinaryIO

import smpplib.client
import smpplib.exceptions
import smpplib.smpp

from models.settings import SmppSettings
from notifiers.base import TransientError

log = logging.getLogger(__name__)
# smpplib logs every PDU in hex at DEBUG, the bind with our password in it: keep it quiet.
WIRE_LOGGER = "notifiers.sms.channel.wire"

_MAX_UNREADABLE = 5  # PDUs in a row smpplib cannot parse before we suspect lost framing
_READ_BUFFER = 65536

# smpplib's deliver_sm handler, on the reader thread: our deliver_sm_resp status, or None
# to answer later (SmppClient.answer_deliver).
DeliverHandler = Callable[..., int | None]


# -- smpplib, made safe for two threads ----------------------------------------------------


class LockedSequence(smpplib.client.SimpleSequenceGenerator):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def next_sequence(self) -> int:
        with self._lock:
            return int(super().next_sequence())


class SmppClient(smpplib.client.Client):
    """smpplib's client shared by the event loop and a reader thread.

    Writes hold the send lock. During the bind they go straight out (smpplib's own way);
    once `write_through` is given a `LoopWriter`, every PDU is encoded by its sender and
    written by the loop, the reader's deliver_sm_resp handed over through `LoopCalls`.
    Responses go to `on_response`, on the reader thread.
    """

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
        self._rfile: BinaryIO | None = None
        self._writer: LoopWriter | None = None
        self._calls: LoopCalls | None = None
        self._loop_thread = 0

    def write_through(self, writer: LoopWriter, calls: LoopCalls) -> None:
        """From now on PDUs leave through the loop's writer (call it on the loop)."""
        self._writer, self._calls = writer, calls
        self._loop_thread = threading.get_ident()

    def send_pdu(self, p: Any) -> bool:
        if self._writer is None or self._calls is None:
            with self.send_lock:
                return bool(super().send_pdu(p))
        if threading.get_ident() == self._loop_thread:
            self._writer.write(p.generate())
        else:
            self._calls.call(self._writer.write, p.generate())
        return True

    def _message_received(self, pdu: Any) -> None:
        # smpplib answers every deliver_sm as soon as its handler returns; a None from ours
        # means "answered later", once what the PDU carries is stored.
        status = self.message_received_handler(pdu=pdu)
        if status is not None:
            self.answer_deliver(pdu.sequence, status)

    def answer_deliver(self, sequence: int, status: int) -> None:
        answer = smpplib.smpp.make_pdu("deliver_sm_resp", client=self, status=status)
        answer.sequence = sequence
        self.send_pdu(answer)

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

    def set_nodelay(self) -> None:
        # smpplib never does: Nagle + delayed ACK hold each small PDU back ~40 ms.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def block_reads(self) -> None:
        # The reader waits for the next PDU however long; a timeout mid-PDU would lose it.
        # Buffered: one recv() takes many PDUs under load, not two per PDU.
        self._socket.settimeout(None)
        self._rfile = self._socket.makefile("rb", buffering=_READ_BUFFER)

    def _recv_exact(self, exact_size: int) -> bytes:
        if self._rfile is None:  # binding: smpplib's own reads
            return bytes(super()._recv_exact(exact_size))
        try:
            data = self._rfile.read(exact_size)
        except (OSError, ValueError) as exc:  # ValueError: the file was closed
            raise smpplib.exceptions.ConnectionError() from exc
        if len(data) < exact_size:
            raise smpplib.exceptions.ConnectionError()
        return bytes(data)

    @property
    def socket(self) -> socket.socket:
        return self._socket

    def shutdown(self) -> None:
        """Wake the reader out of recv(): it sees the end of the stream."""
        with contextlib.suppress(OSError, AttributeError):
            self._socket.shutdown(socket.SHUT_RDWR)

    def disconnect(self) -> None:
        if self._rfile is not None:  # it holds the socket open too
            self._rfile.close()
            self._rfile = None
        super().disconnect()


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


class LoopCalls:
    """Calls made on a thread, run on the event loop in order, with one wake-up of the
    loop per batch rather than one per call: under load the reader hands over many
    responses per wake-up."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._calls: list[tuple[Callable[..., object], tuple[Any, ...]]] = []
        self._scheduled = False

    def call(self, callback: Callable[..., object], *args: Any) -> bool:
        """Queue callback(*args) for the loop; False when the loop is gone."""
        with self._lock:
            self._calls.append((callback, args))
            if self._scheduled:
                return True
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._run)
        except RuntimeError:  # loop closed: the process is going down
            return False
        return True

    def _run(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, []
            self._scheduled = False
        for callback, args in calls:
            try:
                callback(*args)
            except Exception:
                log.exception("sms: handling what the SMSC sent failed")


# -- one link ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """A response PDU: its command_status and message_id (as the SMSC wrote it, if any)."""

    status: int
    message_id: bytes | str | None


class Link:
    """One connection and bind: the client, its threads, our requests in flight."""

    def __init__(self, client: SmppClient) -> None:
        self.client = client
        self.pending: dict[int, asyncio.Future[Response]] = {}
        self.lost = asyncio.Event()
        self.reader: threading.Thread | None = None
        self.writer: LoopWriter | None = None
        self.prototype: Any = None  # the channel's: a PDU it copies for each request

    def resolve(self, sequence: int, status: int, message_id: bytes | str | None) -> None:
        future = self.pending.pop(sequence, None)
        if future is not None and not future.done():
            future.set_result(Response(status, message_id))

    def fail(self, reason: str) -> None:
        self.lost.set()
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(TransientError(reason))

    async def request(self, pdu: Any, timeout: float) -> Response:
        """Send a request PDU and wait for its response; TransientError on timeout or when
        the link goes."""
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

    async def close(self, unbind_timeout: float, join_timeout: float) -> None:
        """Unbind (unless lost), wake the reader and let it finish, then close."""
        try:
            if not self.lost.is_set():
                with contextlib.suppress(TransientError):
                    unbind = smpplib.smpp.make_pdu("unbind", client=self.client)
                    await self.request(unbind, unbind_timeout)
        finally:
            # The reader owns the socket's read side: wake it, let it finish, then close.
            if self.writer is not None:
                self.writer.close()
            self.client.shutdown()
            if self.reader is not None:
                await asyncio.to_thread(self.reader.join, join_timeout)
            self.fail("link to the SMSC closed")
            _disconnect_quietly(self.client)

    def _read_until_closed(self, calls: LoopCalls) -> None:
        """The reader thread: smpplib's listen() until the connection ends."""
        reason = "link to the SMSC lost"
        while True:
            try:
                self.client.listen(auto_send_enquire_link=False)
            except (smpplib.exceptions.ConnectionError, OSError):
                break
            except Exception:  # smpplib could not parse a PDU; it was read whole
                self.client.unreadable += 1
                log.exception("sms: unreadable PDU from the SMSC, skipped")
                if self.client.unreadable >= _MAX_UNREADABLE:
                    reason = "SMSC stream unreadable"
                    break
        calls.call(self.fail, reason)


async def open_link(
    settings: SmppSettings,
    calls: LoopCalls,
    on_deliver: DeliverHandler,
) -> Link:
    """Connect and bind (in a worker thread), then start the reader thread. `on_deliver`
    is called on the reader thread as `on_deliver(pdu=..., client=...)`."""
    loop = asyncio.get_running_loop()
    connecting = loop.run_in_executor(None, connect_and_bind, settings)
    try:
        client = await asyncio.shield(connecting)
    except asyncio.CancelledError:  # stopping: close it whenever the thread is done
        connecting.add_done_callback(_close_once_connected)
        raise
    link = Link(client)
    client.on_response = lambda pdu: calls.call(link.resolve, *_summary(pdu))
    client.set_message_received_handler(functools.partial(on_deliver, client=client))
    client.set_message_sent_handler(lambda pdu: None)  # answered through on_response
    client.set_error_pdu_handler(lambda pdu: None)  # ... errors too, with their status
    link.writer = LoopWriter(
        loop, client.socket, client.send_lock, lambda: link.fail("write failed")
    )
    client.write_through(link.writer, calls)
    link.reader = threading.Thread(
        target=link._read_until_closed, args=(calls,), name="smpp-reader", daemon=True
    )
    link.reader.start()
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
        client.block_reads()
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
