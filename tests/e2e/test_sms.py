"""The SMS channel end to end: the real SmsNotifier (smpplib) against the sandbox SMSC."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from gateway.control import admin
from gateway.delivery.notices import NewNotification
from gateway.delivery.render import render
from models.db import DeliveryStatus, Subscriber, Urgency
from models.settings import ConfigError, SmppSettings
from models.vocab import Kind
from notifiers.base import (
    DeliveryReport,
    InboundMessage,
    InboundSink,
    OutgoingMessage,
    PermanentError,
    ReportSink,
    TransientError,
)
from notifiers.sms import text as sms_text
from notifiers.sms.channel import SmsNotifier, normalise_message_id
from sandbox.smsc import ESME_RINVDSTADR, ESME_RMSGQFUL, GSM, UCS2, SmscServer
from tests.e2e.test_channels_e2e import Peers
from tests.e2e.test_channels_e2e import peers as peers  # the fixture

NUMBER = "+306912345678"
GREEK_300 = ("Σας καλεί η Μαρία Παπαδοπούλου για το ραντεβού της Τρίτης στις δέκα. " * 5)[:300]
PASSWORD = "s3cr3t!"
GATEWAY_CONTEXT: contextvars.ContextVar[str] = contextvars.ContextVar("gateway", default="none")


class Sinks:
    """What the notifier hands over, in queues a test can await."""

    def __init__(self) -> None:
        self.reports: asyncio.Queue[DeliveryReport] = asyncio.Queue()
        self.inbound: asyncio.Queue[InboundMessage] = asyncio.Queue()

    async def on_report(self, report: DeliveryReport) -> None:
        self.reports.put_nowait(report)

    async def on_inbound(self, message: InboundMessage) -> None:
        self.inbound.put_nowait(message)

    async def next_reports(self, count: int) -> list[DeliveryReport]:
        return [await asyncio.wait_for(self.reports.get(), 5) for _ in range(count)]


Connect = Callable[..., Awaitable[SmsNotifier]]


@pytest.fixture
async def smsc() -> AsyncIterator[SmscServer]:
    async with SmscServer(system_id="frontdesk", password=PASSWORD) as server:
        yield server


@pytest.fixture
def sinks() -> Sinks:
    return Sinks()


@pytest.fixture
async def connect(smsc: SmscServer, sinks: Sinks) -> AsyncIterator[Connect]:
    """Start a notifier on the sandbox with short timings (and any overrides)."""
    started: list[SmsNotifier] = []

    async def start(
        bound: bool = True,
        on_report: ReportSink | None = None,
        on_inbound: InboundSink | None = None,
        **overrides: Any,
    ) -> SmsNotifier:
        fields: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": smsc.port,
            "system_id": "frontdesk",
            "password": PASSWORD,
            "reconnect_min": 0.02,
            "reconnect_max": 0.1,
            "response_timeout": 2.0,
            "throttle_delay": 0.01,
        }
        settings = dataclasses.replace(SmppSettings(), **(fields | overrides))
        notifier = SmsNotifier(
            settings, on_report or sinks.on_report, on_inbound or sinks.on_inbound
        )
        started.append(notifier)
        await notifier.start()
        if bound:
            await notifier.wait_bound(5)
        return notifier

    yield start
    for notifier in started:
        await notifier.stop()


def sms(text: str, address: str = NUMBER) -> OutgoingMessage:
    return OutgoingMessage(address=address, text=text)


# -- sending -------------------------------------------------------------------------------


async def test_300_greek_characters_arrive_as_five_ucs2_parts(
    smsc: SmscServer, connect: Connect
) -> None:
    notifier = await connect()
    receipt = await notifier.send(sms(GREEK_300))
    [message] = await smsc.wait_messages(1)
    assert (message.text, message.data_coding, message.parts) == (GREEK_300, UCS2, 5)
    assert receipt.parts == message.part_ids and receipt.message_id == message.part_ids[0]
    submit = smsc.submits[0].sm
    assert (submit.destination, submit.dest_ton, submit.dest_npi) == (NUMBER[1:], 1, 1)
    assert (submit.source, submit.source_ton, submit.esm_class) == ("Frontdesk", 5, 0x40)
    assert {s.sm.registered_delivery for s in smsc.submits} == {1}


async def test_160_ascii_characters_are_one_gsm_part(smsc: SmscServer, connect: Connect) -> None:
    notifier = await connect()
    receipt = await notifier.send(sms("x" * 160))
    await notifier.send(sms("y" * 161))
    first, second = await smsc.wait_messages(2)
    assert (first.parts, first.data_coding, first.text) == (1, GSM, "x" * 160)
    assert smsc.submits[0].sm.esm_class == 0 and len(smsc.submits[0].sm.short_message) == 160
    assert receipt.parts == (receipt.message_id,)
    assert (second.parts, second.text) == (2, "y" * 161)


async def test_a_long_text_is_cut_to_max_parts(smsc: SmscServer, connect: Connect) -> None:
    notifier = await connect(max_parts=2)
    text = "Call back soon please. " * 40
    receipt = await notifier.send(sms(text))
    [message] = await smsc.wait_messages(1)
    assert len(receipt.parts) == message.parts == 2
    head = message.text.removesuffix("...")
    assert text.startswith(head) and text[len(head)] == " " and message.data_coding == GSM


async def test_concatenation_references_differ_while_in_flight(
    smsc: SmscServer, connect: Connect
) -> None:
    notifier = await connect(window=50)
    smsc.hold_responses()
    sends = [asyncio.create_task(notifier.send(sms(f"{i} " + "α" * 100))) for i in range(8)]
    await smsc.wait_in_flight(16)
    references = {sub.sm.short_message[3] for sub in smsc.submits}
    assert len(references) == 8
    smsc.release_responses()
    await asyncio.gather(*sends)


async def test_a_window_of_n_keeps_n_submits_in_flight(smsc: SmscServer, connect: Connect) -> None:
    notifier = await connect(window=5)
    smsc.hold_responses()
    sends = [asyncio.create_task(notifier.send(sms(f"Missed call {i}"))) for i in range(20)]
    await smsc.wait_in_flight(5)
    assert len(smsc.submits) == 5  # the sixth waits for an answer
    smsc.release_responses()
    receipts = await asyncio.gather(*sends)
    assert smsc.max_in_flight == 5
    assert len({r.message_id for r in receipts}) == 20
    assert sorted(m.text for m in smsc.messages) == sorted(f"Missed call {i}" for i in range(20))


# -- receipts ------------------------------------------------------------------------------


async def test_receipts_report_every_part(smsc: SmscServer, connect: Connect, sinks: Sinks) -> None:
    notifier = await connect()
    receipt = await notifier.send(sms(GREEK_300))
    reports = await sinks.next_reports(5)
    assert {r.message_id for r in reports} == set(receipt.parts)
    assert {(r.channel, r.delivered, r.detail) for r in reports} == {("sms", True, "DELIVRD")}


async def test_undelivered_receipts(smsc: SmscServer, connect: Connect, sinks: Sinks) -> None:
    smsc.fail_receipts(NUMBER[1:], "UNDELIV")
    notifier = await connect()
    receipt = await notifier.send(sms("Missed call"))
    [report] = await sinks.next_reports(1)
    assert report == DeliveryReport("sms", receipt.message_id, delivered=False, detail="UNDELIV")


async def test_receipts_with_only_the_text(
    smsc: SmscServer, connect: Connect, sinks: Sinks
) -> None:
    smsc.receipt_tlvs = False
    smsc.fail_receipts(NUMBER[1:], "EXPIRED")
    notifier = await connect()
    receipt = await notifier.send(sms("Missed call"))
    [report] = await sinks.next_reports(1)
    assert (report.message_id, report.delivered, report.detail) == (
        receipt.message_id,
        False,
        "EXPIRED",
    )


def test_message_ids_are_normalised() -> None:
    assert normalise_message_id(b"00AbC12\0") == "abc12"
    assert normalise_message_id(" 0042 ") == "42"
    assert normalise_message_id("000") == "0"
    assert normalise_message_id(None) == ""


# -- failures ------------------------------------------------------------------------------


async def test_throttling_slows_but_loses_nothing(smsc: SmscServer, connect: Connect) -> None:
    notifier = await connect(window=2)
    smsc.throttle(3)
    smsc.reject(ESME_RMSGQFUL)  # "message queue full" is the same: wait and resubmit
    receipts = await asyncio.gather(*(notifier.send(sms(f"call {i}")) for i in range(5)))
    assert len(receipts) == 5
    assert sorted(m.text for m in smsc.messages) == [f"call {i}" for i in range(5)]
    assert [s.status for s in smsc.submits].count(0x58) == 3
    assert len(smsc.submits) == 9


async def test_an_invalid_destination_is_permanent(smsc: SmscServer, connect: Connect) -> None:
    notifier = await connect()
    smsc.reject(ESME_RINVDSTADR)
    with pytest.raises(PermanentError, match="destination"):
        await notifier.send(sms("hello"))
    smsc.reject(ESME_RINVDSTADR, count=3)  # one part refused fails the whole message
    with pytest.raises(PermanentError):
        await notifier.send(sms("α" * 200))


async def test_a_system_error_is_transient(smsc: SmscServer, connect: Connect) -> None:
    notifier = await connect()
    smsc.reject(0x08)  # ESME_RSYSERR
    with pytest.raises(TransientError):
        await notifier.send(sms("hello"))
    await notifier.send(sms("hello again"))


@pytest.mark.parametrize("address", ["306912345678", "+30 691 234", "alice@example.com", ""])
async def test_an_address_that_is_not_e164_is_permanent(
    smsc: SmscServer, connect: Connect, address: str
) -> None:
    notifier = await connect()
    with pytest.raises(PermanentError):
        await notifier.send(sms("hello", address=address))
    assert smsc.submits == []


async def test_no_response_times_out_as_transient(smsc: SmscServer, connect: Connect) -> None:
    notifier = await connect(response_timeout=0.2)
    smsc.no_response(1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TransientError, match="submit_sm_resp"):
        await notifier.send(sms("hello"))
    assert 0.2 <= loop.time() - started < 2
    await notifier.send(sms("answered this time"))


async def test_an_smsc_outage_is_transient_then_the_notifier_binds_again(
    smsc: SmscServer, connect: Connect
) -> None:
    notifier = await connect()
    await smsc.stop()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TransientError):
        await notifier.send(sms("during the outage"))
    assert loop.time() - started < 1
    await smsc.start()
    await smsc.wait_until(lambda: smsc.binds == 2)
    await notifier.wait_bound(5)
    await notifier.send(sms("after the outage"))
    assert [m.text for m in await smsc.wait_messages(1)] == ["after the outage"]


async def test_a_dropped_link_fails_what_is_in_flight(smsc: SmscServer, connect: Connect) -> None:
    notifier = await connect()
    smsc.hold_responses()
    sending = asyncio.create_task(notifier.send(sms("hello")))
    await smsc.wait_in_flight(1)
    await smsc.drop_link()
    with pytest.raises(TransientError):
        await sending
    smsc.release_responses()  # to a closed session: nothing
    await smsc.wait_until(lambda: smsc.binds == 2)
    await notifier.wait_bound(5)
    await notifier.send(sms("hello again"))


async def test_a_refused_bind_is_retried_and_the_password_never_logged(
    smsc: SmscServer, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    notifier = await connect(bound=False, password="wrong")
    assert not notifier.is_bound
    with pytest.raises(TransientError):
        await notifier.send(sms("hello"))
    assert "0x0E" in caplog.text  # ESME_RINVPASWD, named in the warning
    await connect()  # and a good one, with its bind PDU
    for secret in ("wrong", PASSWORD):
        assert secret not in caplog.text
        assert secret.encode().hex() not in caplog.text


# -- the link ------------------------------------------------------------------------------


async def test_enquire_link_keeps_the_link(smsc: SmscServer, connect: Connect) -> None:
    await connect(enquire_link_interval=0.02)
    await smsc.wait_until(lambda: smsc.enquire_links >= 3)


async def test_a_hung_smsc_is_dropped_and_bound_again(smsc: SmscServer, connect: Connect) -> None:
    notifier = await connect(enquire_link_interval=0.05, response_timeout=0.2)
    smsc.hang()  # enquire_link unanswered, then the unbind too
    await smsc.wait_until(lambda: smsc.bound == 0)
    assert not notifier.is_bound
    smsc.resume()
    await smsc.wait_until(lambda: smsc.binds == 2)
    await notifier.wait_bound(5)
    await notifier.send(sms("hello"))


async def test_starting_while_the_smsc_is_down(smsc: SmscServer, connect: Connect) -> None:
    await smsc.stop()
    notifier = await connect(bound=False)
    assert not notifier.is_bound
    with pytest.raises(TransientError, match="not bound"):
        await notifier.send(sms("hello"))
    await smsc.start()
    await notifier.wait_bound(5)
    await notifier.send(sms("hello"))


@pytest.mark.parametrize(
    ("key", "value"), [("password", "nine char"), ("system_id", "x" * 16), ("source_addr", "Φ")]
)
def test_values_smpp_cannot_carry_are_refused(key: str, value: str) -> None:
    settings = dataclasses.replace(SmppSettings(), host="127.0.0.1", **{key: value})
    with pytest.raises(ConfigError, match=f"smpp.{key}"):
        SmsNotifier(settings, Sinks().on_report, Sinks().on_inbound)


async def test_stop_unbinds(smsc: SmscServer, connect: Connect) -> None:
    notifier = await connect()
    await notifier.stop()
    await smsc.wait_unbinds(1)
    assert smsc.bound == 0
    assert "smpp-reader" not in {t.name for t in threading.enumerate()}
    with pytest.raises(TransientError):
        await notifier.send(sms("after stop"))


async def test_an_unbind_from_the_smsc_is_answered_and_rebound(
    smsc: SmscServer, connect: Connect
) -> None:
    notifier = await connect()
    assert await smsc.unbind_clients() == [0]
    await smsc.wait_until(lambda: smsc.binds == 2)
    await notifier.wait_bound(5)


# -- MO and sinks --------------------------------------------------------------------------


@pytest.mark.parametrize("sar", [False, True])
async def test_long_greek_mo_reaches_on_inbound_intact(
    smsc: SmscServer, connect: Connect, sinks: Sinks, sar: bool
) -> None:
    await connect()
    text = "Παρακαλώ καλέστε με αύριο το πρωί 😀, μετά τις δέκα. " * 5
    statuses = await smsc.inject_mo("306900000001", "Frontdesk", text, sar=sar)
    assert statuses == [0] * sms_text.count_parts(text)
    message = await asyncio.wait_for(sinks.inbound.get(), 5)
    assert (message.channel, message.sender, message.recipient) == (
        "sms",
        "+306900000001",
        "Frontdesk",
    )
    assert message.text == text and message.received_at.tzinfo is not None


async def test_a_short_gsm_mo(smsc: SmscServer, connect: Connect, sinks: Sinks) -> None:
    await connect()
    await smsc.inject_mo("306900000002", "Frontdesk", "STOP {all} 5€")
    message = await asyncio.wait_for(sinks.inbound.get(), 5)
    assert message.text == "STOP {all} 5€"


async def test_sinks_run_in_the_context_of_start(
    smsc: SmscServer, connect: Connect, sinks: Sinks
) -> None:
    # tortoise keeps its connections in a context variable: the reader thread has none.
    seen: list[str] = []

    async def on_inbound(message: InboundMessage) -> None:
        seen.append(GATEWAY_CONTEXT.get())
        await sinks.on_inbound(message)

    GATEWAY_CONTEXT.set("the gateway's")
    await connect(on_inbound=on_inbound)
    await smsc.inject_mo("306900000003", "Frontdesk", "hi")
    await asyncio.wait_for(sinks.inbound.get(), 5)
    assert seen == ["the gateway's"]


async def test_a_failing_sink_is_logged_and_the_channel_goes_on(
    smsc: SmscServer, connect: Connect, sinks: Sinks, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(report: DeliveryReport) -> None:
        raise RuntimeError("database is locked")

    notifier = await connect(on_report=broken)
    await notifier.send(sms("one"))
    await smsc.inject_mo("306900000004", "Frontdesk", "still here")
    assert (await asyncio.wait_for(sinks.inbound.get(), 5)).text == "still here"
    assert "database is locked" in caplog.text


# -- through the service -------------------------------------------------------------------


async def test_a_160_character_english_message_with_its_header_is_one_gsm_part(
    peers: Peers,
) -> None:
    """SMSC side: Babel's U+202F in the time no longer turns the SMS into three UCS-2 parts."""
    sid = peers.subscriber_id
    await Subscriber.filter(id=sid).update(language="en", name="Dr Example")
    await admin.set_route(sid, Kind.MESSAGE, Urgency.NORMAL, ["sms"])
    payload = {
        "subscriber": "Dr Example",
        "caller_number": "+302101234567",
        "caller_name": "Ms Jones",
        "contact_name": None,
        "at": datetime(2025, 3, 4, 15, 4, tzinfo=UTC).isoformat(),
        "timezone": "Europe/Athens",
        "text": "",
    }
    header = render(Kind.MESSAGE, "sms", "en", payload, urgent=False, ref=0).text
    room = 160 - len(header) - len(" / ")  # the text is the last line of the SMS
    payload["text"] = ("Please call back about the lease, today if you can. " * 3)[: room - 1] + "!"
    text = render(Kind.MESSAGE, "sms", "en", payload, urgent=False, ref=0).text
    assert len(text) == 160 and "\u202f" in text  # "Taken at: 3/4/25, 5:04 PM"
    subscriber = await Subscriber.get(id=sid)
    async with in_transaction():
        notice = NewNotification(
            "message:gsm-160", subscriber, Kind.MESSAGE, Urgency.NORMAL, payload
        )
        await peers.runtime.gateway.notices.create([notice])
    await peers.wait_status(DeliveryStatus.DELIVERED)
    [message] = peers.smsc.messages
    assert (message.parts, message.data_coding) == (1, GSM)
    assert message.text == text.replace("\u202f", " ")
    [submit] = peers.smsc.submits
    assert (submit.sm.esm_class, len(submit.sm.short_message)) == (0, 160)
