"""MM7 (3GPP TS 23.140, schema REL-6-MM7-1-4) wire format: SOAP 1.1 envelopes in MIME.

Pure functions, no I/O: build a SubmitReq, read a SubmitRsp or SOAP Fault, read a
DeliveryReportReq and build its DeliveryReportRsp. Everything from the network is parsed
with defusedxml (no DTDs, no entities) and matched by local name, because MMSCs answer in
whichever MM7 schema release they implement (REL-5-MM7-1-2, REL-6-MM7-1-4, ...).
"""

from __future__ import annotations

import email.parser
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from email.utils import encode_rfc2231

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from models.vocab import Channel
from notifiers.base import Attachment, DeliveryReport

__all__ = [
    "MM7_NS",
    "MM7_VERSION",
    "SOAP_ENV_NS",
    "DeliveryReportReq",
    "Mm7FormatError",
    "Mm7Status",
    "SubmitOutcome",
    "build_submit_req",
    "delivery_report_response",
    "parse_delivery_report",
    "parse_submit_rsp",
    "read_delivery_report",
]

MM7_NS = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"
SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
MM7_VERSION = "6.8.0"
ET.register_namespace("env", SOAP_ENV_NS)
ET.register_namespace("mm7", MM7_NS)

SOAP_CONTENT_ID = "mm7-soap@frontdesk"
CONTENT_CONTENT_ID = "mm7-content@frontdesk"

# TS 23.140 table of request status codes, for answers that carry no StatusText.
STATUS_TEXT = {
    1000: "Success",
    1100: "Partial success",
    2000: "Client error",
    2001: "Operation restricted",
    2002: "Address Error",
    2003: "Address Not Found",
    2004: "Multimedia content refused",
    2005: "Message ID Not found",
    2006: "LinkedID not found",
    2007: "Message format corrupt",
    2008: "Application ID not found",
    2009: "Reply Application ID not found",
    3000: "Server Error",
    3001: "Not Possible",
    3002: "Message rejected",
    3003: "Multiple addresses not supported",
    3004: "Application Addressing not supported",
    4000: "General service error",
    4001: "Improper identification",
    4002: "Unsupported version",
    4003: "Unsupported operation",
    4004: "Validation error",
    4005: "Service error",
    4006: "Service unavailable",
    4007: "Service denied",
    4008: "Application denied",
}

# MMStatus values after which nothing more will be reported for the recipient.
FINAL_MM_STATUSES = frozenset({"Retrieved", "Expired", "Rejected", "Unrecognised"})
# Known but interim: Deferred (only the notification was fetched), Indeterminate (the
# network cannot tell yet), Forwarded (passed on unread; a later report may follow).
INTERIM_MM_STATUSES = frozenset({"Deferred", "Indeterminate", "Forwarded"})

# Characters XML 1.0 cannot carry at all; a subject holding one would void the envelope.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Mm7FormatError(ValueError):
    """Bytes that are not a well-formed MM7 message of the expected kind."""


@dataclass(frozen=True)
class Mm7Status:
    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


@dataclass(frozen=True)
class SubmitOutcome:
    """The MMSC's answer to a SubmitReq: a SubmitRsp, or a SOAP Fault (``fault_code`` set,
    e.g. "Client"/"Server"; ``status`` from the fault's detail when it had one)."""

    status: Mm7Status | None
    message_id: str = ""
    fault_code: str = ""


@dataclass(frozen=True)
class DeliveryReportReq:
    """A DeliveryReportReq as read: whom it is about (``recipient``, as the MMSC wrote it:
    an MSISDN, possibly with "+" or "/TYPE=PLMN", an e-mail address or a short code), and
    ``report``, None while the outcome is still open."""

    transaction_id: str
    message_id: str
    recipient: str
    mm_status: str
    report: DeliveryReport | None


# -- building ------------------------------------------------------------------------------


def build_submit_req(
    *,
    transaction_id: str,
    recipient: str,
    sender: tuple[str, str] | None,
    vasp_id: str,
    vas_id: str,
    subject: str,
    text: str,
    attachments: Iterable[Attachment],
) -> tuple[bytes, str]:
    """The HTTP body and Content-Type of a SubmitReq for one recipient Number.

    ``sender`` is (element, value) with element "Number" or "ShortCode" or "RFC2822Address".
    """
    envelope, body = _envelope(transaction_id)
    submit = ET.SubElement(body, _mm7("SubmitReq"))
    _text(submit, "MM7Version", MM7_VERSION)
    ident = ET.SubElement(submit, _mm7("SenderIdentification"))
    if vasp_id:
        _text(ident, "VASPID", vasp_id)
    if vas_id:
        _text(ident, "VASID", vas_id)
    if sender is not None:
        _text(ET.SubElement(ident, _mm7("SenderAddress")), *sender)
    to = ET.SubElement(ET.SubElement(submit, _mm7("Recipients")), _mm7("To"))
    _text(to, "Number", recipient)
    _text(submit, "DeliveryReport", "true")
    if subject:
        _text(submit, "Subject", subject)
    content = ET.SubElement(submit, _mm7("Content"))
    content.set("href", f"cid:{CONTENT_CONTENT_ID}")
    content.set("allowAdaptations", "true")
    soap = ET.tostring(envelope, encoding="utf-8", xml_declaration=True)

    text_headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "8bit"),
        ("Content-ID", "<part0@frontdesk>"),
    ]
    mm_parts = [_mime_part(text_headers, text.encode())]
    mm_parts += [_attachment_part(n, a) for n, a in enumerate(attachments, 1)]
    mm_boundary = _boundary()
    mm_content = _multipart(mm_parts, mm_boundary)
    outer = [
        _mime_part(
            [("Content-Type", 'text/xml; charset="utf-8"'), ("Content-ID", f"<{SOAP_CONTENT_ID}>")],
            soap,
        ),
        _mime_part(
            [
                ("Content-Type", f'multipart/mixed; boundary="{mm_boundary}"'),
                ("Content-ID", f"<{CONTENT_CONTENT_ID}>"),
            ],
            mm_content,
        ),
    ]
    boundary = _boundary()
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="text/xml"; start="<{SOAP_CONTENT_ID}>"'
    )
    return _multipart(outer, boundary), content_type


def delivery_report_response(transaction_id: str, status_code: int = 1000) -> bytes:
    """The DeliveryReportRsp envelope (text/xml) answering a DeliveryReportReq.

    1000 acknowledges the report; for a report that could not be read answer 2007
    (message format corrupt) with an empty transaction id if none was found.
    """
    envelope, body = _envelope(transaction_id)
    rsp = ET.SubElement(body, _mm7("DeliveryReportRsp"))
    _text(rsp, "MM7Version", MM7_VERSION)
    status = ET.SubElement(rsp, _mm7("Status"))
    _text(status, "StatusCode", str(status_code))
    _text(status, "StatusText", STATUS_TEXT.get(status_code, ""))
    return ET.tostring(envelope, encoding="utf-8", xml_declaration=True)


def _envelope(transaction_id: str) -> tuple[ET.Element, ET.Element]:
    envelope = ET.Element(f"{{{SOAP_ENV_NS}}}Envelope")
    header = ET.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Header")
    tid = _text(header, "TransactionID", transaction_id)
    tid.set(f"{{{SOAP_ENV_NS}}}mustUnderstand", "1")
    return envelope, ET.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Body")


def _mm7(name: str) -> str:
    return f"{{{MM7_NS}}}{name}"


def _text(parent: ET.Element, name: str, value: str) -> ET.Element:
    element = ET.SubElement(parent, _mm7(name))
    element.text = _NOT_XML_CHAR.sub("", value)
    return element


def _boundary() -> str:
    # 122 random bits: the chance of meeting it inside an attachment is nil.
    return f"=_frontdesk_{uuid.uuid4().hex}"


def _mime_part(headers: list[tuple[str, str]], body: bytes) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode("ascii") + b"\r\n" + body


def _multipart(parts: list[bytes], boundary: str) -> bytes:
    delimiter = b"--" + boundary.encode("ascii")
    return b"".join(delimiter + b"\r\n" + p + b"\r\n" for p in parts) + delimiter + b"--\r\n"


def _attachment_part(number: int, attachment: Attachment) -> bytes:
    content_type = attachment.content_type.strip() or "application/octet-stream"
    if not re.fullmatch(r"[\w.+-]+/[\w.+-]+", content_type):
        raise ValueError(f"not a plain MIME type: {content_type!r}")
    name = _filename_param(attachment.filename or f"attachment-{number}")
    headers = [
        ("Content-Type", f"{content_type}; {name.replace('filename', 'name', 1)}"),
        ("Content-Disposition", f"attachment; {name}"),
        # Binary: HTTP is 8-bit clean, and it spares MMS size limits base64's third.
        ("Content-Transfer-Encoding", "binary"),
        ("Content-ID", f"<part{number}@frontdesk>"),
    ]
    return _mime_part(headers, attachment.data)


def _filename_param(filename: str) -> str:
    """filename="..." for plain ASCII names, RFC 2231 filename*= for the rest (Greek...)."""
    if filename.isascii() and filename.isprintable() and not set(filename) & set('"\\'):
        return f'filename="{filename}"'
    return f"filename*={encode_rfc2231(filename, 'utf-8')}"


# -- parsing -------------------------------------------------------------------------------


def parse_submit_rsp(body: bytes, content_type: str) -> SubmitOutcome:
    """Read the answer to a SubmitReq: a SubmitRsp or a SOAP Fault; Mm7FormatError otherwise."""
    _, operation = _soap_operation(body, content_type)
    if _local(operation.tag) == "Fault":
        return _fault(operation)
    if _local(operation.tag) != "SubmitRsp":
        raise Mm7FormatError(f"expected SubmitRsp, got {_local(operation.tag)}")
    status = _status(operation)
    if status is None:
        raise Mm7FormatError("SubmitRsp without Status/StatusCode")
    return SubmitOutcome(status=status, message_id=_child_text(operation, "MessageID"))


def parse_delivery_report(body: bytes, content_type: str) -> tuple[str, DeliveryReport | None]:
    """(TransactionID, report) of a DeliveryReportReq; see read_delivery_report."""
    request = read_delivery_report(body, content_type)
    return request.transaction_id, request.report


def read_delivery_report(body: bytes, content_type: str) -> DeliveryReportReq:
    """Read a DeliveryReportReq posted by the MMSC.

    ``content_type`` is the whole Content-Type header (with its boundary and start
    parameters), not aiohttp's ``request.content_type``. The body is a SOAP envelope,
    bare (text/xml) or as the root part of a multipart/related.

    The report is None while the outcome is still open (MMStatus Deferred, Indeterminate,
    Forwarded, or a value this schema release does not know): acknowledge it and wait for
    the next one. Otherwise ``delivered`` is True for Retrieved only. Raises
    Mm7FormatError (a ValueError) for anything that is not a well-formed report, also
    one without the Recipient it is about (mandatory: reports are checked against it).
    """
    transaction_id, operation = _soap_operation(body, content_type)
    if _local(operation.tag) != "DeliveryReportReq":
        raise Mm7FormatError(f"expected DeliveryReportReq, got {_local(operation.tag)}")
    message_id = _child_text(operation, "MessageID")
    if not message_id:
        raise Mm7FormatError("DeliveryReportReq without MessageID")
    recipient = _first_child_text(_child(operation, "Recipient"))
    if not recipient:
        raise Mm7FormatError("DeliveryReportReq without Recipient")
    mm_status = _child_text(operation, "MMStatus")
    if not mm_status:
        raise Mm7FormatError("DeliveryReportReq without MMStatus")
    report = None
    if mm_status in FINAL_MM_STATUSES:
        report = DeliveryReport(
            channel=Channel.MMS,
            message_id=message_id,
            delivered=mm_status == "Retrieved",
            detail=mm_status,
        )
    return DeliveryReportReq(transaction_id, message_id, recipient, mm_status, report)


def _soap_operation(body: bytes, content_type: str) -> tuple[str, ET.Element]:
    """(TransactionID, the first element of the SOAP Body) of a bare or multipart message."""
    root = _parse_xml(_soap_part(body, content_type))
    if _local(root.tag) != "Envelope":
        raise Mm7FormatError(f"not a SOAP envelope: <{_local(root.tag)}>")
    header = _child(root, "Header")
    soap_body = _child(root, "Body")
    if soap_body is None or len(soap_body) == 0:
        raise Mm7FormatError("SOAP envelope without a Body element")
    transaction_id = _child_text(header, "TransactionID") if header is not None else ""
    return transaction_id, soap_body[0]


def _soap_part(body: bytes, content_type: str) -> bytes:
    """The SOAP envelope's bytes: the body itself, or the start part of a multipart."""
    if "\r" in content_type or "\n" in content_type:
        raise Mm7FormatError("Content-Type spans lines")
    if not content_type.strip().lower().startswith("multipart/"):
        return body
    head = f"Content-Type: {content_type}\r\n\r\n".encode("ascii", "replace")
    try:
        message = email.parser.BytesParser().parsebytes(head + body)
    except RecursionError as exc:  # the parser recurses once per nested multipart
        raise Mm7FormatError("multipart nested too deeply") from exc
    payload = message.get_payload() if message.is_multipart() else None
    parts = [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
    if not parts:
        raise Mm7FormatError("multipart body without parts")
    start = _strip_cid(message.get_param("start", header="content-type"))
    chosen: Message = parts[0]  # RFC 2387: without `start`, the root is the first part
    if start:
        matching = [p for p in parts if _strip_cid(p.get("Content-ID")) == start]
        if not matching:
            raise Mm7FormatError(f"no part with the start Content-ID <{start}>")
        chosen = matching[0]
    soap = chosen.get_payload(decode=True)
    if not isinstance(soap, bytes):
        raise Mm7FormatError("the SOAP part is itself a multipart")
    return soap


def _strip_cid(value: object) -> str:
    return str(value).strip().strip("<>") if isinstance(value, str) else ""


def _parse_xml(data: bytes) -> ET.Element:
    try:
        # SOAP 1.1 forbids a DTD; refusing it also stops entity expansion bombs early.
        root: ET.Element = fromstring(data, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, LookupError, ValueError) as exc:
        # LookupError, ValueError: an encoding= that expat cannot use ("x-nope", "cp932").
        raise Mm7FormatError(f"not a readable XML document: {exc}") from exc
    return root


def _fault(fault: ET.Element) -> SubmitOutcome:
    fault_code = _child_text(fault, "faultcode").rpartition(":")[2] or "Server"
    detail = _child(fault, "detail")
    status = None
    if detail is not None:
        # RSErrorRsp/Status/StatusCode per TS 23.140; some MMSCs put Status directly.
        code = next((e for e in detail.iter() if _local(e.tag) == "StatusCode"), None)
        if code is not None:
            status = _status_from(code, detail)
    if status is None:
        text = _child_text(fault, "faultstring")
        described = f"{fault_code} ({text})" if text else fault_code
        return SubmitOutcome(status=None, fault_code=described)
    return SubmitOutcome(status=status, fault_code=fault_code)


def _status(operation: ET.Element) -> Mm7Status | None:
    status = _child(operation, "Status")
    code = _child(status, "StatusCode") if status is not None else None
    if status is None or code is None:
        return None
    return _status_from(code, status)


def _status_from(code: ET.Element, scope: ET.Element) -> Mm7Status:
    try:
        number = int((code.text or "").strip())
    except ValueError as exc:
        raise Mm7FormatError(f"StatusCode is not a number: {code.text!r}") from exc
    text = next((e.text or "" for e in scope.iter() if _local(e.tag) == "StatusText"), "")
    return Mm7Status(number, text.strip() or STATUS_TEXT.get(number, ""))


def _local(tag: object) -> str:
    # Comments and processing instructions have a function as tag; they match nothing.
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _child(parent: ET.Element | None, name: str) -> ET.Element | None:
    if parent is None:
        return None
    return next((c for c in parent if _local(c.tag) == name), None)


def _child_text(parent: ET.Element | None, name: str) -> str:
    element = _child(parent, name)
    return (element.text or "").strip() if element is not None else ""


def _first_child_text(parent: ET.Element | None) -> str:
    """The text of the first element inside `parent` (Number, RFC2822Address...)."""
    element = next((c for c in parent if _local(c.tag)), None) if parent is not None else None
    return (element.text or "").strip() if element is not None else ""
