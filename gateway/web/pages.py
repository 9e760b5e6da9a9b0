"""The desk's read pages: every query filtered by the session's subscriber, paged."""

from __future__ import annotations

import asyncio
import mimetypes
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from tortoise.expressions import Q

from gateway.admin.forms import KIND_LABELS
from gateway.diary import appointments as diary
from gateway.schedule.view import schedule_view
from gateway.web.context import NOT_FOUND, PAGE_SIZE, Ctx, PageError, ident
from locales import N_
from models.db import Call, Contact, Notification, RoutingPreference, Urgency, Voicemail
from models.events import CallOutcome, CallStatus
from models.staff import TakenMessage, Task, TaskStatus
from models.vocab import KINDS, Kind, Scenario

STATUS_LABELS = {
    CallStatus.NOT_STARTED: N_("Starting"),
    CallStatus.WAITING: N_("Waiting"),
    CallStatus.IN_PROGRESS: N_("In progress"),
    CallStatus.FORWARDED: N_("Forwarded"),
    CallStatus.ANSWERED: N_("Answered"),
    CallStatus.NOT_ANSWERED: N_("Not answered, voicemail left"),
    CallStatus.LOST: N_("Missed"),
    CallStatus.UNKNOWN: N_("Unknown"),
    CallStatus.SCHEDULED: N_("Call back booked"),
}
OUTCOME_LABELS = {
    CallOutcome.ANSWERED: N_("answered by our secretary"),
    CallOutcome.VOICEMAIL: N_("voicemail"),
    CallOutcome.FORWARDED: N_("forwarded"),
    CallOutcome.ABANDONED: N_("caller hung up"),
    CallOutcome.UNKNOWN: N_("end not seen"),
}
BAD_DATE = N_("That date was not understood (YYYY-MM-DD).")


def _labels() -> dict[str, Any]:
    return {"status_labels": STATUS_LABELS, "outcome_labels": OUTCOME_LABELS}


async def _paged(ctx: Ctx, query: Any) -> tuple[list[Any], int, bool]:
    """One page of `query` (already ordered): rows, page number, whether more follow."""
    number = ctx.page_number()
    rows = await query.offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
    return rows[:PAGE_SIZE], number, len(rows) > PAGE_SIZE


def _local_midnight(ctx: Ctx, on: date | None = None) -> datetime:
    zone = ZoneInfo(ctx.subscriber.timezone)
    day = on or ctx.now.astimezone(zone).date()
    return datetime.combine(day, time(0), tzinfo=zone)


async def today(ctx: Ctx) -> web.Response:
    s, midnight = ctx.subscriber, _local_midnight(ctx)
    calls = (
        await Call.filter(subscriber_id=s.id, started_at__gte=midnight)
        .order_by("-started_at", "-id")
        .limit(PAGE_SIZE)
    )
    voicemails = await Voicemail.filter(subscriber_id=s.id, left_at__gte=midnight).count()
    faxes = await Notification.filter(
        subscriber_id=s.id, kind=Kind.FAX, created_at__gte=midnight
    ).count()
    messages = await TakenMessage.filter(subscriber_id=s.id, taken_at__gte=midnight).count()
    return ctx.page(
        "today.html",
        calls=calls,
        voicemails=voicemails,
        faxes=faxes,
        messages=messages,
        **_labels(),
    )


async def calls(ctx: Ctx) -> web.Response:
    q = ctx.query("q")
    # The (subscriber_id, started_at) index: a range scan, newest first.
    query = Call.filter(subscriber_id=ctx.subscriber.id)
    if q:
        query = query.filter(Q(caller_number__icontains=q) | Q(caller_name__icontains=q))
    rows, number, more = await _paged(ctx, query.order_by("-started_at", "-id"))
    return ctx.page("calls.html", calls=rows, q=q, page=number, more=more, **_labels())


async def voicemails(ctx: Ctx) -> web.Response:
    query = Voicemail.filter(subscriber_id=ctx.subscriber.id).order_by("-left_at", "-id")
    rows, number, more = await _paged(ctx, query)
    return ctx.page("voicemails.html", voicemails=rows, page=number, more=more, q="")


async def _file(path: str | None, content_type: str | None = None) -> web.FileResponse:
    if not path or not await asyncio.to_thread(Path(path).is_file):
        raise PageError(404, NOT_FOUND)
    kind = content_type or mimetypes.guess_type(path)[0] or "application/octet-stream"
    # FileResponse answers Range requests (an audio player seeks with them).
    return web.FileResponse(path, headers={"Content-Type": kind, "Cache-Control": "private"})


async def voicemail_audio(ctx: Ctx) -> web.FileResponse:
    voicemail_id = ident(ctx.request.match_info["id"])
    found = await Voicemail.get_or_none(id=voicemail_id, subscriber_id=ctx.subscriber.id)
    if found is None:
        raise PageError(404, NOT_FOUND)
    suffix = Path(found.audio_path).suffix.lower()
    audio = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".opus": "audio/ogg"}
    return await _file(found.audio_path, audio.get(suffix))


def _fax_pdf(notification: Notification) -> str | None:
    for item in (notification.payload or {}).get("attachments", []):
        if isinstance(item, dict) and item.get("content_type") == "application/pdf":
            path = item.get("path")
            return path if isinstance(path, str) else None
    return None


async def faxes(ctx: Ctx) -> web.Response:
    # Faxes are kept as their notifications (gateway/fax/desk.py): the payload names the PDF.
    query = Notification.filter(subscriber_id=ctx.subscriber.id, kind=Kind.FAX).order_by(
        "-created_at", "-id"
    )
    rows, number, more = await _paged(ctx, query)
    items = [(n, n.payload or {}, _fax_pdf(n) is not None) for n in rows]
    return ctx.page("faxes.html", faxes=items, page=number, more=more, q="")


async def fax_pdf(ctx: Ctx) -> web.FileResponse:
    name = ctx.request.match_info["name"]
    if not name.endswith(".pdf"):
        raise PageError(404, NOT_FOUND)
    fax_id = ident(name.removesuffix(".pdf"))
    found = await Notification.get_or_none(
        id=fax_id, subscriber_id=ctx.subscriber.id, kind=Kind.FAX
    )
    if found is None:
        raise PageError(404, NOT_FOUND)
    return await _file(_fax_pdf(found), "application/pdf")


async def messages(ctx: Ctx) -> web.Response:
    query = TakenMessage.filter(subscriber_id=ctx.subscriber.id).order_by("-taken_at", "-id")
    rows, number, more = await _paged(ctx, query)
    return ctx.page("messages.html", messages=rows, page=number, more=more, q="")


def parse_day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise PageError(400, BAD_DATE) from None


async def diary_page(
    ctx: Ctx, on: date | None = None, error: str = "", flash: str = "", status: int = 200
) -> web.Response:
    raw = ctx.request.query.get("day", "")
    if on is None:
        on = parse_day(raw) if raw else _local_midnight(ctx).date()
    entries = await diary.day(ctx.subscriber, on)
    return ctx.page(
        "diary.html",
        status=status,
        day=on,
        previous=on - timedelta(days=1),
        following=on + timedelta(days=1),
        appointments=entries,
        error=error,
        flash=flash,
    )


async def diary_get(ctx: Ctx) -> web.Response:
    return await diary_page(ctx)


async def contacts(ctx: Ctx) -> web.Response:
    q = ctx.query("q")
    query = Contact.filter(subscriber_id=ctx.subscriber.id)
    if q:
        query = query.filter(Q(name__icontains=q) | Q(number__icontains=q))
    rows, number, more = await _paged(ctx, query.order_by("name", "id"))
    return ctx.page("contacts.html", contacts=rows, q=q, page=number, more=more)


async def contact(ctx: Ctx) -> web.Response:
    contact_id = ident(ctx.request.match_info["id"])
    found = await Contact.get_or_none(id=contact_id, subscriber_id=ctx.subscriber.id)
    if found is None:
        raise PageError(404, NOT_FOUND)
    history = (
        await Call.filter(subscriber_id=ctx.subscriber.id, caller_number=found.number)
        .order_by("-started_at", "-id")
        .limit(PAGE_SIZE)
    )
    taken = (
        await TakenMessage.filter(subscriber_id=ctx.subscriber.id, caller_number=found.number)
        .order_by("-taken_at", "-id")
        .limit(PAGE_SIZE)
    )
    return ctx.page("contact.html", contact=found, calls=history, messages=taken, **_labels())


async def tasks(ctx: Ctx) -> web.Response:
    query = (
        Task.filter(subscriber_id=ctx.subscriber.id)
        .exclude(status=TaskStatus.CLOSED)
        .order_by("due_at", "id")
    )
    rows, number, more = await _paged(ctx, query)
    return ctx.page("tasks.html", tasks=rows, page=number, more=more, q="")


async def lines_page(ctx: Ctx, flash: str = "", error: str = "", status: int = 200) -> web.Response:
    # The session's subscriber: loaded with the session, changed in place by Control.
    ddis = await ctx.subscriber.ddis.all().order_by("number")
    return ctx.page(
        "lines.html",
        status=status,
        scenarios=[s.value for s in Scenario],
        ddis=ddis,
        flash=flash,
        error=error,
    )


async def lines(ctx: Ctx) -> web.Response:
    return await lines_page(ctx)


async def preferences_page(
    ctx: Ctx, flash: str = "", error: str = "", status: int = 200
) -> web.Response:
    rows = await RoutingPreference.filter(subscriber_id=ctx.subscriber.id, urgency=Urgency.NORMAL)
    routes = {r.kind: ", ".join(r.channels) for r in rows}
    return ctx.page(
        "preferences.html",
        status=status,
        kinds=[(k, KIND_LABELS[k], routes.get(k, "")) for k in KINDS],
        flash=flash,
        error=error,
    )


async def preferences(ctx: Ctx) -> web.Response:
    return await preferences_page(ctx)


async def schedule(ctx: Ctx) -> web.Response:
    # The office-hours schedule, already localised (None: the subscriber has none).
    view = await schedule_view(ctx.subscriber.id, ctx.lang, ctx.now)
    return ctx.page("schedule.html", view=view)
