"""SMS over SMPP 3.4 with smpplib: one transceiver bind, a window of submits, receipts, MO.

smpplib's client binds in a thread and is then read and written on the event loop by
smpp_bridge.py (the common PDUs through the struct codec of pdu_codec.py, the rest through
smpplib; requests matched to responses by sequence number). This module is what the PDUs
mean: the link kept by a supervisor task (connect and bind, enquire_link every
`enquire_link_interval`, reconnect with a doubling back-off), submits through a window
with throttling, receipts and MO text stored before they are acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from models.settings import ConfigError, SmppSettings
from notifiers.base import (
    DeliveryReport,
    InboundMessage,
    InboundSink,
    OutgoingMessage,
    PermanentError,
    Receipt,
    ReportSink,
    TransientError,
)
from notifiers.sms import pdu_codec
from notifiers.sms import text as sms_text
from notifiers.sms.smpp_bridge import WIRE_LOGGER, Encoded, Link, SmppClient, open_link

log = logging.getLogger(__name__)

ESME_ROK = 0x00
ESME_RX_T_APPN = 0x64  # our deliver_sm_resp when we could not take a PDU: SMSC retries
# The SMSC is busy: pause every submit and resubmit, never fail the message for it.
THROTTLING = frozenset({0x58, 0x14})  # ESME_RTHROTTLED, ESME_RMSGQFUL
# Statuses about this message or address that no retry will change. Everything else is
# transient: system errors (0x08), generic submit failures (0x45), temporary application
# errors (0x64), bind state (0x04), vendor codes (0x400+); the outbox's retry schedule and
# give_up_after bound the cost of being wrong about one of those.
PERMANENT = {
    0x01: "invalid message length",
    0x0A: "invalid source address (check smpp.source_addr)",
    0x0B: "invalid destination address",
    0x43: "invalid esm_class",
    0x48: "invalid source TON (check smpp.source_ton)",
    0x49: "invalid source NPI (check smpp.source_npi)",
    0x50: "invalid destination TON",
    0x51: "invalid destination NPI",
    0x65: "permanent application error",
    0x66: "message rejected",
}
MESSAGE_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
FINAL_STATES = frozenset({"DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "DELETED", "UNKNOWN"})
ESM_RECEIPT = 0x04  # esm_class message type: SMSC delivery receipt
TON_INTERNATIONAL, NPI_ISDN = 1, 1
_LOCAL_TONS = frozenset({2, 4, 5, 6})  # national, subscriber, alphanumeric, abbreviated
_RECEIPT_TEXT = re.compile(rb"^id:(?P<id>\S+) .*?\bstat:(?P<stat>[A-Z]+)", re.DOTALL)
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_T = TypeVar("_T")
_FIELD_LIMITS = {"system_id": 15, "password": 8, "system_type": 12, "source_addr": 20}
_UNSTORED_MAX = 64  # concatenated MO texts kept for their redelivered last part
_Answer = Callable[[int], None]  # sends our deliver_sm_resp with this status
_Group = tuple[str, str, int, int]


def normalise_message_id(raw: bytes | str | None) -> str:
    """One spelling for an SMSC message id, so a receipt matches its Receipt.parts entry.

    SMSCs differ in case and zero padding between submit_sm_resp and receipts; those are
    folded here. Some also write the id in hex in one place and in decimal in the other
    (often the receipt text, while the receipted_message_id TLV keeps the submit_sm_resp
    form): that cannot be told from the id alone, so receipts prefer the TLV.
    """
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw or ""
    text = text.strip("\0 \t\r\n").lower()
    return text.lstrip("0") or ("0" if text else "")


def _submit_sm(link: Link, destination: str, part: sms_text.SmsPart) -> Encoded:
    """A submit_sm for this part, with smpplib's next sequence number, encoded from the
    link's template (the bytes smpplib would write, in a tenth of its time)."""
    assert link.template is not None
    sequence = link.client.next_sequence()
    data = link.template.encode(
        sequence, destination, part.esm_class, part.data_coding, part.short_message
    )
    return Encoded("submit_sm", sequence, data)


# -- what the SMSC delivers ----------------------------------------------------------------


@dataclass(frozen=True)
class _MoPart:
    source: str
    source_ton: int
    destination: str
    data_coding: int
    concat: sms_text.Concat | None
    payload: bytes
    received_at: datetime


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value or "")


def _read_deliver(pdu: Any) -> DeliveryReport | _MoPart | None:
    """A receipt (None when not final) or a piece of MO text, from smpplib's deliver_sm."""
    short_message = pdu.short_message or b""
    esm_class = pdu.esm_class or 0
    text_receipt = _RECEIPT_TEXT.match(short_message)
    if esm_class & ESM_RECEIPT or pdu.receipted_message_id or text_receipt:
        raw_id = pdu.receipted_message_id or (text_receipt and text_receipt["id"])
        state = MESSAGE_STATES.get(pdu.message_state or 0)
        if state is None and text_receipt:
            state = text_receipt["stat"].decode("ascii")
        if not raw_id or state is None:
            log.warning("sms: receipt without id or state: %r", short_message[:120])
            return None
        if state not in FINAL_STATES:
            return None
        message_id = normalise_message_id(raw_id)
        return DeliveryReport("sms", message_id, delivered=state == "DELIVRD", detail=state)
    concat, payload = sms_text.parse_user_data(short_message, esm_class)
    if not payload and pdu.message_payload:  # long MO in one PDU, as some SMSCs send it
        payload = pdu.message_payload
    if concat is None and pdu.sar_total_segments and pdu.sar_segment_seqnum:
        concat = sms_text.Concat(
            pdu.sar_msg_ref_num or 0, pdu.sar_total_segments, pdu.sar_segment_seqnum
        )
    return _MoPart(
        source=_text(pdu.source_addr),
        source_ton=pdu.source_addr_ton or 0,
        destination=_text(pdu.destination_addr),
        data_coding=pdu.data_coding or 0,
        concat=concat,
        payload=payload,
        received_at=datetime.now(UTC),
    )


def _sender(source: str, ton: int) -> str:
    if source.isdigit() and ton not in _LOCAL_TONS:
        return "+" + source
    return source


# -- throttling ----------------------------------------------------------------------------


class _Throttle:
    """After ESME_RTHROTTLED every submit waits out a pause. The pause doubles (up to
    `longest`) while refusals go on past it, and resets once a submit sent after it is
    accepted."""

    def __init__(self, first: float, longest: float) -> None:
        self.first = first
        self.longest = max(first, longest)
        self.next_pause = first
        self.until = 0.0

    def refused(self, now: float) -> float:
        """Start a pause unless one is on (answers to submits already in flight); the
        seconds left of it."""
        if now >= self.until:
            self.until = now + self.next_pause
            self.next_pause = min(self.next_pause * 2, self.longest)
        return self.until - now

    def accepted(self, sent_at: float) -> None:
        if sent_at >= self.until:
            self.next_pause = self.first

    async def wait(self) -> None:
        # A pause only starts once the last is over, so one sleep is enough: a submit sent
        # into a new pause is refused and waits again.
        left = self.until - asyncio.get_running_loop().time()
        if left > 0:
            await asyncio.sleep(left)


# -- the channel ---------------------------------------------------------------------------


class SmsNotifier:
    channel = "sms"

    def __init__(
        self, settings: SmppSettings, on_report: ReportSink, on_inbound: InboundSink
    ) -> None:
        _check(settings)
        self._settings = settings
        self._on_report = on_report
        self._on_inbound = on_inbound
        self._window = asyncio.Semaphore(max(1, settings.window))
        # Throttling pauses double up to reconnect_max, our longest wait for the SMSC.
        self._throttle = _Throttle(settings.throttle_delay, settings.reconnect_max)
        # A random start: after a restart, handsets may still hold parts under old refs.
        self._references = sms_text.ReferencePool(start=secrets.randbelow(256))
        self._reassembler = sms_text.Reassembler()
        # Concatenated MO texts whose storing failed, by (source, destination, ref, total).
        self._unstored: dict[_Group, str] = {}
        self._link: Link | None = None
        self._bound = asyncio.Event()
        self._attempted = asyncio.Event()  # the first connect/bind attempt is over
        self._supervisor: asyncio.Task[None] | None = None
        self._sink_tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context = contextvars.copy_context()
        logging.getLogger(WIRE_LOGGER).setLevel(logging.ERROR)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def is_bound(self) -> bool:
        return self._link is not None

    @property
    def window_in_use(self) -> int:
        """Submits holding a place in the window (sent, answer awaited): /metrics."""
        return max(1, self._settings.window) - self._window._value  # no public reader

    async def wait_bound(self, timeout: float) -> None:
        """Until the link is bound; TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            await self._bound.wait()

    async def start(self) -> None:
        """Start keeping the link; returns after the first bind attempt, bound or not (the
        supervisor keeps trying). Call it where the database is open: sinks run in this
        context (tortoise keeps its connections in a context variable)."""
        if self._supervisor is not None:
            return
        if not self._settings.host:
            raise ValueError("smpp.host is empty: the SMS channel is off")
        self._loop = asyncio.get_running_loop()
        self._context = contextvars.copy_context()
        self._attempted.clear()
        self._supervisor = self._loop.create_task(self._supervise(), name="smpp-supervisor")
        await self._attempted.wait()

    async def stop(self) -> None:
        """Unbind, close, and let running sink calls finish (up to response_timeout)."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is None:
            return
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
        if self._sink_tasks:
            await asyncio.wait(self._sink_tasks, timeout=self._settings.response_timeout)

    async def _supervise(self) -> None:
        assert self._loop is not None
        s = self._settings
        delay = s.reconnect_min
        while True:
            try:
                link = await self._open()
            except Exception as exc:
                reason = str(exc) or type(exc).__name__
                log.warning("sms: no bind to %s:%s (%s)", s.host, s.port, reason)
                self._attempted.set()
            else:
                bound_at = self._loop.time()
                await self._hold(link)
                # Only a link that lasted resets the back-off: a flapping SMSC is not hammered.
                if self._loop.time() - bound_at >= s.reconnect_max:
                    delay = s.reconnect_min
            log.info("sms: binding again in %.2fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, s.reconnect_max)

    async def _hold(self, link: Link) -> None:
        """Use the link until it is lost (or we stop), then close it."""
        s = self._settings
        log.info("sms: bound to %s:%s as %s", s.host, s.port, s.system_id)
        self._link = link
        self._bound.set()
        self._attempted.set()
        try:
            await self._keep_alive(link)
        except Exception:
            log.exception("sms: keeping the link failed")
        finally:
            self._link = None
            self._bound.clear()
            await self._close(link)

    async def _open(self) -> Link:
        link = await open_link(self._settings, self._on_deliver)
        link.template = self._submit_template()
        return link

    async def _keep_alive(self, link: Link) -> None:
        s = self._settings
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(s.enquire_link_interval):
                    await link.lost.wait()
                log.warning("sms: link to %s:%s lost", s.host, s.port)
                return
            try:
                await link.enquire_link(s.response_timeout)
            except TransientError as exc:
                log.warning("sms: enquire_link failed (%s); reconnecting", exc)
                return

    async def _close(self, link: Link) -> None:
        timeout = self._settings.response_timeout
        await link.close(unbind_timeout=min(timeout, 2.0))

    # -- requests --------------------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> Receipt:
        destination = message.address.strip()
        if not _E164.fullmatch(destination):
            raise PermanentError(f"sms: not an E.164 number: {message.address!r}")
        if self._link is None:
            raise TransientError("sms: not bound to the SMSC")
        text = sms_text.cut(message.text, self._settings.max_parts)
        reference = None
        if sms_text.count_parts(text) > 1:
            try:
                reference = self._references.acquire()
            except LookupError:
                raise TransientError("sms: every concatenation reference is in use") from None
        if reference is None:
            message_id = await self._submit(destination[1:], sms_text.split(text)[0])
            return Receipt(message_id=message_id, parts=(message_id,))
        try:
            parts = sms_text.split(text, reference)
            results = await asyncio.gather(
                *(self._submit(destination[1:], part) for part in parts), return_exceptions=True
            )
        finally:
            if reference is not None:
                self._references.release(reference)
        ids = [r for r in results if isinstance(r, str)]
        if len(ids) < len(results):
            errors = [r for r in results if isinstance(r, BaseException)]
            raise next((e for e in errors if isinstance(e, PermanentError)), errors[0])
        return Receipt(message_id=ids[0], parts=tuple(ids))

    async def _submit(self, destination: str, part: sms_text.SmsPart) -> str:
        """Submit one part through the window; its message id. Throttling pauses and
        retries it, up to response_timeout of refusals; then the outbox retries later."""
        assert self._loop is not None
        s = self._settings
        refused_since: float | None = None
        while True:
            if self._throttle.until > self._loop.time():
                await self._throttle.wait()
            async with self._window:
                link = self._link
                if link is None:
                    raise TransientError("sms: not bound to the SMSC")
                sent_at = self._loop.time()
                submit_sm = _submit_sm(link, destination, part)
                response = await link.request(submit_sm, s.response_timeout)
            if response.status == ESME_ROK:
                self._throttle.accepted(sent_at)
                return normalise_message_id(response.message_id)
            if response.status not in THROTTLING:
                raise _submit_error(response.status)
            now = self._loop.time()
            refused_since = now if refused_since is None else refused_since
            pause = self._throttle.refused(now)
            if now + pause - refused_since > s.response_timeout:
                raise TransientError("sms: the SMSC keeps throttling us", retry_after=pause)

    def _submit_template(self) -> pdu_codec.SubmitTemplate:
        """The fields every submit_sm shares, for `_submit_sm`."""
        s = self._settings
        source = s.source_addr.removeprefix("+") if s.source_ton == TON_INTERNATIONAL else ""
        return pdu_codec.SubmitTemplate(
            source_addr_ton=s.source_ton,
            source_addr_npi=s.source_npi,
            source_addr=source or s.source_addr,
            dest_addr_ton=TON_INTERNATIONAL,
            dest_addr_npi=NPI_ISDN,
            registered_delivery=1,  # a receipt for every part, delivered or not
        )

    # -- what the SMSC sends ---------------------------------------------------------------

    def _on_deliver(self, pdu: Any, client: SmppClient, **_: Any) -> int | None:
        """The deliver_sm handler (smpplib's DeliverSM or a pdu_codec.DeliverSm, on the loop);
        our deliver_sm_resp status, or None for a receipt or MO text: answered once stored
        (`_store_then_answer`, `_report_then_answer`), so a crash before that makes the
        SMSC deliver it again."""
        if pdu.command != "deliver_sm":  # alert_notification comes here too: nothing to do
            return ESME_ROK
        try:
            event = _read_deliver(pdu)
        except Exception:  # retrying will not make it readable: take it and say so
            log.exception("sms: unreadable deliver_sm dropped")
            return ESME_ROK
        if event is None:
            return ESME_ROK
        answer = functools.partial(client.answer_deliver, pdu.sequence)
        try:
            self._delivered(event, answer)
        except Exception:  # unanswered: the SMSC delivers it again after its timeout
            log.exception("sms: handling what the SMSC sent failed")
        return None

    def _delivered(self, event: DeliveryReport | _MoPart, answer: _Answer) -> None:
        assert self._loop is not None
        if isinstance(event, DeliveryReport):
            self._spawn_sink(self._report_then_answer(event, answer))
            return
        group: _Group | None = None
        if event.concat is None or event.concat.total == 1:
            text: str | None = sms_text.decode(event.data_coding, event.payload)
        else:
            concat = event.concat
            group = (event.source, event.destination, concat.reference, concat.total)
            # A last part we could not store comes again alone: its text is kept for it.
            text = self._unstored.pop(group, None) or self._reassembler.add(
                group[:2], concat, event.data_coding, event.payload, self._loop.time()
            )
        if text is None:
            answer(ESME_ROK)  # a part held until the others come (in memory, as ever)
            return
        inbound = InboundMessage(
            channel="sms",
            sender=_sender(event.source, event.source_ton),
            recipient=event.destination,
            text=text,
            received_at=event.received_at,
        )
        self._spawn_sink(self._store_then_answer(inbound, answer, group))

    async def _store_then_answer(
        self, inbound: InboundMessage, answer: _Answer, group: _Group | None
    ) -> None:
        """Acknowledge MO text only once it is stored; if storing fails, a temporary error
        makes the SMSC deliver it again later rather than it being lost."""
        try:
            await self._on_inbound(inbound)
        except Exception:
            log.exception("sms: MO message not stored; the SMSC is asked to deliver it again")
            if group is not None:
                self._unstored[group] = inbound.text
                while len(self._unstored) > _UNSTORED_MAX:
                    self._unstored.pop(next(iter(self._unstored)))
            answer(ESME_RX_T_APPN)
            return
        answer(ESME_ROK)

    async def _report_then_answer(self, report: DeliveryReport, answer: _Answer) -> None:
        """A receipt is acknowledged only once it is stored: one lost to a crash or a busy
        database would leave its delivery `sent` for ever (and never fall back)."""
        try:
            await _call(self._on_report, report)
        except Exception:
            log.exception("sms: receipt not stored; the SMSC is asked to deliver it again")
            answer(ESME_RX_T_APPN)
            return
        answer(ESME_ROK)

    def _spawn_sink(self, call: Coroutine[Any, Any, None]) -> None:
        # In the context start() was called in, where tortoise's connections live.
        assert self._loop is not None
        task = self._loop.create_task(call, context=self._context.copy())
        self._sink_tasks.add(task)
        task.add_done_callback(self._sink_done)

    def _sink_done(self, task: asyncio.Task[None]) -> None:
        self._sink_tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("sms: handling a receipt or MO message failed", exc_info=exc)


def _check(settings: SmppSettings) -> None:
    """SMPP 3.4 field sizes (C-strings, the NUL included): smpplib would cut longer values
    silently, and a cut password fails the bind with a puzzling "invalid password"."""
    for key, longest in _FIELD_LIMITS.items():
        value = getattr(settings, key)
        if len(value) > longest or not value.isascii():
            raise ConfigError(f"config key smpp.{key}: at most {longest} ASCII characters")
    if settings.source_ton == 5 and len(settings.source_addr) > 11:
        log.warning("sms: smpp.source_addr is over 11 characters; handsets may cut it")


async def _call(sink: Callable[[_T], Awaitable[None]], item: _T) -> None:
    await sink(item)


def _submit_error(status: int) -> Exception:
    if status in PERMANENT:
        return PermanentError(f"sms: {PERMANENT[status]} (command_status 0x{status:02X})")
    return TransientError(f"sms: submit_sm refused, command_status 0x{status:02X}")
