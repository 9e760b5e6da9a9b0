"""The subscriber's diary: book appointments without double booking, list a day, send an .ics.

Times are stored in UTC and reasoned about on the subscriber's wall clock (working hours,
days), so a DST change moves nothing a person would notice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
from tortoise.transactions import in_transaction

from gateway.delivery.attachments import inline
from gateway.delivery.notices import NewNotification
from gateway.diary.render import AppointmentPayload
from models.db import Appointment, Subscriber, Urgency
from models.schedule import WeekPlan, load_plan, local_instant
from models.vocab import Kind, Scenario

# Bookable hours are the subscriber's schedule's `agent` stretches (models/schedule.py);
# a subscriber without a schedule has WORKDAY_START-WORKDAY_END every day.
DEFAULT_LENGTH = timedelta(minutes=30)
WORKDAY_START = time(9, 0)  # local wall clock, inclusive
WORKDAY_END = time(18, 0)  # local wall clock: an appointment may end exactly then
SLOT_STEP = timedelta(minutes=15)  # offered alternatives start on the quarter hour
FREE_SLOTS = 3  # how many alternatives an Overlap offers
SEARCH_DAYS = 14  # how many days after the requested one to look for alternatives

UID_DOMAIN = "frontdesk"
PRODID = "-//Frontdesk//Diary//EN"
ICS_TYPE = "text/calendar; charset=utf-8; method=PUBLISH"


class DiaryError(ValueError):
    """A booking the diary refuses; the message is short English, callers localise by type."""


class InThePast(DiaryError):
    """The requested start has already passed."""


class OutsideWorkingHours(DiaryError):
    """The appointment would start before or end after the working day."""


class Overlap(Exception):
    """The requested time collides with a booking; `free` holds the nearest free starts."""

    def __init__(self, free: list[datetime]) -> None:
        self.free = free  # aware, in the subscriber's timezone, best first (up to FREE_SLOTS)
        offered = ", ".join(f"{slot:%Y-%m-%d %H:%M}" for slot in free) or "none"
        super().__init__(f"that time is already booked; free: {offered}")


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    _require_aware(now, "now")
    return now


def _require_aware(value: datetime, what: str) -> None:
    # A naive time is a programming error (whose clock?), not something to tell a caller.
    if value.tzinfo is None or value.utcoffset() is None:
        raise TypeError(f"{what} must be a timezone-aware datetime")


def _local(on: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time on a local date."""
    return datetime.combine(on, at, tzinfo=zone).astimezone(UTC)


def _workday(on: date, zone: ZoneInfo, plan: WeekPlan | None) -> list[tuple[datetime, datetime]]:
    """The bookable windows (UTC) of a local day, in order: the schedule's `agent`
    stretches (wall-clock minutes, so DST moves nothing), else the fixed working day."""
    if plan is None:
        return [(_local(on, WORKDAY_START, zone), _local(on, WORKDAY_END, zone))]
    return [
        (local_instant(on, a, zone), local_instant(on, b, zone))
        for a, b in plan.windows(on, Scenario.AGENT)
    ]


def _overlaps(start: datetime, end: datetime, busy: Iterable[tuple[datetime, datetime]]) -> bool:
    # Half-open intervals: [09:00, 09:30) and [09:30, 10:00) do not collide.
    return any(b_start < end and start < b_end for b_start, b_end in busy)


def _grid(on: date, zone: ZoneInfo, plan: WeekPlan | None) -> list[tuple[datetime, datetime]]:
    """Candidate starts (UTC) of a local working day, every SLOT_STEP from each opening,
    each with the closing of its window."""
    starts: list[tuple[datetime, datetime]] = []
    for opening, closing in _workday(on, zone, plan):
        at = opening
        while at < closing:
            starts.append((at, closing))
            at += SLOT_STEP
    return starts


def _candidates(
    start: datetime, zone: ZoneInfo, plan: WeekPlan | None
) -> Iterator[tuple[datetime, datetime]]:
    """Alternatives (start, closing) in the order a receptionist offers them: later the
    same day, then earlier the same day (nearest first), then the following days from
    opening time."""
    requested_day = start.astimezone(zone).date()
    grid = _grid(requested_day, zone, plan)
    yield from (slot for slot in grid if slot[0] > start)
    yield from (slot for slot in reversed(grid) if slot[0] < start)
    for offset in range(1, SEARCH_DAYS + 1):
        yield from _grid(requested_day + timedelta(days=offset), zone, plan)


def _free_slots(
    start: datetime,
    length: timedelta,
    busy: list[tuple[datetime, datetime]],
    zone: ZoneInfo,
    now: datetime,
    limit: int = FREE_SLOTS,
    plan: WeekPlan | None = None,
) -> list[datetime]:
    """Up to `limit` free starts near `start` (aware, in `zone`), none in the past, none
    outside working hours, none overlapping `busy` nor each other."""
    found: list[tuple[datetime, datetime]] = []
    for candidate, closing in _candidates(start, zone, plan):
        if len(found) == limit:
            break
        end = candidate + length
        if candidate < now or end > closing:
            continue
        if _overlaps(candidate, end, busy) or _overlaps(candidate, end, found):
            continue
        found.append((candidate, end))
    return [slot.astimezone(zone) for slot, _ in found]


def _check_bookable(
    start: datetime, end: datetime, zone: ZoneInfo, now: datetime, plan: WeekPlan | None
) -> None:
    if start < now:
        raise InThePast("that time has already passed")
    windows = _workday(start.astimezone(zone).date(), zone, plan)
    if not any(opening <= start and end <= closing for opening, closing in windows):
        hours = ", ".join(
            f"{a.astimezone(zone):%H:%M}-{b.astimezone(zone):%H:%M}" for a, b in windows
        )
        raise OutsideWorkingHours(f"outside working hours ({hours or 'closed that day'})")


async def _busy(subscriber: Subscriber, since: datetime, until: datetime) -> list[Appointment]:
    """The subscriber's appointments that intersect [since, until)."""
    return (
        await Appointment.filter(
            subscriber_id=subscriber.id, starts_at__lt=until, ends_at__gt=since
        )
        .order_by("starts_at", "id")
        .all()
    )


async def _overlap(
    subscriber: Subscriber,
    start: datetime,
    length: timedelta,
    zone: ZoneInfo,
    now: datetime,
    plan: WeekPlan | None,
    moving: int | None = None,
) -> Overlap:
    """The Overlap for `start`, with the nearest free alternatives (the appointment being
    moved, if any, is not in the way)."""
    day_start = _local(start.astimezone(zone).date(), time(0), zone)
    window_end = day_start + timedelta(days=SEARCH_DAYS + 2)
    busy = [
        (a.starts_at, a.ends_at)
        for a in await _busy(subscriber, day_start, window_end)
        if a.id != moving
    ]
    return Overlap(_free_slots(start, length, busy, zone, now, plan=plan))


async def book(
    subscriber: Subscriber,
    start: datetime,
    name: str,
    note: str = "",
    length: timedelta = DEFAULT_LENGTH,
    *,
    now: datetime | None = None,
    phone: str = "",
    lang: str = "",
) -> Appointment:
    """Book [start, start + length) in the subscriber's diary. `phone` and `lang`: the end
    customer's mobile (E.164) and language, when known, for the day-before reminder.

    Raises InThePast or OutsideWorkingHours (both DiaryError) for a time that cannot be
    booked, and Overlap, with the nearest free alternatives, when it collides with a booking.
    `now` is injectable for tests; the diary works in whole minutes (seconds are dropped).

    Racing bookings: the check and the insert run in one transaction.
    - SQLite: tortoise serialises transactions on its single connection, so in one process
      the second booking sees the first and gets Overlap. Another process on the same file
      (WAL) cannot commit a write from a stale snapshot: its INSERT fails with "database is
      locked" (sqlite3 OperationalError) rather than double booking.
    - PostgreSQL (READ COMMITTED): two transactions could both see the slot free. The
      subscriber's row is therefore locked FOR UPDATE first (tortoise skips that on SQLite),
      which serialises one subscriber's bookings. Rows written outside book() bypass it; an
      EXCLUDE USING gist (subscriber_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
      constraint would make the database itself refuse, if we move there.
    """
    _require_aware(start, "start")
    if not name.strip():
        raise DiaryError("an appointment needs a name")
    if length <= timedelta(0):
        raise DiaryError("an appointment must last some time")
    moment = _now(now)
    zone = ZoneInfo(subscriber.timezone)
    start = start.astimezone(UTC).replace(second=0, microsecond=0)
    end = start + length
    plan = await load_plan(subscriber.id)  # the schedule's agent hours, if it has one
    _check_bookable(start, end, zone, moment, plan)

    async with in_transaction():
        # The subscriber's row locked: bookings for one subscriber go one at a time
        # (tortoise drops FOR UPDATE from values_list queries: select the object).
        await Subscriber.filter(id=subscriber.id).select_for_update().only("id")
        if await _busy(subscriber, start, end):
            raise await _overlap(subscriber, start, length, zone, moment, plan)
        return await Appointment.create(
            subscriber=subscriber,
            starts_at=start,
            ends_at=end,
            name=name,
            note=note,
            uid=f"{uuid.uuid4()}@{UID_DOMAIN}",
            phone=phone,
            lang=lang,
        )


async def day(subscriber: Subscriber, on: date) -> list[Appointment]:
    """The appointments starting on that date of the subscriber's own calendar, in order."""
    zone = ZoneInfo(subscriber.timezone)
    since, until = _local(on, time(0), zone), _local(on + timedelta(days=1), time(0), zone)
    return (
        await Appointment.filter(
            subscriber_id=subscriber.id, starts_at__gte=since, starts_at__lt=until
        )
        .order_by("starts_at", "id")
        .all()
    )


def _timezone_component(tzid: str, start: datetime, end: datetime) -> icalendar.Timezone | None:
    """A VTIMEZONE for tzid covering the appointment, if this icalendar can build one
    (Timezone.from_tzid arrived in icalendar 6.1)."""
    build = getattr(icalendar.Timezone, "from_tzid", None)
    if build is None:
        return None
    try:
        component: icalendar.Timezone = build(
            tzid,
            first_date=start.date() - timedelta(days=366),
            last_date=end.date() + timedelta(days=366),
        )
    except ValueError:  # a zone icalendar does not know
        return None
    return component


def ics_invite(
    appointment: Appointment, subscriber: Subscriber, organizer_email: str | None = None
) -> bytes:
    """The appointment as an iCalendar (RFC 5545) object, UTF-8, for email or a chat file.

    METHOD:PUBLISH, not REQUEST: the booking is already made, the subscriber is told, not
    asked to accept or decline; iTIP (RFC 5546) REQUEST needs ATTENDEEs and clients then show
    reply buttons that would go nowhere. PUBLISH is imported as a plain event. iTIP wants an
    ORGANIZER on a PUBLISH too: pass organizer_email when the file goes out by email.
    """
    zone = ZoneInfo(subscriber.timezone)
    start = appointment.starts_at.astimezone(zone)
    end = appointment.ends_at.astimezone(zone)
    vtimezone = _timezone_component(subscriber.timezone, start, end)
    if vtimezone is None:  # no VTIMEZONE to point a TZID at: UTC times are always valid
        start, end = start.astimezone(UTC), end.astimezone(UTC)

    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    if vtimezone is not None:
        calendar.add_component(vtimezone)

    event = icalendar.Event()
    event.add("uid", appointment.uid)
    # The moment this object's content was created: the booking, so the file is reproducible.
    stamp = appointment.created_at or datetime.now(UTC)
    event.add("dtstamp", stamp.astimezone(UTC).replace(microsecond=0))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", appointment.name)
    if appointment.note:
        event.add("description", appointment.note)
    event.add("sequence", 0)
    event.add("status", "CONFIRMED")
    event.add("transp", "OPAQUE")
    if organizer_email:
        event.add("organizer", f"mailto:{organizer_email}", parameters={"cn": subscriber.name})
    calendar.add_component(event)
    return calendar.to_ical()


async def free_slots(
    subscriber: Subscriber,
    near: datetime,
    *,
    now: datetime | None = None,
    length: timedelta = DEFAULT_LENGTH,
    limit: int = FREE_SLOTS,
) -> list[datetime]:
    """The nearest free starts from `near` on (a "book a time" button offers these)."""
    zone = ZoneInfo(subscriber.timezone)
    current = _now(now)
    since = _local(near.astimezone(zone).date(), time(0), zone)
    busy = await _busy(subscriber, since, since + timedelta(days=SEARCH_DAYS + 1))
    intervals = [(a.starts_at, a.ends_at) for a in busy]
    plan = await load_plan(subscriber.id)
    return _free_slots(max(near, current), length, intervals, zone, current, limit, plan)


def confirmation(appointment: Appointment, subscriber: Subscriber) -> NewNotification:
    """The subscriber's confirmation of a booking, with its .ics invite (one per booking:
    keyed `appointment:<uid>`). It goes by email, so the invite names them as organiser."""
    ics = ics_invite(appointment, subscriber, organizer_email=subscriber.email)
    payload = AppointmentPayload(
        subscriber=subscriber.name,
        at=appointment.starts_at,
        timezone=subscriber.timezone,
        text=f"{appointment.name} — {appointment.note}".strip(" —"),
        attachments=(inline("appointment.ics", ICS_TYPE, ics),),
    )
    return NewNotification(
        f"{Kind.APPOINTMENT}:{appointment.uid}",
        subscriber,
        Kind.APPOINTMENT,
        Urgency.NORMAL,
        payload.to_json(),
    )


async def move(
    subscriber: Subscriber,
    appointment_id: int,
    start: datetime,
    *,
    now: datetime | None = None,
) -> Appointment:
    """Move one of the subscriber's appointments to `start`, keeping its length, by book()'s
    rules (InThePast, OutsideWorkingHours, Overlap with alternatives; it never collides with
    itself). LookupError when the subscriber has no such appointment."""
    _require_aware(start, "start")
    moment = _now(now)
    zone = ZoneInfo(subscriber.timezone)
    start = start.astimezone(UTC).replace(second=0, microsecond=0)
    async with in_transaction():
        # The same lock as book(): one subscriber's diary changes go one at a time.
        await Subscriber.filter(id=subscriber.id).select_for_update().only("id")
        found = await Appointment.get_or_none(id=appointment_id, subscriber_id=subscriber.id)
        if found is None:
            raise LookupError(f"no appointment {appointment_id} for this subscriber")
        length = found.ends_at - found.starts_at
        end = start + length
        plan = await load_plan(subscriber.id)
        _check_bookable(start, end, zone, moment, plan)
        if [a for a in await _busy(subscriber, start, end) if a.id != found.id]:
            raise await _overlap(subscriber, start, length, zone, moment, plan, moving=found.id)
        found.starts_at, found.ends_at = start, end
        await found.save(update_fields=["starts_at", "ends_at"])
        return found


async def cancel(subscriber: Subscriber, appointment_id: int) -> bool:
    """Remove one of the subscriber's appointments; False when it has no such one."""
    removed = await Appointment.filter(id=appointment_id, subscriber_id=subscriber.id).delete()
    return bool(removed)
