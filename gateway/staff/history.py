"""What a screen-pop card shows of the subscriber and the caller, read from the database:
the subscriber's day (today's diary), the caller's contact name, their last interactions
with this subscriber and their open tasks.

Interactions are calls (`Call`), what agents took down (`TakenMessage`), appointments
booked for the caller (the diary keeps the caller's number as the note: "Book a time"),
voicemails and faxes (the fax notification's payload carries the sender). A call already
told by its voicemail or by a message taken on it is shown once, as that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from models.db import Appointment, Call, Contact, Notification, Subscriber, Voicemail
from models.staff import TakenMessage, Task, TaskStatus
from models.vocab import Kind

LAST = 3  # interactions a card shows
_SCAN = 20  # rows read per source: the newest LAST of all sources lie among them
FAX_SCAN = 200  # fax notifications of the subscriber read to find the caller's (JSON payload)


class Was(StrEnum):
    """What an interaction was (the card words each)."""

    CALL_ANSWERED = "call_answered"
    CALL_MISSED = "call_missed"
    CALL_FORWARDED = "call_forwarded"
    CALL_OTHER = "call_other"  # live, or how it ended is not known
    MESSAGE = "message"
    REQUEST = "request"
    APPOINTMENT_TAKEN = "appointment_taken"  # taken down by an agent
    BOOKED = "booked"  # in the diary ("Book a time", "book ...")
    VOICEMAIL = "voicemail"
    FAX = "fax"


@dataclass(frozen=True)
class Interaction:
    at: datetime  # aware
    was: Was
    detail: str = ""  # a message's text, a transcript, a booked time (already worded)
    when: datetime | None = None  # an appointment's start


@dataclass(frozen=True)
class OpenTask:
    text: str
    due_at: datetime


@dataclass(frozen=True)
class Booking:
    starts_at: datetime
    name: str


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def contact_name(subscriber_id: int, number: str) -> str | None:
    if not number:
        return None
    contact = await Contact.get_or_none(subscriber_id=subscriber_id, number=number)
    return contact.name if contact is not None else None


async def today(subscriber: Subscriber, now: datetime) -> list[Booking]:
    """The subscriber's appointments starting today, their own calendar's today."""
    zone = ZoneInfo(subscriber.timezone)
    day = now.astimezone(zone).date()
    since = datetime.combine(day, time(0), zone)
    until = datetime.combine(day + timedelta(days=1), time(0), zone)
    rows = await Appointment.filter(
        subscriber_id=subscriber.id, starts_at__gte=since, starts_at__lt=until
    ).order_by("starts_at", "id")
    return [Booking(_aware(a.starts_at), a.name) for a in rows]


async def open_tasks(subscriber_id: int, number: str) -> list[OpenTask]:
    if not number:
        return []
    rows = (
        await Task.filter(subscriber_id=subscriber_id, caller_number=number)
        .exclude(status=TaskStatus.CLOSED)
        .order_by("due_at", "id")
    )
    return [OpenTask(t.text, _aware(t.due_at)) for t in rows]


_CALL_WAS = {
    "answered": Was.CALL_ANSWERED,
    "abandoned": Was.CALL_MISSED,
    "voicemail": Was.VOICEMAIL,
    "forwarded": Was.CALL_FORWARDED,
}
_TAKEN_WAS = {"message": Was.MESSAGE, "request": Was.REQUEST, "appointment": Was.APPOINTMENT_TAKEN}


async def interactions(
    subscriber_id: int, number: str, *, skip_linkedid: str = "", last: int = LAST
) -> list[Interaction]:
    """The caller's `last` interactions with the subscriber, newest first (none for a
    withheld number). `skip_linkedid`: the call ringing now is no history."""
    if not number:
        return []
    mine = {"subscriber_id": subscriber_id}
    found: list[Interaction] = []
    told_calls: set[int] = set()  # calls told as their voicemail
    told_linkedids: set[str] = set()  # calls told as a message taken on them

    for vm in (
        await Voicemail.filter(**mine, caller_number=number).order_by("-left_at").limit(_SCAN)
    ):
        found.append(Interaction(_aware(vm.left_at), Was.VOICEMAIL, vm.transcript))
        if vm.call_id is not None:  # type: ignore[attr-defined]
            told_calls.add(vm.call_id)  # type: ignore[attr-defined]
    for taken in (
        await TakenMessage.filter(**mine, caller_number=number).order_by("-taken_at").limit(_SCAN)
    ):
        found.append(Interaction(_aware(taken.taken_at), _TAKEN_WAS[taken.kind], taken.text))
        if taken.linkedid:
            told_linkedids.add(taken.linkedid)
    for call in (
        await Call.filter(**mine, caller_number=number)
        .exclude(linkedid=skip_linkedid)
        .order_by("-started_at")
        .limit(_SCAN)
    ):
        if call.id in told_calls or call.linkedid in told_linkedids:
            continue
        was = _CALL_WAS.get(call.outcome.value if call.outcome else "", Was.CALL_OTHER)
        found.append(Interaction(_aware(call.started_at), was))
    for booked in (
        await Appointment.filter(**mine, note=number).order_by("-created_at").limit(_SCAN)
    ):
        found.append(
            Interaction(
                _aware(booked.created_at), Was.BOOKED, booked.name, _aware(booked.starts_at)
            )
        )
    faxes = await Notification.filter(**mine, kind=Kind.FAX).order_by("-created_at").limit(FAX_SCAN)
    for fax in faxes:
        if (fax.payload or {}).get("caller_number") == number:
            pages = (fax.payload or {}).get("pages", 0)
            found.append(Interaction(_aware(fax.created_at), Was.FAX, str(pages)))
    found.sort(key=lambda i: i.at, reverse=True)
    return found[:last]
