"""Schedule operations for the CLI (and any admin surface): set, close days, show.

Errors are ScheduleError with a short English reason (the CLI is the operator's, in
English, like gateway/control/admin.py's AdminError).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from tortoise.transactions import in_transaction

from gateway.schedule import rules
from models.db import Subscriber
from models.schedule import Schedule, ScheduleClosure, SchedulePeriod, valid_country
from models.vocab import Scenario

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAYS = tuple(range(5))


class ScheduleError(ValueError):
    """A schedule request that cannot be carried out, with the reason."""


@dataclass(frozen=True, slots=True)
class PeriodSpec:
    weekdays: tuple[int, ...]
    starts: int
    ends: int
    scenario: Scenario


def _scenario(text: str) -> Scenario:
    try:
        return Scenario(text.strip().lower())
    except ValueError as exc:
        names = ", ".join(s.value for s in Scenario)
        raise ScheduleError(f"unknown scenario {text!r} (one of {names})") from exc


def _days(text: str) -> tuple[int, ...]:
    """'mon-fri', 'sat', 'mon,wed,fri' -> weekday numbers."""
    out: list[int] = []
    for part in text.lower().split(","):
        first, _, last = part.strip().partition("-")
        try:
            a = DAYS.index(first[:3])
            b = DAYS.index(last[:3]) if last else a
        except ValueError as exc:
            raise ScheduleError(f"unknown day in {text!r} (mon..sun)") from exc
        if b < a:
            raise ScheduleError(f"days run backwards in {text!r}")
        out.extend(range(a, b + 1))
    return tuple(sorted(set(out)))


def parse_period(text: str, weekdays: tuple[int, ...] | None = None) -> PeriodSpec:
    """'09:00-17:00=agent' (with `weekdays` given) or 'mon-fri 09:00-17:00=agent'."""
    spec = text.strip()
    if weekdays is None:
        days, _, spec = spec.partition(" ")
        weekdays = _days(days)
    hours, sep, scenario = spec.strip().partition("=")
    start, dash, end = hours.partition("-")
    if not sep or not dash:
        raise ScheduleError(f"expected HH:MM-HH:MM=scenario, got {text!r}")
    try:
        starts, ends = rules.minutes(start), rules.minutes(end)
    except ValueError as exc:
        raise ScheduleError(str(exc)) from exc
    if ends <= starts:
        raise ScheduleError(f"a period must end after it starts ({text!r}; overnight: two)")
    return PeriodSpec(weekdays, starts, ends, _scenario(scenario))


async def _subscriber(subscriber_id: int) -> Subscriber:
    subscriber = await Subscriber.get_or_none(id=subscriber_id)
    if subscriber is None:
        raise ScheduleError(f"no subscriber {subscriber_id}")
    return subscriber


async def set_schedule(
    subscriber_id: int,
    periods: list[PeriodSpec],
    default: str = Scenario.CLOSED,
    holidays: str = "",
    announce: bool = False,
    now: datetime | None = None,
) -> Schedule:
    """Replace the subscriber's weekly periods and settings (closures stay). The schedule
    loop applies what is due at once, then switches at each boundary."""
    subscriber = await _subscriber(subscriber_id)
    country = holidays.strip().upper()
    if country and not valid_country(country):
        raise ScheduleError(f"no public holidays known for country {holidays!r}")
    fallback = _scenario(default)
    stamp = now or datetime.now(UTC)
    async with in_transaction():
        schedule, _ = await Schedule.get_or_create(
            subscriber=subscriber, defaults={"updated_at": stamp}
        )
        schedule.default_scenario = fallback
        schedule.holidays = country
        schedule.announce = announce
        schedule.enabled = True
        schedule.updated_at = stamp
        await schedule.save()
        await SchedulePeriod.filter(schedule_id=schedule.id).delete()
        await SchedulePeriod.bulk_create(
            [
                SchedulePeriod(
                    schedule_id=schedule.id,
                    weekday=day,
                    starts=p.starts,
                    ends=p.ends,
                    scenario=p.scenario,
                )
                for p in periods
                for day in p.weekdays
            ]
        )
    return schedule


async def close(
    subscriber_id: int, first: date, last: date, note: str = "", now: datetime | None = None
) -> ScheduleClosure:
    """Whole local days first..last (inclusive) outside hours (the default scenario)."""
    if last < first:
        raise ScheduleError("--to is before --from")
    subscriber = await _subscriber(subscriber_id)
    schedule = await Schedule.get_or_none(subscriber=subscriber)
    if schedule is None:
        raise ScheduleError(f"subscriber {subscriber_id} has no schedule (schedule set first)")
    async with in_transaction():
        closure = await ScheduleClosure.create(
            schedule=schedule, first_day=first, last_day=last, note=note[:200]
        )
        schedule.updated_at = now or datetime.now(UTC)  # applied by the next round
        await schedule.save(update_fields=["updated_at"])
    return closure


async def show(subscriber_id: int, now: datetime | None = None) -> list[str]:
    """The schedule as lines of text for the operator."""
    from gateway.schedule.view import schedule_view  # the same reading as the web desk

    subscriber = await _subscriber(subscriber_id)
    view = await schedule_view(subscriber.id, "en", now=now)
    if view is None:
        return [f"subscriber {subscriber.id}: no schedule"]
    lines = [
        f"subscriber {subscriber.id} ({view.timezone}): default {view.default_scenario}, "
        f"holidays {view.holidays or 'none'}, announce {'yes' if view.announce else 'no'}",
        f"now: {view.current_scenario}"
        + (f" (override until {view.override.until:%Y-%m-%d %H:%M})" if view.override else ""),
        f"due: {view.due_scenario}"
        + (f", next boundary {view.next_boundary:%Y-%m-%d %H:%M}" if view.next_boundary else ""),
    ]
    lines += [f"  {p.weekday_name} {p.starts}-{p.ends} {p.scenario}" for p in view.periods]
    lines += [f"  closed {c.first_day}..{c.last_day} {c.note}".rstrip() for c in view.closures]
    lines += [
        f"  switched {s.boundary:%Y-%m-%d %H:%M} -> {s.scenario} ({s.reason})"
        for s in view.switches
    ]
    return lines
