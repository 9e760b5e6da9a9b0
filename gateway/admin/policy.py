"""The outbound policy: which numbers the gateway may make the PBX call for a subscriber.

Every call the gateway places checks its far end here first: a call back (the caller being
called back; the subscriber's own mobile, which rings first, is where the call is placed
from), "Forward calls to me" and the forward scenario's moving of ringing calls (the number
they are moved to), a scheduled call from a task (the customer), and a call an agent puts
through to the subscriber's mobile (agents and extensions are internal: always allowed).

A number's class (models.db.NumberClass) comes from `phonenumbers`:
  another country than the operator's (`locale.default_region`)      international
  MOBILE                                                            mobile
  FIXED_LINE, FIXED_LINE_OR_MOBILE, TOLL_FREE, VOIP, VOICEMAIL       national
  PREMIUM_RATE, SHARED_COST, PERSONAL_NUMBER, UAN, PAGER, and any
  number phonenumbers cannot type (invalid, unassigned range)       premium
VOIP counts as national: in the operator's country such numbers are billed like a fixed
line (UK 056, Greek 70x ranges); premium-rate risk comes from the other types. A number
that cannot be typed is premium: a toll-fraud dialler would rather not be told apart.

A subscriber's `outbound_allowed` lists the classes allowed (default "national,mobile"):
international and premium need listing. A refusal raises OutboundRefused; the command
desk answers it in the subscriber's language and audits it (result refused, detail the
class). A permitted international call is recorded as an audit row (result done, detail
"international") once the PBX took it; `international_calls` lists them by month for the
admins' report (`/international`, `frontdesk international`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import PhoneNumberType as T

from locales import N_, tr
from models.db import AuditEntry, NumberClass, Subscriber

log = logging.getLogger(__name__)

DEFAULT_ALLOWED = frozenset({NumberClass.NATIONAL, NumberClass.MOBILE})
INTERNATIONAL = NumberClass.INTERNATIONAL.value  # the audit detail of a permitted one
PBX = "pbx"  # the audit channel of calls the gateway placed (the command has its own row)
PLACED = "done"  # their result
# How a call came to be placed (the audit row's command starts with it), as the report says.
CALLBACK, TASK, TRANSFER, FORWARD = "callback", "task", "transfer", "forward"
WHAT = {
    CALLBACK: N_("call back"),
    TASK: N_("scheduled call"),
    TRANSFER: N_("put through"),
    FORWARD: N_("forwarded"),
}

_NATIONAL = {T.FIXED_LINE, T.FIXED_LINE_OR_MOBILE, T.TOLL_FREE, T.VOIP, T.VOICEMAIL}

REFUSALS = {
    NumberClass.PREMIUM: N_("Calls to premium numbers are not allowed for this line."),
    NumberClass.INTERNATIONAL: N_("International calls need the operator's permission."),
    NumberClass.NATIONAL: N_("Calls to national numbers are not allowed for this line."),
    NumberClass.MOBILE: N_("Calls to mobile numbers are not allowed for this line."),
}
REPORT_TITLE = N_("International calls in {month}: {count}")
REPORT_NONE = N_("No international calls in {month}.")


class OutboundRefused(Exception):
    """The subscriber's policy does not allow calling this number."""

    def __init__(self, number: str, number_class: NumberClass) -> None:
        super().__init__(f"{number_class.value} number {number} not allowed")
        self.number = number
        self.number_class = number_class


def refusal(lang: str, exc: OutboundRefused) -> str:
    """The answer to a refused call, in the asker's language."""
    return tr(lang, REFUSALS[exc.number_class])


def classify(number: str, region: str) -> NumberClass:
    """What kind of destination `number` is, seen from the operator's `region`."""
    text = number.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return NumberClass.PREMIUM
    home = phonenumbers.country_code_for_region(region)
    if parsed.country_code != home:
        return NumberClass.INTERNATIONAL
    kind = phonenumbers.number_type(parsed)
    if kind == T.MOBILE:
        return NumberClass.MOBILE
    if kind in _NATIONAL:
        return NumberClass.NATIONAL
    return NumberClass.PREMIUM


def allowed_classes(subscriber: Subscriber) -> frozenset[NumberClass]:
    listed = {c.strip() for c in (subscriber.outbound_allowed or "").split(",")}
    return frozenset(c for c in NumberClass if c.value in listed)


def parse_allowed(text: str) -> str:
    """A policy as stored ("national,mobile"), from a comma list; ValueError on a word that
    is no class."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    unknown = [w for w in words if w not in {c.value for c in NumberClass}]
    if unknown:
        raise ValueError(f"not a number class: {', '.join(unknown)}")
    return ",".join(c.value for c in NumberClass if c.value in words)


def check(subscriber: Subscriber, number: str, region: str) -> NumberClass:
    """The number's class if the subscriber may have it called; else OutboundRefused."""
    number_class = classify(number, region)
    if number_class not in allowed_classes(subscriber):
        log.warning(
            "subscriber %s: call to a %s number refused by its outbound policy",
            subscriber.id,
            number_class.value,
        )
        raise OutboundRefused(number, number_class)
    return number_class


async def placed(subscriber: Subscriber, number: str, number_class: NumberClass, what: str) -> None:
    """A call the PBX took: an international one is recorded for the admins' report."""
    if number_class is not NumberClass.INTERNATIONAL:
        return
    await AuditEntry.create(
        channel=PBX,
        actor=number,
        subscriber=subscriber,
        command=f"{what} {number}"[:500],
        result=PLACED,
        detail=INTERNATIONAL,
    )


async def audit_refusal(
    channel: str, actor: str, subscriber: Subscriber | None, what: str, exc: OutboundRefused
) -> None:
    """A refused call in the one audit log (the command desk writes its own rows)."""
    await AuditEntry.create(
        channel=channel,
        actor=actor,
        subscriber=subscriber,
        command=what[:500],
        result="refused",
        detail=exc.number_class.value,
    )


# -- the admins' report -----------------------------------------------------------------------


@dataclass(frozen=True)
class InternationalCall:
    at: datetime
    subscriber: str
    number: str
    country: str  # ISO region code, "" when unknown
    what: str  # CALLBACK, TASK, TRANSFER or FORWARD


def month_bounds(month: str, timezone: str = "UTC") -> tuple[datetime, datetime]:
    """[start, end) of "YYYY-MM" in that time zone; ValueError on a bad month."""
    first = date.fromisoformat(f"{month}-01")
    after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    zone = ZoneInfo(timezone)
    return (
        datetime(first.year, first.month, 1, tzinfo=zone),
        datetime(after.year, after.month, 1, tzinfo=zone),
    )


def this_month(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m")


async def international_calls(month: str, timezone: str = "UTC") -> list[InternationalCall]:
    """Every international call the gateway placed in that month, oldest first."""
    start, end = month_bounds(month, timezone)
    rows = (
        await AuditEntry.filter(
            channel=PBX, result=PLACED, detail=INTERNATIONAL, at__gte=start, at__lt=end
        )
        .order_by("at", "id")
        .select_related("subscriber")
    )
    calls = []
    for row in rows:
        what = row.command.rsplit(" ", 1)[0] if " " in row.command else row.command
        calls.append(
            InternationalCall(
                at=row.at,
                subscriber=row.subscriber.name if row.subscriber else "?",
                number=row.actor,
                country=_country(row.actor),
                what=what,
            )
        )
    return calls


def _country(number: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number, None)) or ""
    except phonenumbers.NumberParseException:
        return ""


def report_lines(lang: str, calls: list[InternationalCall], timezone: str = "UTC") -> list[str]:
    """One line per call (local time, subscriber, number, country, how), no title."""
    zone = ZoneInfo(timezone)
    return [
        f"{c.at.astimezone(zone):%Y-%m-%d %H:%M} {c.subscriber} {c.number} "
        f"{c.country or '?'} ({tr(lang, WHAT[c.what]) if c.what in WHAT else c.what})"
        for c in calls
    ]


async def international_report(lang: str, month: str, timezone: str = "UTC") -> str:
    """The admins' report in their language: a title, then one line per call."""
    calls = await international_calls(month, timezone)
    if not calls:
        return tr(lang, REPORT_NONE, month=month)
    title = tr(lang, REPORT_TITLE, month=month, count=len(calls))
    return "\n".join([title, *report_lines(lang, calls, timezone)])
