"""A stand-in SMSC speaking SMPP 3.4 over TCP: binds, submits, receipts, MO, faults.

It accepts binds (transmitter, receiver, transceiver), answers submit_sm with message ids,
reassembles concatenated messages (UDH IE 0x00/0x08 or SAR TLVs) into `messages`, sends
delivery receipts as real SMSCs do (the `id:... stat:...` text and the receipted_message_id
and message_state TLVs), and delivers MO text a test injects. Fault modes are chosen per
test. The PDU codec and the GSM 03.38 table are its own, on purpose: it knows nothing of
the product, so it checks the product's encoding instead of sharing its mistakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from sandbox.lifecycle import Served

log = logging.getLogger(__name__)

# Command ids (SMPP 3.4, 5.1.2.1); a response is its request's id with the top bit set.
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
BIND_TRANSCEIVER = 0x00000009
ENQUIRE_LINK = 0x00000015
RESPONSE = 0x80000000

# command_status values (5.1.3).
ESME_ROK = 0x00
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RALYBND = 0x05
ESME_RINVSRCADR = 0x0A
ESME_RINVDSTADR = 0x0B
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RMSGQFUL = 0x14
ESME_RX_T_APPN = 0x64  # an ESME's temporary error for a deliver_sm: deliver it again
ESME_RTHROTTLED = 0x58

# Optional parameters (TLVs, 5.3.2).
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F
TLV_SC_INTERFACE_VERSION = 0x0210
TLV_MESSAGE_PAYLOAD = 0x0424
TLV_MESSAGE_STATE = 0x0427

ESM_UDHI = 0x40
ESM_DELIVERY_RECEIPT = 0x04
GSM = 0x00
UCS2 = 0x08
MESSAGE_STATES = {
    "ENROUTE": 1,
    "DELIVRD": 2,
    "EXPIRED": 3,
    "DELETED": 4,
    "UNDELIV": 5,
    "ACCEPTD": 6,
    "UNKNOWN": 7,
    "REJECTD": 8,
}
HEADER = struct.Struct(">IIII")
MAX_PDU = 65536  # longer command_length: garbage, not a PDU
SYSTEM_ID = "SANDBOX"
_T = TypeVar("_T")


# -- PDU codec -----------------------------------------------------------------------------


class MalformedPdu(ValueError):
    pass


def encode_pdu(command_id: int, status: int, sequence: int, body: bytes = b"") -> bytes:
    return HEADER.pack(HEADER.size + len(body), command_id, status, sequence) + body


def cstring(value: str) -> bytes:
    return value.encode("latin-1") + b"\0"


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">HH", tag, len(value)) + value


class BodyReader:
    """Reads the fields of a PDU body; MalformedPdu instead of reading past its end."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.pos = 0

    def cstring(self, max_size: int) -> str:
        end = self.body.find(b"\0", self.pos, self.pos + max_size)
        if end < 0:
            raise MalformedPdu(f"C-string without NUL within {max_size} octets at {self.pos}")
        value = self.body[self.pos : end].decode("latin-1")
        self.pos = end + 1
        return value

    def octets(self, size: int) -> bytes:
        if self.pos + size > len(self.body):
            raise MalformedPdu(f"{size} octets wanted at {self.pos}, body is {len(self.body)}")
        value = self.body[self.pos : self.pos + size]
        self.pos += size
        return value

    def byte(self) -> int:
        return self.octets(1)[0]

    def tlvs(self) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        while self.pos < len(self.body):
            tag, size = struct.unpack(">HH", self.octets(4))
            found[tag] = self.octets(size)
        return found


@dataclass(frozen=True)
class Bind:
    system_id: str
    password: str
    system_type: str

    @classmethod
    def parse(cls, body: bytes) -> Bind:
        r = BodyReader(body)
        bind = cls(r.cstring(16), r.cstring(9), r.cstring(13))
        r.octets(3)  # interface_version, addr_ton, addr_npi
        r.cstring(41)  # address_range
        return bind


@dataclass(frozen=True)
class ShortMessage:
    """The body shared by submit_sm and deliver_sm (4.4.1, 4.6.1)."""

    source: str
    destination: str
    short_message: bytes = b""
    esm_class: int = 0
    data_coding: int = GSM
    registered_delivery: int = 0
    source_ton: int = 1
    source_npi: int = 1
    dest_ton: int = 1
    dest_npi: int = 1
    service_type: str = ""
    protocol_id: int = 0
    priority: int = 0
    tlvs: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def parse(cls, body: bytes) -> ShortMessage:
        r = BodyReader(body)
        service_type = r.cstring(6)
        source_ton, source_npi = r.byte(), r.byte()
        source = r.cstring(21)
        dest_ton, dest_npi = r.byte(), r.byte()
        destination = r.cstring(21)
        esm_class, protocol_id, priority = r.byte(), r.byte(), r.byte()
        r.cstring(17)  # schedule_delivery_time
        r.cstring(17)  # validity_period
        registered_delivery = r.byte()
        r.byte()  # replace_if_present_flag
        data_coding = r.byte()
        r.byte()  # sm_default_msg_id
        short_message = r.octets(r.byte())
        return cls(
            source=source,
            destination=destination,
            short_message=short_message,
            esm_class=esm_class,
            data_coding=data_coding,
            registered_delivery=registered_delivery,
            source_ton=source_ton,
            source_npi=source_npi,
            dest_ton=dest_ton,
            dest_npi=dest_npi,
            service_type=service_type,
            protocol_id=protocol_id,
            priority=priority,
            tlvs=r.tlvs(),
        )

    def encode(self) -> bytes:
        return b"".join(
            (
                cstring(self.service_type),
                bytes((self.source_ton, self.source_npi)),
                cstring(self.source),
                bytes((self.dest_ton, self.dest_npi)),
                cstring(self.destination),
                bytes((self.esm_class, self.protocol_id, self.priority)),
                b"\0\0",  # schedule_delivery_time, validity_period
                bytes((self.registered_delivery, 0, self.data_coding, 0)),
                bytes((len(self.short_message),)),
                self.short_message,
                *(tlv(tag, value) for tag, value in self.tlvs.items()),
            )
        )


# -- text ----------------------------------------------------------------------------------

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXT_CODE = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D}
_EXT_CODE |= {"]": 0x3E, "|": 0x40, "€": 0x65}
_EXT_CHAR = {code: ch for ch, code in _EXT_CODE.items()}


def gsm_encode(text: str) -> bytes | None:
    """Septets, one per octet; None when a character is not in the alphabet."""
    out = bytearray()
    for ch in text:
        if ch in _EXT_CODE:
            out += bytes((0x1B, _EXT_CODE[ch]))
        elif ch != "\x1b" and (code := GSM_BASIC.find(ch)) >= 0:
            out.append(code)
        else:
            return None
    return bytes(out)


def gsm_decode(septets: bytes) -> str:
    out, escaped = [], False
    for value in septets:
        if escaped:  # ESC ESC (another table) and unknown codes read as a space (23.038)
            out.append(_EXT_CHAR.get(value, " "))
            escaped = False
        elif value == 0x1B:
            escaped = True
        else:
            out.append(GSM_BASIC[value] if value < 0x80 else "\ufffd")
    return "".join(out)


def decode_text(data_coding: int, payload: bytes) -> str:
    if data_coding == UCS2:
        return payload.decode("utf-16-be", errors="replace")
    if data_coding == GSM:
        return gsm_decode(payload)
    return payload.decode("latin-1")


def parse_udh(short_message: bytes) -> tuple[tuple[int, int, int] | None, bytes]:
    """((reference, total, number) or None, payload) of a short_message with a UDH."""
    if not short_message:
        return None, b""
    size = short_message[0]
    header, payload = short_message[1 : 1 + size], short_message[1 + size :]
    concat, pos = None, 0
    while pos + 2 <= len(header):
        ie, length = header[pos], header[pos + 1]
        data = header[pos + 2 : pos + 2 + length]
        if ie == 0x00 and length == 3 and len(data) == 3:
            concat = (data[0], data[1], data[2])
        elif ie == 0x08 and length == 4 and len(data) == 4:
            concat = (int.from_bytes(data[:2], "big"), data[2], data[3])
        pos += 2 + length
    return concat, payload


def split_text(text: str) -> tuple[int, list[bytes]]:
    """(data_coding, payload of each part) for MO: GSM if it fits, else UCS-2; escape and
    surrogate pairs kept whole."""
    gsm = gsm_encode(text)
    if gsm is not None and len(gsm) <= 160:
        return GSM, [gsm]
    if gsm is None and len(text.encode("utf-16-be")) <= 140:
        return UCS2, [text.encode("utf-16-be")]
    coding, limit = (GSM, 153) if gsm is not None else (UCS2, 134)
    parts, current = [], b""
    for ch in text:
        unit = gsm_encode(ch) if coding == GSM else ch.encode("utf-16-be")
        assert unit is not None
        if len(current) + len(unit) > limit:
            parts.append(current)
            current = b""
        current += unit
    return coding, [*parts, current]


# -- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitRecord:
    """One submit_sm as received, and what the SMSC answered (status None: never)."""

    sequence: int
    sm: ShortMessage
    status: int | None
    message_id: str


@dataclass(frozen=True)
class MessageRecord:
    """A whole message, its parts reassembled."""

    source: str
    destination: str
    text: str
    data_coding: int
    parts: int
    part_ids: tuple[str, ...]


@dataclass(eq=False)
class _Session:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    bound_as: int | None = None  # the bind command id
    system_id: str = ""
    responses: dict[int, asyncio.Future[int]] = field(default_factory=dict)

    @property
    def can_transmit(self) -> bool:
        return self.bound_as in (BIND_TRANSMITTER, BIND_TRANSCEIVER)

    @property
    def can_receive(self) -> bool:
        return self.bound_as in (BIND_RECEIVER, BIND_TRANSCEIVER)

    def send(self, command_id: int, status: int, sequence: int, body: bytes = b"") -> None:
        if not self.writer.is_closing():
            self.writer.write(encode_pdu(command_id, status, sequence, body))


# -- the server ----------------------------------------------------------------------------


class SmscServer(Served):
    """An SMSC on 127.0.0.1 for tests, the demo and benchmarks; see the module docstring."""

    def __init__(
        self,
        system_id: str = "frontdesk",
        password: str = "secret",
        host: str = "127.0.0.1",
        port: int = 0,
        receipt_delay: float = 0.0,
        submit_latency: float = 0.0,
    ) -> None:
        self.system_id = system_id  # empty: any system_id binds
        self.password = password
        self.host = host
        self.receipt_delay = receipt_delay  # seconds from submit_sm_resp to the receipt
        # Seconds before each submit_sm_resp: a real SMSC's processing and network delay.
        self.submit_latency = submit_latency
        self.receipt_tlvs = True  # False: receipts carry only the text, as some SMSCs do
        self.receipts = True  # False: no receipts at all, whatever the submits ask
        self.submits: list[SubmitRecord] = []
        self.messages: list[MessageRecord] = []
        self.receipts_sent = 0
        self.binds = 0  # successful binds since creation
        self.unbinds = 0
        self.enquire_links = 0
        self.max_in_flight = 0  # most submits held unanswered at once (hold_responses)
        self.mo_statuses: list[int] = []  # every deliver_sm_resp status for MO text
        self.mo_retries = 0  # redeliveries of an MO part answered with a temporary error
        self.mo_retry_delay = 0.05  # seconds between them
        self._port = port
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._jobs: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._changed = asyncio.Condition()
        self._ids = itertools.count(0x3E8A0001)
        self._sequences = itertools.count(1)
        self._references = itertools.count(1)
        self._partial: dict[tuple[str, str, int, int], dict[int, tuple[str, bytes]]] = {}
        self._undelivered: deque[ShortMessage] = deque()  # receipts waiting for a receiver
        # Fault modes: how many of the next submits get each treatment.
        self._swallow = 0
        self._rejects: deque[int] = deque()
        self._receipt_stats: dict[str, str] = {}
        self._holding = False
        self._hung = False
        self._held: list[tuple[_Session, bytes, ShortMessage | None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def bound(self) -> int:
        """Sessions bound right now."""
        return sum(s.bound_as is not None for s in self._sessions)

    @property
    def in_flight(self) -> int:
        """Submits received and held unanswered right now."""
        return len(self._held)

    async def start(self) -> None:
        """Listen (again, on the same port after a stop)."""
        self._server = await asyncio.start_server(self._serve, self.host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every connection and stop listening: an outage. Records are kept."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await self.drop_link()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        await server.wait_closed()

    async def drop_link(self) -> None:
        """Close every connection at once, without unbind (a crash, a cut cable)."""
        for session in list(self._sessions):
            session.writer.transport.abort()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    # -- fault modes -----------------------------------------------------------------------

    def reject(self, status: int, count: int = 1) -> None:
        """Answer the next `count` submits with this command_status (e.g. 0x0B)."""
        self._rejects.extend([status] * count)

    def throttle(self, count: int = 1) -> None:
        """Answer the next `count` submits with ESME_RTHROTTLED."""
        self.reject(ESME_RTHROTTLED, count)

    def no_response(self, count: int = 1) -> None:
        """Swallow the next `count` submits: recorded, never answered."""
        self._swallow += count

    def fail_receipts(self, destination: str, stat: str = "UNDELIV") -> None:
        """Receipts for this destination say `stat` (UNDELIV, EXPIRED, REJECTD...)."""
        self._receipt_stats[destination] = stat

    def hang(self) -> None:
        """Read every PDU and answer none (binds and enquire_links included), the TCP
        connections up: a hung SMSC. resume() ends it."""
        self._hung = True

    def resume(self) -> None:
        self._hung = False

    def hold_responses(self) -> None:
        """Keep submit_sm_resp back until release_responses(): submits pile up in flight."""
        self._holding = True

    def release_responses(self) -> None:
        """Send every held submit_sm_resp and answer at once from now on."""
        self._holding = False
        held, self._held = self._held, []
        for answer in held:
            self._answer(*answer)
        self._notify_soon()

    # -- MO --------------------------------------------------------------------------------

    async def inject_mo(
        self,
        source: str,
        destination: str,
        text: str,
        *,
        sar: bool = False,
        timeout: float = 5.0,
    ) -> list[int]:
        """Deliver text from a handset to a bound receiver, concatenated if long (UDH, or
        SAR TLVs with sar=True); the deliver_sm_resp statuses."""
        session = self._receiver()
        if session is None:
            raise RuntimeError("no receiver is bound")
        coding, payloads = split_text(text)
        reference = next(self._references) % 256
        statuses = []
        for number, payload in enumerate(payloads, start=1):
            esm_class, tlvs, udh = 0, {}, b""
            if len(payloads) > 1 and sar:
                tlvs = {
                    TLV_SAR_MSG_REF_NUM: reference.to_bytes(2, "big"),
                    TLV_SAR_TOTAL_SEGMENTS: bytes((len(payloads),)),
                    TLV_SAR_SEGMENT_SEQNUM: bytes((number,)),
                }
            elif len(payloads) > 1:
                esm_class, udh = ESM_UDHI, bytes((5, 0x00, 3, reference, len(payloads), number))
            sm = ShortMessage(source, destination, udh + payload, esm_class, coding, tlvs=tlvs)
            statuses += await self._deliver_until_taken(session, sm, timeout)
        return statuses

    async def _deliver_until_taken(
        self, session: _Session, sm: ShortMessage, timeout: float
    ) -> list[int]:
        """deliver_sm, again after mo_retry_delay while the answer is a temporary error (up
        to mo_retries times), as a real SMSC retries; every deliver_sm_resp status."""
        statuses: list[int] = []
        while True:
            status = await asyncio.wait_for(self._deliver(session, sm), timeout)
            statuses.append(status)
            self.mo_statuses.append(status)
            self._notify_soon()
            if status != ESME_RX_T_APPN or len(statuses) > self.mo_retries:
                return statuses
            await asyncio.sleep(self.mo_retry_delay)  # the SMSC's retry schedule

    async def unbind_clients(self, timeout: float = 5.0) -> list[int]:
        """Unbind every bound session, as an SMSC going down for maintenance does: the
        unbind_resp statuses; then their connections are closed."""
        sessions = [s for s in self._sessions if s.bound_as is not None]
        answers = [self._request(session, UNBIND) for session in sessions]
        statuses = [await asyncio.wait_for(answer, timeout) for answer in answers]
        for session in sessions:
            session.bound_as = None
            session.writer.close()
        return statuses

    # -- waiting ---------------------------------------------------------------------------

    async def wait_until(self, condition: Callable[[], _T], timeout: float = 5.0) -> _T:
        """Wait until ``condition()`` holds; rechecked after every PDU and state change."""
        return await self._wait_for(condition, timeout)

    async def wait_bound(self, count: int = 1, timeout: float = 5.0) -> None:
        await self.wait_until(lambda: self.bound >= count, timeout)

    async def wait_messages(self, count: int = 1, timeout: float = 5.0) -> list[MessageRecord]:
        await self.wait_until(lambda: len(self.messages) >= count, timeout)
        return self.messages

    async def wait_submits(self, count: int = 1, timeout: float = 5.0) -> list[SubmitRecord]:
        await self.wait_until(lambda: len(self.submits) >= count, timeout)
        return self.submits

    async def wait_in_flight(self, count: int, timeout: float = 5.0) -> None:
        await self.wait_until(lambda: self.in_flight >= count, timeout)

    async def wait_unbinds(self, count: int = 1, timeout: float = 5.0) -> None:
        await self.wait_until(lambda: self.unbinds >= count, timeout)

    def _notify_soon(self) -> None:
        job = asyncio.get_running_loop().create_task(self._notify())
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    # -- sessions --------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # without it Nagle holds back every small PDU behind an ACK
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = _Session(reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(session)
        self._handlers.add(task)
        try:
            while await self._read_one(session):
                await writer.drain()
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug here must not take the server down with it
            log.exception("smsc: session failed")
        finally:
            self._sessions.discard(session)
            self._handlers.discard(task)
            for answer in session.responses.values():
                if not answer.done():
                    answer.set_exception(ConnectionError("session closed"))
            writer.close()
            await self._notify()

    async def _read_one(self, session: _Session) -> bool:
        """Read and act on one PDU; False when the session is over."""
        header = await session.reader.readexactly(HEADER.size)
        length, command_id, status, sequence = HEADER.unpack(header)
        if not HEADER.size <= length <= MAX_PDU:
            # Framing is lost: say why, then hang up, as SMSCs do.
            session.send(GENERIC_NACK, ESME_RINVCMDLEN, sequence)
            await session.writer.drain()
            return False
        body = await session.reader.readexactly(length - HEADER.size)
        if command_id & RESPONSE:
            answer = session.responses.pop(sequence, None)
            if answer is not None and not answer.done():
                answer.set_result(status)
            return True
        if self._hung:
            return True
        try:
            keep_going = self._handle(session, command_id, sequence, body)
        except MalformedPdu as exc:
            log.info("smsc: malformed PDU 0x%08x: %s", command_id, exc)
            session.send(GENERIC_NACK, ESME_RINVCMDLEN, sequence)
            keep_going = True
        await self._notify()
        return keep_going

    def _handle(self, session: _Session, command_id: int, sequence: int, body: bytes) -> bool:
        if command_id in (BIND_TRANSMITTER, BIND_RECEIVER, BIND_TRANSCEIVER):
            self._bind(session, command_id, sequence, Bind.parse(body))
        elif command_id == UNBIND:
            session.send(UNBIND | RESPONSE, ESME_ROK, sequence)
            session.bound_as = None
            self.unbinds += 1
            return False
        elif command_id == ENQUIRE_LINK:
            self.enquire_links += 1
            session.send(ENQUIRE_LINK | RESPONSE, ESME_ROK, sequence)
        elif command_id == SUBMIT_SM:
            self._submit(session, sequence, body)
        else:
            session.send(GENERIC_NACK, ESME_RINVCMDID, sequence)
        return True

    def _bind(self, session: _Session, command_id: int, sequence: int, bind: Bind) -> None:
        if session.bound_as is not None:
            status = ESME_RALYBND
        elif self.system_id and bind.system_id != self.system_id:
            status = ESME_RINVSYSID
        elif bind.password != self.password:
            status = ESME_RINVPASWD
        else:
            status = ESME_ROK
        if status != ESME_ROK:
            session.send(command_id | RESPONSE, status, sequence)
            return
        session.bound_as, session.system_id = command_id, bind.system_id
        self.binds += 1
        body = cstring(SYSTEM_ID) + tlv(TLV_SC_INTERFACE_VERSION, b"\x34")
        session.send(command_id | RESPONSE, ESME_ROK, sequence, body)
        if session.can_receive:
            while self._undelivered:
                self._deliver_receipt(session, self._undelivered.popleft())

    def _submit(self, session: _Session, sequence: int, body: bytes) -> None:
        if not session.can_transmit:
            session.send(SUBMIT_SM | RESPONSE, ESME_RINVBNDSTS, sequence)
            return
        sm = ShortMessage.parse(body)
        if self._swallow:
            self._swallow -= 1
            self.submits.append(SubmitRecord(sequence, sm, None, ""))
            return
        if self._rejects:
            status = self._rejects.popleft()
            self.submits.append(SubmitRecord(sequence, sm, status, ""))
            session.send(SUBMIT_SM | RESPONSE, status, sequence)
            return
        message_id = f"{next(self._ids):x}"
        self.submits.append(SubmitRecord(sequence, sm, ESME_ROK, message_id))
        self._collect(sm, message_id)
        response = encode_pdu(SUBMIT_SM | RESPONSE, ESME_ROK, sequence, cstring(message_id))
        receipt = self._receipt_for(sm, message_id)
        if self._holding:
            self._held.append((session, response, receipt))
            self.max_in_flight = max(self.max_in_flight, len(self._held))
        elif self.submit_latency > 0:
            later = asyncio.get_running_loop().call_later
            self._timers.add(later(self.submit_latency, self._answer, session, response, receipt))
        else:
            self._answer(session, response, receipt)

    def _answer(self, session: _Session, response: bytes, receipt: ShortMessage | None) -> None:
        """Send a submit_sm_resp; its receipt (if any) comes after it, as from a real SMSC."""
        self._forget_fired_timers()
        if not session.writer.is_closing():
            session.writer.write(response)
        if receipt is None:
            return
        loop = asyncio.get_running_loop()
        if self.receipt_delay <= 0:
            loop.call_soon(self._send_receipt, receipt)
        else:
            self._timers.add(loop.call_later(self.receipt_delay, self._send_receipt, receipt))

    def _collect(self, sm: ShortMessage, message_id: str) -> None:
        concat, payload = None, sm.short_message
        if sm.esm_class & ESM_UDHI:
            concat, payload = parse_udh(sm.short_message)
        elif TLV_SAR_MSG_REF_NUM in sm.tlvs:
            concat = (
                int.from_bytes(sm.tlvs[TLV_SAR_MSG_REF_NUM], "big"),
                sm.tlvs[TLV_SAR_TOTAL_SEGMENTS][0],
                sm.tlvs[TLV_SAR_SEGMENT_SEQNUM][0],
            )
        if concat is None:
            text = decode_text(sm.data_coding, payload)
            self.messages.append(
                MessageRecord(sm.source, sm.destination, text, sm.data_coding, 1, (message_id,))
            )
            return
        reference, total, number = concat
        key = (sm.source, sm.destination, reference, total)
        parts = self._partial.setdefault(key, {})
        parts[number] = (message_id, payload)
        if len(parts) < total:
            return
        del self._partial[key]
        ordered = [parts[n] for n in sorted(parts)]
        text = decode_text(sm.data_coding, b"".join(p for _, p in ordered))
        ids = tuple(i for i, _ in ordered)
        self.messages.append(
            MessageRecord(sm.source, sm.destination, text, sm.data_coding, total, ids)
        )

    # -- receipts and deliveries -----------------------------------------------------------

    def _receipt_for(self, sm: ShortMessage, message_id: str) -> ShortMessage | None:
        """The receipt this submit asked for, if any: registered_delivery 1 (always) or 2
        (failures only)."""
        wanted = sm.registered_delivery & 0x03
        stat = self._receipt_stats.get(sm.destination, "DELIVRD")
        if not self.receipts or not wanted or (wanted == 0x02 and stat == "DELIVRD"):
            return None
        return self._receipt(sm, message_id, stat)

    def _receipt(self, sm: ShortMessage, message_id: str, stat: str) -> ShortMessage:
        now = datetime.now(UTC).strftime("%y%m%d%H%M")
        delivered = "001" if stat == "DELIVRD" else "000"
        error = "000" if stat == "DELIVRD" else "001"
        text = (
            f"id:{message_id} sub:001 dlvrd:{delivered} submit date:{now} done date:{now} "
            f"stat:{stat} err:{error} text:"
        ).encode("ascii")
        if sm.data_coding == GSM and not sm.esm_class & ESM_UDHI:
            text += sm.short_message[:20]  # the first 20 characters, as the SMSC got them
        tlvs = {}
        if self.receipt_tlvs:
            tlvs[TLV_RECEIPTED_MESSAGE_ID] = cstring(message_id)
            tlvs[TLV_MESSAGE_STATE] = bytes((MESSAGE_STATES[stat],))
        return ShortMessage(
            source=sm.destination,
            destination=sm.source,
            short_message=text,
            esm_class=ESM_DELIVERY_RECEIPT,
            source_ton=sm.dest_ton,
            source_npi=sm.dest_npi,
            dest_ton=sm.source_ton,
            dest_npi=sm.source_npi,
            tlvs=tlvs,
        )

    def _send_receipt(self, receipt: ShortMessage) -> None:
        self._forget_fired_timers()
        self.receipts_sent += 1
        session = self._receiver()
        if session is None:  # the SMSC keeps it until a receiver binds
            self._undelivered.append(receipt)
        else:
            self._deliver_receipt(session, receipt)
        self._notify_soon()

    def _deliver_receipt(self, session: _Session, receipt: ShortMessage) -> None:
        answer = self._deliver(session, receipt)
        answer.add_done_callback(lambda done: self._receipt_answered(receipt, done))

    def _receipt_answered(self, receipt: ShortMessage, answer: asyncio.Future[int]) -> None:
        """A receipt not acknowledged (the link died first, or a temporary error) is kept
        for the next receiver, as a real SMSC retries it."""
        if answer.cancelled() or answer.exception() is not None:
            self._undelivered.append(receipt)
        elif answer.result() == ESME_RX_T_APPN:
            receiver = self._receiver()
            if receiver is None:
                self._undelivered.append(receipt)
            else:
                loop = asyncio.get_running_loop()
                self._timers.add(loop.call_later(0.2, self._send_receipt, receipt))

    def _forget_fired_timers(self) -> None:
        if self._timers:
            now = asyncio.get_running_loop().time()
            self._timers = {t for t in self._timers if t.when() > now}

    def _receiver(self) -> _Session | None:
        return next((s for s in self._sessions if s.can_receive), None)

    def _deliver(self, session: _Session, sm: ShortMessage) -> asyncio.Future[int]:
        """Send deliver_sm; the future gets the deliver_sm_resp status."""
        return self._request(session, DELIVER_SM, sm.encode())

    def _request(
        self, session: _Session, command_id: int, body: bytes = b""
    ) -> asyncio.Future[int]:
        sequence = next(self._sequences)
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        answer.add_done_callback(_consume_exception)
        session.responses[sequence] = answer
        session.send(command_id, ESME_ROK, sequence, body)
        return answer


def _consume_exception(answer: asyncio.Future[int]) -> None:
    # Receipts are fire and forget: a session closing under one is not an error to report.
    if not answer.cancelled():
        with contextlib.suppress(Exception):
            answer.exception()
