"""Call accounting: the monthly usage of each subscriber, as CSV, and its sending to the
operator on the 1st of every month.

A month is the calendar month in the operator's time zone (`locale.default_timezone`),
the same for every subscriber. What is counted (SQL aggregates, one query per source):

- calls by direction (`Call.direction`), and inbound ones by outcome: answered (by an
  agent), forwarded, voicemail (the caller left a message), missed (abandoned); a call
  belongs to the month it started in;
- seconds: each ended call's length, `ended_at - started_at`, rounded to the second;
  minutes: billed by the started minute, per call (`ceil(seconds / 60)`, so a 61-second
  call is 2 minutes); a call that has not ended counts 0;
- voicemails left (`Voicemail.left_at`), messages taken at the desk (`TakenMessage`),
  faxes and their pages (fax notifications);
- SMS parts and MMS sent for the subscriber: `DeliveryPart` rows of its deliveries on
  those channels, in the month the delivery was sent.

Every subscriber has a row, used or not (a subscriber's own with `--subscriber`).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.admin.stats import Period, Sql, faxes, month_period, previous_month, taken, voicemails
from gateway.delivery.attachments import inline
from locales import N_, tr
from models.db import Delivery, DeliveryStatus, Subscriber
from models.vocab import Channel

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
CSV_TYPE = "text/csv"
CHECK_EVERY = 600.0  # seconds between looks at the calendar
CATCH_UP_DAYS = 7  # a gateway down on the 1st sends last month's usage when back, until the 7th

SUBJECT = N_("Frontdesk usage for {month}")
BODY = N_("The usage of every subscriber for {month} is attached ({count} subscribers).")


@dataclass(frozen=True)
class UsageRow:
    subscriber_id: int
    subscriber: str
    month: str
    calls_inbound: int = 0
    calls_outbound: int = 0
    calls_internal: int = 0
    answered: int = 0
    forwarded: int = 0
    voicemail_calls: int = 0
    missed: int = 0
    seconds_inbound: int = 0
    minutes_inbound: int = 0
    seconds_outbound: int = 0
    minutes_outbound: int = 0
    voicemails: int = 0
    messages_taken: int = 0
    faxes: int = 0
    fax_pages: int = 0
    sms_parts: int = 0
    mms: int = 0


COLUMNS = tuple(f.name for f in fields(UsageRow))


async def _calls(period: Period, subscriber_id: int | None) -> dict[int, dict[str, int]]:
    sql = Sql()
    whole = f"CAST(ROUND({sql.seconds('c.ended_at', 'c.started_at')}) AS INTEGER)"
    billed = f"(({whole} + 59) / 60)"

    def sums(direction: str) -> str:
        when = f"c.direction = '{direction}' AND c.ended_at IS NOT NULL"
        return (
            f"SUM(CASE WHEN {when} THEN {whole} ELSE 0 END) AS seconds_{direction}, "
            f"SUM(CASE WHEN {when} THEN {billed} ELSE 0 END) AS minutes_{direction}"
        )

    def count(what: str, name: str) -> str:
        return f"SUM(CASE WHEN {what} THEN 1 ELSE 0 END) AS {name}"

    inbound = "c.direction = 'inbound'"
    params: list[Any] = [sql.at(period.start), sql.at(period.end)]
    scope = ""
    if subscriber_id is not None:
        scope, params = " AND c.subscriber_id = ?", [*params, subscriber_id]
    rows = await sql.rows(
        "SELECT c.subscriber_id AS k, "
        + ", ".join(
            (
                count(inbound, "calls_inbound"),
                count("c.direction = 'outbound'", "calls_outbound"),
                count("c.direction = 'internal'", "calls_internal"),
                count(f"{inbound} AND c.outcome = 'answered'", "answered"),
                count(f"{inbound} AND c.outcome = 'forwarded'", "forwarded"),
                count(f"{inbound} AND c.outcome = 'voicemail'", "voicemail_calls"),
                count(f"{inbound} AND c.outcome = 'abandoned'", "missed"),
                sums("inbound"),
                sums("outbound"),
            )
        )
        + ' FROM "call" c WHERE c.started_at >= ? AND c.started_at < ? '
        f"AND c.subscriber_id IS NOT NULL{scope} GROUP BY c.subscriber_id",
        params,
    )
    return {int(r.pop("k")): {key: int(v or 0) for key, v in r.items()} for r in rows}


async def _parts(period: Period, subscriber_id: int | None) -> dict[tuple[int, str], int]:
    sql = Sql()
    params: list[Any] = [sql.at(period.start), sql.at(period.end)]
    scope = ""
    if subscriber_id is not None:
        scope, params = " AND d.subscriber_id = ?", [*params, subscriber_id]
    rows = await sql.rows(
        "SELECT d.subscriber_id AS k, p.channel AS channel, COUNT(*) AS n "
        "FROM delivery_part p JOIN delivery d ON d.id = p.delivery_id "
        "WHERE p.channel IN ('sms', 'mms') AND d.subscriber_id IS NOT NULL "
        "AND COALESCE(d.sent_at, d.created_at) >= ? AND COALESCE(d.sent_at, d.created_at) < ?"
        f"{scope} GROUP BY d.subscriber_id, p.channel",
        params,
    )
    return {(int(r["k"]), str(r["channel"])): int(r["n"]) for r in rows}


async def usage(month: str, tz: str, subscriber_id: int | None = None) -> list[UsageRow]:
    """Every subscriber's usage in `month` (YYYY-MM, in the time zone `tz`)."""
    period = month_period(month, tz)
    query = Subscriber.all().order_by("id")
    if subscriber_id is not None:
        query = query.filter(id=subscriber_id)
    subscribers = await query.values_list("id", "name")
    calls = await _calls(period, subscriber_id)
    left = await voicemails(period, subscriber_id)
    took = await taken(period, "subscriber", subscriber_id)
    faxed = await faxes(period, subscriber_id)
    parts = await _parts(period, subscriber_id)
    return [
        UsageRow(
            subscriber_id=sid,
            subscriber=str(name),
            month=period.label,
            **calls.get(sid, {}),
            voicemails=left.get(sid, 0),
            messages_taken=took.get(sid, 0),
            faxes=faxed.get(sid, (0, 0))[0],
            fax_pages=faxed.get(sid, (0, 0))[1],
            sms_parts=parts.get((sid, Channel.SMS), 0),
            mms=parts.get((sid, Channel.MMS), 0),
        )
        for sid, name in subscribers
    ]


def to_csv(rows: Sequence[UsageRow]) -> bytes:
    """The CSV (UTF-8, a header row, comma-separated, CRLF line ends as RFC 4180)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(astuple(row) for row in rows)
    return out.getvalue().encode()


def filename(month: str, subscriber_id: int | None = None) -> str:
    return f"usage-{month}{f'-{subscriber_id}' if subscriber_id is not None else ''}.csv"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MonthlyUsage:
    """On the 1st of each month (operator's time zone), last month's usage CSV by email to
    the operator's `reports.email` addresses, through the outbox, once per month and
    address (the delivery's dedupe key). Off when no address is set or no email channel."""

    def __init__(
        self,
        addresses: Sequence[str],
        tz: str,
        language: str,
        on_new: Callable[[], None] = lambda: None,
        clock: Clock = _utcnow,
    ) -> None:
        self.addresses = [a.strip() for a in addresses if a.strip()]
        self.tz = tz
        self.language = language
        self.on_new = on_new
        self.clock = clock  # replaceable: tests move time on

    @property
    def enabled(self) -> bool:
        return bool(self.addresses)

    async def due(self) -> int:
        """Send last month's usage if today is the 1st (or a day of the first week, when
        it has not been sent yet). Returns how many emails were queued."""
        now = self.clock()
        if not self.enabled or now.astimezone(ZoneInfo(self.tz)).day > CATCH_UP_DAYS:
            return 0
        month = previous_month(now, self.tz)
        keys = {a: f"usage:{month}:email:{a}" for a in self.addresses}
        missing = [a for a, key in keys.items() if not await Delivery.exists(dedupe_key=key)]
        if not missing:
            return 0
        rows = await usage(month, self.tz)
        attachment = inline(filename(month), CSV_TYPE, to_csv(rows))
        lang = self.language
        for address in missing:
            await Delivery.create(
                dedupe_key=keys[address],
                kind="usage_report",
                channel=Channel.EMAIL,
                address=address,
                subject=tr(lang, SUBJECT, month=month),
                text=tr(lang, BODY, month=month, count=len(rows)),
                attachments=[attachment],
                status=DeliveryStatus.PENDING,
                next_attempt_at=_utcnow(),  # at once, by the outbox's own clock
            )
        log.info("usage for %s queued to %d address(es)", month, len(missing))
        self.on_new()
        return len(missing)
