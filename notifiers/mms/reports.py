"""/hooks/mm7: MM7 delivery reports from the MMSC, and only from it.

Anyone who can reach the port could otherwise mark an MMS delivered (or failed, and
trigger a fallback). A report is taken only when
- it comes from an address in `mms.report_from` (when set): else 403;
- it carries the MMSC's HTTP Basic credentials (`report_credentials`): else 401, and 403
  for everyone when none are configured;
- it names a message id we were given for an MMS to that very recipient: else 404. The
  MMSC may report before the outbox has stored the id (it answers the submit, then
  reports at once), so an MMS to that recipient that is still being sent also counts.
Unreadable reports get 400 (MM7 status 2007); a database failure 503, so the MMSC
retries. The answer bodies are MM7 DeliveryReportRsp envelopes.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from models.db import Delivery, DeliveryPart, DeliveryStatus
from models.settings import MmsSettings, parse_networks
from models.vocab import Channel
from notifiers.base import DeliveryReport
from notifiers.mms.client import (
    DeliveryReportReq,
    Mm7FormatError,
    delivery_report_response,
    read_delivery_report,
    report_credentials,
)

log = logging.getLogger(__name__)

ReportHook = Callable[[DeliveryReport], Awaitable[None]]
MM7_SETTINGS: web.AppKey[MmsSettings] = web.AppKey("mm7_settings")
REALM = 'Basic realm="frontdesk-mm7", charset="UTF-8"'
MESSAGE_ID_NOT_FOUND = 2005  # TS 23.140 status for a report about a message we never sent
_MSISDN = re.compile(r"\+?([1-9]\d{5,14})")


def install(app: web.Application, settings: MmsSettings) -> None:
    """Who may post reports (before the app starts); without it every report is refused."""
    app[MM7_SETTINGS] = settings


def mm7_handler(on_report: ReportHook) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        refused = _refuse_caller(request, request.app.get(MM7_SETTINGS))
        if refused is not None:
            return refused
        try:
            report = read_delivery_report(
                await request.read(), request.headers.get("Content-Type", "")
            )
        except Mm7FormatError as exc:
            log.warning("MM7 delivery report refused: %s", exc)
            return _answer(400, "", 2007)
        try:
            if not await sent_to(report.message_id, report.recipient):
                return _not_ours(report)
            if report.report is not None:  # None: an interim status, acknowledged only
                await on_report(report.report)
        except Exception:  # the database, most likely: the MMSC should try again later
            log.exception("MM7 delivery report for %s not recorded", report.message_id)
            return _answer(503, report.transaction_id, 3000)
        return _answer(200, report.transaction_id, 1000)

    return handle


def _refuse_caller(request: web.Request, settings: MmsSettings | None) -> web.Response | None:
    """403 or 401 for anyone but the configured MMSC; None lets the request in."""
    credentials = report_credentials(settings) if settings is not None else None
    if settings is None or credentials is None:
        log.warning("MM7 delivery report refused: no MMSC credentials configured")
        return web.Response(status=403, text="MM7 delivery reports are not configured\n")
    if not _allowed_address(request.remote, settings.report_from):
        log.warning("MM7 delivery report refused from %s (not in mms.report_from)", request.remote)
        return web.Response(status=403, text="forbidden\n")
    if not _basic_auth_matches(request.headers.get("Authorization", ""), credentials):
        log.warning("MM7 delivery report refused from %s: bad credentials", request.remote)
        return web.Response(
            status=401, text="authorization required\n", headers={"WWW-Authenticate": REALM}
        )
    return None


def _allowed_address(remote: str | None, report_from: str) -> bool:
    allowed = parse_networks(report_from)
    if not allowed:
        return True
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d
    return any(address in network for network in allowed)


def _basic_auth_matches(header: str, credentials: tuple[str, str]) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    user, colon, password = decoded.partition(":")
    # Both compared, in constant time, whatever the first one gave.
    user_ok = hmac.compare_digest(user.encode(), credentials[0].encode())
    password_ok = hmac.compare_digest(password.encode(), credentials[1].encode())
    return bool(colon) and user_ok and password_ok


async def sent_to(message_id: str, recipient: str) -> bool:
    """Whether we sent an MMS to `recipient` that the MMSC named `message_id`, or are
    sending one to it right now (its id not stored yet)."""
    number = _e164(recipient)
    if number is None:
        return False
    to_them = Delivery.filter(channel=Channel.MMS, address=number)
    # `sending` first: the send's outcome may be stored between two of these reads, and
    # once it is no longer sending, its receipt and parts are there to be read.
    if await to_them.filter(status=DeliveryStatus.SENDING).exists():
        return True
    if await to_them.filter(receipt=message_id).exists():
        return True
    part = await DeliveryPart.get_or_none(channel=Channel.MMS, message_id=message_id)
    delivery_id = part.delivery_id if part is not None else None  # type: ignore[attr-defined]
    return delivery_id is not None and await to_them.filter(id=delivery_id).exists()


def _e164(recipient: str) -> str | None:
    """+digits of an MM7 Number ("306912345678", "+30...", "30.../TYPE=PLMN"); else None."""
    number = _MSISDN.fullmatch(recipient.strip().split("/", 1)[0])
    return f"+{number.group(1)}" if number else None


def _not_ours(report: DeliveryReportReq) -> web.Response:
    log.warning(
        "MM7 delivery report refused: %s was not sent to %s", report.message_id, report.recipient
    )
    return _answer(404, report.transaction_id, MESSAGE_ID_NOT_FOUND)


def _answer(status: int, transaction_id: str, mm7_status: int) -> web.Response:
    return web.Response(
        status=status,
        body=delivery_report_response(transaction_id, mm7_status),
        content_type="text/xml",
        charset="utf-8",
    )
