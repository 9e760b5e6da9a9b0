"""The desk's forms (POST, CSRF checked before they run): lines through the command desk,
diary changes by the diary's rules, routing preferences. Every change is audited."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from multidict import MultiDictProxy

from gateway.control import audit
from gateway.control import grammar as cmd
from gateway.control.desk import Actor, Outcome
from gateway.delivery.render import local_time
from gateway.diary import appointments as diary
from gateway.web import pages
from gateway.web.context import BAD_CHOICE, NOT_FOUND, Ctx, PageError, ident
from locales import N_, tr
from models.db import Appointment, RoutingPreference, Urgency
from models.vocab import CHANNELS, KINDS, Channel, Scenario

WEB = "web"
BAD_TIME = N_("That time was not understood (YYYY-MM-DDTHH:MM).")


def _actor(ctx: Ctx) -> Actor:
    s = ctx.subscriber
    return Actor(WEB, s.email or WEB, s, ctx.lang)


async def _form(ctx: Ctx) -> MultiDictProxy[Any]:
    return await ctx.request.post()


def _text(form: MultiDictProxy[Any], name: str, limit: int = 200) -> str:
    value = form.get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


async def _audit(ctx: Ctx, said: str, result: str, detail: str = "") -> None:
    """A change made outside the command desk, audited as the desk audits its own."""
    actor = _actor(ctx)
    await audit.record(actor.channel, actor.address, actor.subscriber, said, result, detail)


# -- lines: the same command path as the bot ---------------------------------------------------


async def _run(ctx: Ctx, command: cmd.Command, said: str) -> Outcome:
    return await ctx.desk.run(_actor(ctx), command, said, ctx.now)


async def set_scenario(ctx: Ctx) -> web.Response:
    raw = _text(await _form(ctx), "scenario", 16)
    if raw not in {s.value for s in Scenario}:
        raise PageError(400, BAD_CHOICE)
    outcome = await _run(ctx, cmd.SetScenario(Scenario(raw), None), f"web: scenario {raw}")
    return await _lines_after(ctx, outcome)


async def set_forward(ctx: Ctx) -> web.Response:
    raw = _text(await _form(ctx), "forward", 32)
    number = raw or None
    outcome = await _run(ctx, cmd.Forward(number), f"web: forward {raw or 'off'}")
    return await _lines_after(ctx, outcome)


async def _lines_after(ctx: Ctx, outcome: Outcome) -> web.Response:
    """The lines page with the command desk's answer: confirmed, or refused (400)."""
    if outcome.done:
        return await pages.lines_page(ctx, flash=outcome.reply)
    return await pages.lines_page(ctx, error=outcome.reply, status=400)


# -- the diary ---------------------------------------------------------------------------------


def _start(ctx: Ctx, raw: str) -> datetime:
    """A datetime-local value on the subscriber's wall clock."""
    try:
        naive = datetime.strptime(raw, "%Y-%m-%dT%H:%M")
    except ValueError:
        raise PageError(400, BAD_TIME) from None
    return naive.replace(tzinfo=ZoneInfo(ctx.subscriber.timezone))


async def book(ctx: Ctx) -> web.Response:
    form = await _form(ctx)
    name, phone = _text(form, "name"), _text(form, "phone", 32)
    start = _start(ctx, _text(form, "starts_at", 32))
    if not name:
        return await pages.diary_page(
            ctx, start.date(), error=tr(ctx.lang, "Give the appointment a name."), status=400
        )
    # The command desk books by the diary's rules, confirms by email and audits, as the bot.
    booking = cmd.Book(start, name, "", phone)
    outcome = await _run(ctx, booking, f"web: book {start:%Y-%m-%d %H:%M}")
    if outcome.done:
        return await pages.diary_page(ctx, start.date(), flash=outcome.reply)
    return await pages.diary_page(ctx, start.date(), error=outcome.reply, status=400)


async def cancel(ctx: Ctx) -> web.Response:
    appointment_id = ident(ctx.request.match_info["id"])
    found = await Appointment.get_or_none(id=appointment_id, subscriber_id=ctx.subscriber.id)
    if found is None or not await diary.cancel(ctx.subscriber, appointment_id):
        raise PageError(404, NOT_FOUND)
    await _audit(ctx, f"web: cancel appointment {appointment_id}", audit.DONE)
    zone = ZoneInfo(ctx.subscriber.timezone)
    flash = tr(ctx.lang, "Appointment cancelled: {name}.", name=found.name)
    return await pages.diary_page(ctx, found.starts_at.astimezone(zone).date(), flash=flash)


async def move(ctx: Ctx) -> web.Response:
    appointment_id = ident(ctx.request.match_info["id"])
    start = _start(ctx, _text(await _form(ctx), "starts_at", 32))
    s, lang, said = ctx.subscriber, ctx.lang, f"web: move appointment {appointment_id}"
    try:
        moved = await diary.move(s, appointment_id, start, now=ctx.now)
    except LookupError:
        raise PageError(404, NOT_FOUND) from None
    except diary.Overlap as exc:
        free = ", ".join(local_time(lang, s.timezone, t) for t in exc.free)
        error = tr(lang, "That time is taken. Free: {slots}", slots=free or "—")
    except diary.InThePast:
        error = tr(lang, "That time has already passed.")
    except diary.DiaryError:
        error = tr(lang, "That time is outside office hours.")
    else:
        await _audit(ctx, said, audit.DONE)
        when = local_time(lang, s.timezone, moved.starts_at)
        flash = tr(lang, "Moved: {name}, {time}.", name=moved.name, time=when)
        return await pages.diary_page(ctx, start.date(), flash=flash)
    await _audit(ctx, said, audit.REFUSED, error)
    return await pages.diary_page(ctx, start.date(), error=error, status=400)


# -- routing preferences -----------------------------------------------------------------------


def parse_route(raw: str) -> list[str] | None:
    """ "telegram, sms+email" -> ["telegram", "sms+email"]; None if a channel is unknown."""
    hops = []
    for hop in raw.replace(" ", "").lower().split(","):
        if not hop:
            continue
        channels = hop.split("+")
        if not all(c in CHANNELS for c in channels) or len(set(channels)) != len(channels):
            return None
        hops.append("+".join(channels))
    return hops


async def save_preferences(ctx: Ctx) -> web.Response:
    form = await _form(ctx)
    routes: dict[str, list[str]] = {}
    for kind in KINDS:
        hops = parse_route(_text(form, kind))
        if hops is None:
            known = ", ".join(c.value for c in Channel)
            error = tr(ctx.lang, "Unknown channel; use: {channels}", channels=known)
            return await pages.preferences_page(ctx, error=error, status=400)
        routes[kind] = hops
    s = ctx.subscriber
    for kind, hops in routes.items():
        if hops:
            await RoutingPreference.update_or_create(
                defaults={"channels": hops}, subscriber_id=s.id, kind=kind, urgency=Urgency.NORMAL
            )
        else:  # empty: the service's default route applies again
            await RoutingPreference.filter(
                subscriber_id=s.id, kind=kind, urgency=Urgency.NORMAL
            ).delete()
    await _audit(ctx, "web: routing preferences", audit.DONE)
    return await pages.preferences_page(ctx, flash=tr(ctx.lang, "Preferences saved."))
