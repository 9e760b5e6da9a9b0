"""MMS channel: MM7 SubmitReq over HTTP to the operator's MMSC (3GPP TS 23.140).

The wire format lives in notifiers/mms/mm7.py; here are the HTTP exchange and the policy that
turns the MMSC's answer into a Receipt, a TransientError or a PermanentError. Delivery
reports come back on our own HTTP endpoint: read_delivery_report and
delivery_report_response (re-exported below) are what that endpoint needs, and
report_credentials says what the MMSC must show there.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping

import aiohttp

from models.settings import MmsSettings
from models.vocab import Channel
from notifiers.base import OutgoingMessage, PermanentError, Receipt, TransientError
from notifiers.mms.mm7 import (
    DeliveryReportReq,
    Mm7FormatError,
    Mm7Status,
    SubmitOutcome,
    build_submit_req,
    delivery_report_response,
    parse_delivery_report,
    parse_submit_rsp,
    read_delivery_report,
)

__all__ = [
    "DeliveryReportReq",
    "Mm7FormatError",
    "MmsNotifier",
    "delivery_report_response",
    "parse_delivery_report",
    "read_delivery_report",
    "report_credentials",
]

# MSISDNs go out as international digits without '+': the form every MMSC accepts, while
# some refuse the '+'. E.164: a country code (never 0) and at most 15 digits in all.
_MSISDN = re.compile(r"\+?([1-9]\d{5,14})")
# A sender of at most 8 digits without '+' is an operator short code, not a phone number.
_SHORT_CODE = re.compile(r"\d{3,8}")

# Service errors (4xxx) that may clear up by themselves; the others (improper
# identification, unsupported version or operation, validation error, service or
# application denied) will refuse this message again however often it is retried.
_TRANSIENT_SERVICE_ERRORS = frozenset({4000, 4005, 4006})


class MmsNotifier:
    channel = Channel.MMS
    # The outbox keeps the Receipt's message_id so that MM7 delivery reports find the send.
    reports_delivery = True

    def __init__(self, settings: MmsSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._sender = _sender_address(settings.sender_address)

    async def start(self) -> None:
        if self._session is not None:
            return
        headers = {}
        if self._settings.username or self._settings.password:
            headers["Authorization"] = _basic_auth(self._settings.username, self._settings.password)
        self._session = aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=self._settings.timeout)
        )

    async def stop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def send(self, message: OutgoingMessage) -> Receipt:
        if self._session is None:
            raise RuntimeError("MmsNotifier.send() before start()")
        number = _MSISDN.fullmatch(message.address.strip())
        if number is None:
            raise PermanentError(f"mms: not an E.164 number: {message.address!r}")
        # Our Delivery id as TransactionID: a resend after a lost answer carries the same
        # id, so an MMSC that deduplicates can tell.
        transaction_id = message.reference or uuid.uuid4().hex
        try:
            body, content_type = build_submit_req(
                transaction_id=transaction_id,
                recipient=number.group(1),
                sender=self._sender,
                vasp_id=self._settings.vasp_id,
                vas_id=self._settings.vas_id,
                subject=message.subject,
                text=message.text,
                attachments=message.attachments,
            )
        except ValueError as exc:
            raise PermanentError(f"mms: cannot build the message: {exc}") from exc
        headers = {"Content-Type": content_type, "SOAPAction": '""'}
        try:
            # No redirects: a POST would turn into a GET, or carry our credentials elsewhere.
            async with self._session.post(
                self._settings.url, data=body, headers=headers, allow_redirects=False
            ) as rsp:
                answer = await rsp.read()
                return _receipt(rsp.status, rsp.headers, answer)
        except TimeoutError as exc:
            timeout = self._settings.timeout
            raise TransientError(f"mms: no answer from the MMSC in {timeout}s") from exc
        except aiohttp.ClientError as exc:
            raise TransientError(f"mms: cannot reach the MMSC: {exc}") from exc


def _receipt(http_status: int, headers: Mapping[str, str], body: bytes) -> Receipt:
    """Judge the MMSC's HTTP answer; SOAP 1.1 sends Faults with HTTP 500, so read first."""
    content_type = headers.get("Content-Type", "")
    if http_status in (401, 403):
        # Every message will meet the same refusal until an operator fixes the config.
        raise PermanentError(
            f"mms: the MMSC refused our credentials (HTTP {http_status}); "
            "check mms.username and mms.password"
        )
    try:
        outcome = parse_submit_rsp(body, content_type)
    except Mm7FormatError as exc:
        raise _http_error(http_status, headers) or TransientError(
            f"mms: unreadable answer from the MMSC (HTTP {http_status}): {exc}"
        ) from exc
    if outcome.status is None:  # a SOAP Fault without an MM7 status in its detail
        if outcome.fault_code.startswith("Server"):
            raise TransientError(f"mms: SOAP Fault {outcome.fault_code}")
        raise PermanentError(f"mms: SOAP Fault {outcome.fault_code}")
    _judge(outcome.status, outcome, _retry_after(headers))
    if not outcome.message_id:
        # Accepted but unnamed: reports could never be matched. Schema-invalid, so treated
        # as an unreadable answer (the retry may duplicate; the MMSC broke the contract).
        raise TransientError(f"mms: MMSC accepted ({outcome.status}) without a MessageID")
    return Receipt(message_id=outcome.message_id)


def _judge(status: Mm7Status, outcome: SubmitOutcome, retry_after: float | None) -> None:
    """Raise for every MM7 status but success (1xxx, including 1100 partial success)."""
    where = f"SOAP Fault {outcome.fault_code}: " if outcome.fault_code else ""
    reason = f"mms: MMSC refused the message: {where}{status}"
    kind = status.code // 1000
    if kind == 1:
        return
    if kind == 2:  # client errors: this request is wrong and will stay wrong
        raise PermanentError(reason)
    if kind == 3:  # server errors: the MMSC could not do it now
        raise TransientError(reason, retry_after)
    if kind == 4 and status.code not in _TRANSIENT_SERVICE_ERRORS:
        raise PermanentError(reason)
    # Transient service errors, and codes outside the table: no reason to give up yet.
    raise TransientError(reason, retry_after)


def _http_error(status: int, headers: Mapping[str, str]) -> Exception | None:
    """The error for a non-2xx answer whose body said nothing readable; None for 2xx."""
    if 200 <= status < 300:
        return None
    if status in (408, 429) or status >= 500:
        return TransientError(f"mms: MMSC answered HTTP {status}", _retry_after(headers))
    # 3xx (moved), 404 (wrong url), 413 (too large)...: sending the same again changes nothing.
    return PermanentError(f"mms: MMSC answered HTTP {status}")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def report_credentials(settings: MmsSettings) -> tuple[str, str] | None:
    """(user, password) the MMSC must show on /hooks/mm7: mms.report_username and
    mms.report_password, else the VASP account's own; None (refuse every report) when
    neither has a password."""
    if settings.report_password:
        return settings.report_username, settings.report_password
    if settings.password:
        return settings.username, settings.password
    return None


def _basic_auth(username: str, password: str) -> str:
    # UTF-8, as RFC 7617 recommends (aiohttp's BasicAuth is deprecated in favour of headers).
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _sender_address(sender: str) -> tuple[str, str] | None:
    """The SenderAddress element for mms.sender_address; None leaves it to the MMSC."""
    sender = sender.strip()
    if not sender:
        return None
    if _SHORT_CODE.fullmatch(sender):
        return ("ShortCode", sender)
    if number := _MSISDN.fullmatch(sender):
        return ("Number", number.group(1))
    return ("RFC2822Address", sender)
