"""The MMS channel (MmsNotifier, MM7) against the sandbox MMSC, over loopback HTTP."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from defusedxml.ElementTree import fromstring
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.delivery.receipts import Receipts
from gateway.http import build_app
from models.db import Delivery, DeliveryPart, DeliveryStatus
from models.settings import ConfigError, FaxSettings, MmsSettings, load_settings
from notifiers.base import (
    Attachment,
    DeliveryReport,
    OutgoingMessage,
    PermanentError,
    TransientError,
)
from notifiers.mms.client import (
    Mm7FormatError,
    MmsNotifier,
    delivery_report_response,
    parse_delivery_report,
    read_delivery_report,
)
from sandbox.mmsc import MmscServer

NUMBER = "+306912345678"
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40 + b"\r\n--\r\n\r\n"
GREEK_SUBJECT = "Αναπάντητη κλήση από +30 210 1234567"
GREEK_TEXT = "Σας κάλεσε η κα Παπαδοπούλου στις 14:05.\nΜήνυμα: «Παρακαλώ καλέστε με»."
MM7_NS = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"


def mms_settings(url: str, **overrides: Any) -> MmsSettings:
    values: dict[str, Any] = {
        "url": url,
        "vasp_id": "frontdesk",
        "vas_id": "missed-calls",
        "sender_address": "1234",
        "timeout": 5.0,
    }
    return MmsSettings(**{**values, **overrides})


@asynccontextmanager
async def running(settings: MmsSettings) -> AsyncIterator[MmsNotifier]:
    notifier = MmsNotifier(settings)
    await notifier.start()
    try:
        yield notifier
    finally:
        await notifier.stop()


def message(**overrides: Any) -> OutgoingMessage:
    values: dict[str, Any] = {"address": NUMBER, "text": "Missed call", "reference": "delivery-7"}
    return OutgoingMessage(**{**values, **overrides})


@pytest.fixture
async def mmsc() -> AsyncIterator[MmscServer]:
    async with MmscServer() as server:
        yield server


# -- submitting ----------------------------------------------------------------------------


async def test_greek_subject_text_and_mp3_arrive_intact(mmsc: MmscServer) -> None:
    voicemail = Attachment("φωνητικό μήνυμα.mp3", "audio/mpeg", MP3)
    async with running(mms_settings(mmsc.url)) as notifier:
        receipt = await notifier.send(
            message(subject=GREEK_SUBJECT, text=GREEK_TEXT, attachments=(voicemail,))
        )
    [got] = mmsc.submissions
    assert receipt.message_id == got.message_id
    assert got.transaction_id == "delivery-7"
    assert got.mm7_version == "6.8.0"
    assert (got.vasp_id, got.vas_id, got.sender) == (
        "frontdesk",
        "missed-calls",
        ("ShortCode", "1234"),
    )
    assert got.recipients == ("306912345678",)
    assert got.subject == GREEK_SUBJECT
    assert got.delivery_report is True
    text, audio = got.parts
    assert (text.content_type, text.charset) == ("text/plain", "utf-8")
    assert text.text() == GREEK_TEXT
    assert (audio.content_type, audio.filename) == ("audio/mpeg", "φωνητικό μήνυμα.mp3")
    assert audio.data == MP3


async def test_several_attachments_keep_their_order_and_types(mmsc: MmscServer) -> None:
    files = (
        Attachment("a.ics", "text/calendar", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"),
        Attachment("звонок.wav", "audio/wav", b"RIFF\x00\x00WAVE"),
        Attachment("圖.png", "image/png", b"\x89PNG\r\n\x1a\n"),
    )
    async with running(mms_settings(mmsc.url)) as notifier:
        await notifier.send(message(text="来电", attachments=files))
    [got] = mmsc.submissions
    assert got.parts[0].text() == "来电"
    assert [(p.filename, p.content_type, p.data) for p in got.parts[1:]] == [
        (a.filename, a.content_type, a.data) for a in files
    ]


async def test_without_reference_each_send_gets_its_own_transaction_id(mmsc: MmscServer) -> None:
    async with running(mms_settings(mmsc.url)) as notifier:
        first = await notifier.send(message(reference=""))
        second = await notifier.send(message(reference=""))
    a, b = mmsc.submissions
    assert a.transaction_id and b.transaction_id and a.transaction_id != b.transaction_id
    assert first.message_id != second.message_id


@pytest.mark.parametrize(
    ("sender_address", "expected"),
    [
        ("54321", ("ShortCode", "54321")),
        ("+302101234567", ("Number", "302101234567")),
        ("frontdesk@example.gr", ("RFC2822Address", "frontdesk@example.gr")),
        ("", None),
    ],
)
async def test_sender_address_kinds(
    mmsc: MmscServer, sender_address: str, expected: tuple[str, str] | None
) -> None:
    async with running(mms_settings(mmsc.url, sender_address=sender_address)) as notifier:
        await notifier.send(message())
    assert mmsc.submissions[0].sender == expected


async def test_not_a_number_is_refused_before_sending(mmsc: MmscServer) -> None:
    async with running(mms_settings(mmsc.url)) as notifier:
        with pytest.raises(PermanentError, match=r"E\.164"):
            await notifier.send(message(address="someone@example.com"))
    assert mmsc.requests == 0


# -- authentication ------------------------------------------------------------------------


async def test_basic_auth_required_and_given() -> None:
    async with MmscServer(username="vasp", password="σωστό-pass") as mmsc:
        creds = {"username": "vasp", "password": "σωστό-pass"}
        async with running(mms_settings(mmsc.url, **creds)) as notifier:
            receipt = await notifier.send(message())
    assert receipt.message_id == mmsc.submissions[0].message_id
    assert mmsc.submissions[0].username == "vasp"


@pytest.mark.parametrize("password", ["wrong-secret", ""])
async def test_wrong_or_missing_credentials_are_permanent(password: str) -> None:
    async with MmscServer(username="vasp", password="right-secret") as mmsc:
        creds = {"username": "vasp" if password else "", "password": password}
        async with running(mms_settings(mmsc.url, **creds)) as notifier:
            with pytest.raises(PermanentError, match="credentials") as refused:
                await notifier.send(message())
    assert "401" in str(refused.value)
    assert not password or password not in str(refused.value)
    assert mmsc.submissions == []


# -- the MMSC says no ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"mm7_status": 2002}, PermanentError),
        ({"mm7_status": 2004}, PermanentError),
        ({"mm7_status": 3001}, TransientError),
        ({"mm7_status": 4004}, PermanentError),
        ({"mm7_status": 4006}, TransientError),
        ({"mm7_status": 2002, "soap_fault": True}, PermanentError),
        ({"mm7_status": 3000, "soap_fault": True}, TransientError),
        ({"http_status": 500}, TransientError),
        ({"http_status": 503, "body": b"<html>busy</html>"}, TransientError),
        ({"http_status": 404}, PermanentError),
        ({"http_status": 200, "body": b"<html>not SOAP</html>"}, TransientError),
        ({"http_status": 200, "body": b""}, TransientError),
    ],
    ids=lambda v: "-".join(f"{k}={v[k]!r}" for k in v) if isinstance(v, dict) else v.__name__,
)
async def test_mmsc_refusals(
    mmsc: MmscServer, fault: dict[str, Any], error: type[Exception]
) -> None:
    mmsc.fail_next(**fault)
    async with running(mms_settings(mmsc.url)) as notifier:
        with pytest.raises(error, match="mms"):
            await notifier.send(message())
        # The fault was for one submit only: the next one goes through.
        receipt = await notifier.send(message())
    assert [s.message_id for s in mmsc.submissions] == [receipt.message_id]


async def test_status_code_and_text_are_in_the_error(mmsc: MmscServer) -> None:
    mmsc.fail_next(mm7_status=2002)
    async with running(mms_settings(mmsc.url)) as notifier:
        with pytest.raises(PermanentError, match="2002 Address Error"):
            await notifier.send(message())


def bare_fault(code: str) -> bytes:
    return (
        f'<?xml version="1.0"?><env:Envelope xmlns:env="{SOAP_NS}"><env:Body><env:Fault>'
        f"<faultcode>env:{code}</faultcode><faultstring>it went wrong</faultstring>"
        "</env:Fault></env:Body></env:Envelope>"
    ).encode()


@pytest.mark.parametrize(
    ("code", "error"), [("Client", PermanentError), ("Server", TransientError)]
)
async def test_soap_fault_without_mm7_detail(
    mmsc: MmscServer, code: str, error: type[Exception]
) -> None:
    mmsc.fail_next(http_status=500, body=bare_fault(code))
    async with running(mms_settings(mmsc.url)) as notifier:
        with pytest.raises(error, match=f"SOAP Fault {code} \\(it went wrong\\)"):
            await notifier.send(message())


async def test_sandbox_answers_a_bare_envelope_with_a_2007_fault(mmsc: MmscServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(mmsc.url, data=b"<x/>", headers={"Content-Type": "text/xml"}) as rsp:
            assert rsp.status == 500
            root = fromstring(await rsp.read())
    code = root.find(f".//{{{MM7_NS}}}RSErrorRsp/{{{MM7_NS}}}Status/{{{MM7_NS}}}StatusCode")
    assert code is not None and code.text == "2007"
    assert mmsc.submissions == []


async def test_mmsc_down_is_transient() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with running(mms_settings(f"http://127.0.0.1:{port}/mm7")) as notifier:
        with pytest.raises(TransientError, match="cannot reach"):
            await notifier.send(message())


async def test_silent_mmsc_times_out_as_transient(mmsc: MmscServer) -> None:
    mmsc.fail_next(stall=True)
    async with running(mms_settings(mmsc.url, timeout=0.3)) as notifier:
        with pytest.raises(TransientError, match="no answer"):
            await notifier.send(message())


# -- delivery reports ----------------------------------------------------------------------


class Hook:
    """The VASP side of delivery reports, as the gateway will mount it at /hooks/mm7."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, DeliveryReport | None]] = []
        self.refused: list[str] = []
        self.changed = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            transaction_id, report = parse_delivery_report(
                body, request.headers.get("Content-Type", "")
            )
        except Mm7FormatError as exc:
            self.refused.append(str(exc))
            answer, status = delivery_report_response("", 2007), 400
        else:
            async with self.changed:
                self.reports.append((transaction_id, report))
                self.changed.notify_all()
            answer, status = delivery_report_response(transaction_id), 200
        return web.Response(status=status, body=answer, content_type="text/xml", charset="utf-8")


@pytest.fixture
async def hook() -> AsyncIterator[tuple[Hook, str]]:
    receiver = Hook()
    app = web.Application()
    app.router.add_post("/hooks/mm7", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield receiver, f"http://127.0.0.1:{port}/hooks/mm7"
    await runner.cleanup()


@pytest.mark.parametrize(
    ("mm_status", "delivered"), [("Retrieved", True), ("Rejected", False), ("Expired", False)]
)
@pytest.mark.parametrize("multipart", [False, True])
async def test_final_delivery_report_after_a_submission(
    mmsc: MmscServer, hook: tuple[Hook, str], mm_status: str, delivered: bool, multipart: bool
) -> None:
    receiver, url = hook
    mmsc.report_to, mmsc.report_status, mmsc.report_multipart = url, mm_status, multipart
    async with running(mms_settings(mmsc.url)) as notifier:
        receipt = await notifier.send(message())
    [exchange] = await mmsc.wait_reports(1)
    [(transaction_id, report)] = receiver.reports
    assert report == DeliveryReport("mms", receipt.message_id, delivered, mm_status)
    assert transaction_id == exchange.transaction_id
    assert (exchange.http_status, exchange.status_code) == (200, 1000)
    assert exchange.echoed_transaction_id == exchange.transaction_id


async def test_interim_report_is_not_final(mmsc: MmscServer, hook: tuple[Hook, str]) -> None:
    receiver, url = hook
    mmsc.report_to, mmsc.auto_report = url, False
    async with running(mms_settings(mmsc.url)) as notifier:
        receipt = await notifier.send(message())
    for status in ("Deferred", "Indeterminate", "Forwarded", "Retrieved"):
        exchange = await mmsc.deliver(receipt.message_id, status)
        assert exchange.status_code == 1000  # interim reports are acknowledged all the same
    assert [report for _, report in receiver.reports] == [
        None,
        None,
        None,
        DeliveryReport("mms", receipt.message_id, True, "Retrieved"),
    ]


async def test_garbage_to_the_hook_is_refused_not_crashed(hook: tuple[Hook, str]) -> None:
    receiver, url = hook
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=b"\x00garbage", headers={"Content-Type": "text/xml"}) as rsp:
            assert rsp.status == 400
            code = fromstring(await rsp.read()).find(f".//{{{MM7_NS}}}StatusCode")
    assert code is not None and code.text == "2007"
    assert len(receiver.refused) == 1


# -- parse_delivery_report and delivery_report_response alone ------------------------------


def report_xml(inner: str, transaction_id: str = "dr-1", prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
        f'<env:Envelope xmlns:env="{SOAP_NS}"><env:Header>'
        f'<mm7:TransactionID xmlns:mm7="{MM7_NS}">{transaction_id}</mm7:TransactionID>'
        f'</env:Header><env:Body><DeliveryReportReq xmlns="{MM7_NS}">'
        f"<MM7Version>6.8.0</MM7Version>{inner}</DeliveryReportReq></env:Body></env:Envelope>"
    ).encode()


GOOD_INNER = (
    "<MessageID>m-1</MessageID><Recipient><Number>306912345678</Number></Recipient>"
    "<Sender><ShortCode>1234</ShortCode></Sender><Date>2024-05-01T10:00:00Z</Date>"
    "<MMStatus>Retrieved</MMStatus>"
)
BOMB_PROLOG = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + "]>"
)


def test_parse_a_plain_report() -> None:
    assert parse_delivery_report(report_xml(GOOD_INNER), "text/xml; charset=utf-8") == (
        "dr-1",
        DeliveryReport("mms", "m-1", True, "Retrieved"),
    )


def test_report_from_an_older_schema_release_is_read() -> None:
    body = report_xml(GOOD_INNER).replace(b"REL-6-MM7-1-4", b"REL-5-MM7-1-2")
    _, report = parse_delivery_report(body, "text/xml")
    assert report is not None and report.delivered


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "text/xml"),
        (b"this is not XML at all", "text/xml"),
        (b"<env:Envelope", "text/xml"),
        (report_xml("<lol>&lol9;</lol>" + GOOD_INNER, prolog=BOMB_PROLOG), "text/xml"),
        (
            report_xml(
                "<MessageID>&xxe;</MessageID>",
                prolog='<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
            ),
            "text/xml",
        ),
        (report_xml(GOOD_INNER.replace("<MessageID>m-1</MessageID>", "")), "text/xml"),
        (report_xml(GOOD_INNER.replace("<MMStatus>Retrieved</MMStatus>", "")), "text/xml"),
        (report_xml(GOOD_INNER).replace(b"DeliveryReportReq", b"SubmitReq"), "text/xml"),
        (b"<html><body>hello</body></html>", "text/html"),
        (report_xml(GOOD_INNER), 'multipart/related; boundary="nowhere"'),
        (
            b"--b\r\nContent-ID: <x>\r\n\r\n<a/>\r\n--b--\r\n",
            'multipart/related; boundary="b"; start="<y>"',
        ),
        (report_xml(GOOD_INNER), "text/xml\r\nX-Injected: 1"),
    ],
    ids=[
        "empty",
        "not-xml",
        "truncated",
        "entity-bomb",
        "external-entity",
        "no-message-id",
        "no-mmstatus",
        "wrong-operation",
        "not-soap",
        "multipart-without-parts",
        "multipart-without-start",
        "header-injection",
    ],
)
def test_malformed_reports_raise_mm7_format_error(body: bytes, content_type: str) -> None:
    with pytest.raises(Mm7FormatError):
        parse_delivery_report(body, content_type)


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=400),
        st.integers(0, len(report_xml(GOOD_INNER))).map(lambda n: report_xml(GOOD_INNER)[:n]),
    ),
    content_type=st.sampled_from(
        ["text/xml", "multipart/related; boundary=b", "application/octet-stream", ""]
    ),
)
def test_any_bytes_give_a_report_or_mm7_format_error(data: bytes, content_type: str) -> None:
    try:
        parse_delivery_report(data, content_type)
    except Mm7FormatError:
        pass


def test_delivery_report_response_envelope() -> None:
    root = fromstring(delivery_report_response("dr-42"))
    assert root.find(f"{{{SOAP_NS}}}Header/{{{MM7_NS}}}TransactionID").text == "dr-42"
    rsp = root.find(f"{{{SOAP_NS}}}Body/{{{MM7_NS}}}DeliveryReportRsp")
    assert rsp is not None
    assert rsp.find(f"{{{MM7_NS}}}MM7Version").text == "6.8.0"
    assert rsp.find(f"{{{MM7_NS}}}Status/{{{MM7_NS}}}StatusCode").text == "1000"
    assert rsp.find(f"{{{MM7_NS}}}Status/{{{MM7_NS}}}StatusText").text == "Success"


def test_the_report_names_its_recipient_which_is_mandatory() -> None:
    request = read_delivery_report(report_xml(GOOD_INNER), "text/xml")
    assert (request.message_id, request.recipient, request.mm_status) == (
        "m-1",
        "306912345678",
        "Retrieved",
    )
    no_recipient = GOOD_INNER.replace("<Recipient><Number>306912345678</Number></Recipient>", "")
    with pytest.raises(Mm7FormatError, match="Recipient"):
        read_delivery_report(report_xml(no_recipient), "text/xml")


# -- /hooks/mm7 on the gateway: only the MMSC, only about what we sent ---------------------

VASP, VASP_PASSWORD = "vasp", "mm7-σωστό"
SENT_ID = "MMSC-000001-ab"


class Gateway:
    """The gateway's real HTTP app and receipts on a migrated database, and one MMS sent."""

    def __init__(self, url: str, delivery: Delivery, failures: list[Exception]) -> None:
        self.url = url
        self.delivery = delivery
        self.failures = failures  # raised by the report hook, one per report

    async def post(self, inner: str, auth: tuple[str, str] | None = (VASP, VASP_PASSWORD)) -> int:
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        if auth:
            headers["Authorization"] = basic(*auth)
        async with aiohttp.ClientSession() as http:
            async with http.post(self.url, data=report_xml(inner), headers=headers) as rsp:
                await rsp.read()
                return rsp.status

    async def status(self) -> DeliveryStatus:
        return (await Delivery.get(id=self.delivery.id)).status


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def report_about(message_id: str = SENT_ID, recipient: str = "306912345678") -> str:
    return GOOD_INNER.replace(
        "<MessageID>m-1</MessageID>", f"<MessageID>{message_id}</MessageID>"
    ).replace("306912345678", recipient)


@asynccontextmanager
async def gateway_with(settings: MmsSettings, status: DeliveryStatus) -> AsyncIterator[Gateway]:
    receipts = Receipts(on_failed=lambda delivery, reason: asyncio.sleep(0))
    failures: list[Exception] = []

    async def on_report(report: DeliveryReport) -> None:
        if failures:
            raise failures.pop()
        await receipts.on_report(report)

    async def health() -> dict[str, Any]:
        return {"ok": True}

    async def on_fax(fax: Any) -> None: ...

    delivery = await Delivery.create(
        dedupe_key="message:1:mms:" + NUMBER,
        kind="message",
        channel="mms",
        address=NUMBER,
        text="Missed call",
        status=status,
        next_attempt_at=datetime.now(UTC),
        receipt=SENT_ID if status is DeliveryStatus.SENT else "",
    )
    if status is DeliveryStatus.SENT:
        await receipts.parts_sent(delivery, [SENT_ID])
    app = build_app(health, on_report, FaxSettings(), on_fax, mms=settings)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Gateway(f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/mm7", delivery, failures)
    finally:
        await runner.cleanup()


MMSC_ACCOUNT = mms_settings("http://127.0.0.1:9/mm7", username=VASP, password=VASP_PASSWORD)


async def test_a_report_without_or_with_wrong_credentials_is_401_and_changes_nothing(
    db: str,
) -> None:
    async with gateway_with(MMSC_ACCOUNT, DeliveryStatus.SENT) as gw:
        assert await gw.post(report_about(), auth=None) == 401
        assert await gw.post(report_about(), auth=(VASP, "guess")) == 401
        assert await gw.post(report_about(), auth=("other", VASP_PASSWORD)) == 401
        assert await gw.status() is DeliveryStatus.SENT
        assert await gw.post(report_about()) == 200
        assert await gw.status() is DeliveryStatus.DELIVERED


async def test_report_credentials_of_their_own_take_precedence(db: str) -> None:
    own = replace(MMSC_ACCOUNT, report_username="mmsc", report_password="report-pw")
    async with gateway_with(own, DeliveryStatus.SENT) as gw:
        assert await gw.post(report_about()) == 401  # the VASP account no longer works
        assert await gw.post(report_about(), auth=("mmsc", "report-pw")) == 200


async def test_without_configured_credentials_every_report_is_403(db: str) -> None:
    async with gateway_with(mms_settings("http://127.0.0.1:9/mm7"), DeliveryStatus.SENT) as gw:
        assert await gw.post(report_about(), auth=None) == 403
        assert await gw.post(report_about(), auth=("", "")) == 403
        assert await gw.status() is DeliveryStatus.SENT


@pytest.mark.parametrize(
    ("report_from", "expected"),
    [("192.0.2.0/24", 403), ("192.0.2.7, 127.0.0.0/8", 200), ("::1, 127.0.0.1", 200)],
)
async def test_the_source_address_allowlist(db: str, report_from: str, expected: int) -> None:
    settings = replace(MMSC_ACCOUNT, report_from=report_from)
    async with gateway_with(settings, DeliveryStatus.SENT) as gw:
        assert await gw.post(report_about()) == expected


async def test_a_report_about_a_message_we_did_not_send_there_is_404(db: str) -> None:
    async with gateway_with(MMSC_ACCOUNT, DeliveryStatus.SENT) as gw:
        assert await gw.post(report_about(message_id="MMSC-forged")) == 404
        assert await gw.post(report_about(recipient="306900000000")) == 404  # not its recipient
        assert await gw.post(report_about(recipient="someone@example.org")) == 404
        assert await gw.status() is DeliveryStatus.SENT
        assert not await DeliveryPart.exists(message_id="MMSC-forged")
        assert await gw.post(report_about(recipient="+306912345678/TYPE=PLMN")) == 200
        assert await gw.status() is DeliveryStatus.DELIVERED


async def test_a_report_outrunning_our_record_of_the_send_is_kept(db: str) -> None:
    async with gateway_with(MMSC_ACCOUNT, DeliveryStatus.SENDING) as gw:
        assert await gw.post(report_about(message_id="MMSC-early")) == 200
        assert await DeliveryPart.exists(message_id="MMSC-early", delivery_id=None)


async def test_garbage_and_a_failing_database_never_give_500(db: str) -> None:
    async with gateway_with(MMSC_ACCOUNT, DeliveryStatus.SENT) as gw:
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": basic(VASP, VASP_PASSWORD)}
            async with http.post(gw.url, data=b"\x00", headers=headers) as rsp:
                assert rsp.status == 400
        gw.failures.append(RuntimeError("database is locked"))
        assert await gw.post(report_about()) == 503  # the MMSC tries again later
        assert await gw.post(report_about()) == 200


async def test_the_sandbox_mmsc_reports_with_its_credentials(db: str) -> None:
    # The outbox's row is still `sending` when the MMSC reports (it reports at once).
    async with gateway_with(MMSC_ACCOUNT, DeliveryStatus.SENDING) as gw:
        async with MmscServer(username=VASP, password=VASP_PASSWORD, report_to=gw.url) as mmsc:
            async with running(replace(MMSC_ACCOUNT, url=mmsc.url)) as notifier:
                receipt = await notifier.send(message())
            [exchange] = await mmsc.wait_reports(1)
        assert (exchange.http_status, exchange.status_code) == (200, 1000)
        assert await DeliveryPart.exists(message_id=receipt.message_id)
        async with MmscServer(report_to=gw.url) as anonymous:  # no credentials: refused
            async with running(replace(MMSC_ACCOUNT, url=anonymous.url)) as notifier:
                await notifier.send(message())
            [refused] = await anonymous.wait_reports(1)
        assert refused.http_status == 401


def test_a_report_from_that_is_not_an_address_list_stops_start_up() -> None:
    with pytest.raises(ConfigError, match=r"mms\.report_from"):
        load_settings(None, environ={"FRONTDESK__MMS__REPORT_FROM": "mmsc.example.net"})
