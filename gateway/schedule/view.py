"""A subscriber's schedule as the web desk shows it: plain data, already localised.

Times are aware datetimes in the subscriber's timezone; weekday names come from CLDR
(babel) in the reader's language, scenario and reason labels from our catalogues.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from babel.core import UnknownLocaleError
from babel.dates import get_day_names

from gateway.control.labels import SCENARIO_LABELS
from gateway.schedule import rules
from locales import N_, tr
from models.db import Subscriber
from models.schedule import Schedule, ScheduleClosure, SchedulePeriod, ScheduleSwitch, plan_of
from models.vocab import Scenario

RECENT_SWITCHES = 20

REASONS = {
    "period": N_("Office hours"),
    "default": N_("Outside office hours"),
    "holiday": N_("Public holiday"),
    "closure": N_("Closed days"),
    "override": N_("End of a timed change"),
}


@dataclass(frozen=True, slots=True)
class PeriodRow:
    weekday: int  # 0 Monday
    weekday_name: str
    starts: str  # HH:MM
    ends: str
    scenario: str
    scenario_label: str


@dataclass(frozen=True, slots=True)
class ClosureRow:
    first_day: date
    last_day: date
    note: str


@dataclass(frozen=True, slots=True)
class OverrideRow:
    scenario: str
    scenario_label: str
    until: datetime  # local


@dataclass(frozen=True, slots=True)
class SwitchRow:
    boundary: datetime  # local
    scenario: str
    scenario_label: str
    previous: str | None
    reason: str
    reason_label: str
    changed: bool
    held_until: datetime | None  # local; due during an override, applied when it ended


@dataclass(frozen=True, slots=True)
class ScheduleView:
    subscriber_id: int
    timezone: str
    default_scenario: str
    default_label: str
    holidays: str  # country code, "" none
    announce: bool
    enabled: bool
    periods: list[PeriodRow]
    closures: list[ClosureRow]
    current_scenario: str
    current_label: str
    override: OverrideRow | None
    due_scenario: str
    due_label: str
    due_reason_label: str
    next_boundary: datetime | None  # local
    switches: list[SwitchRow]


def _day_names(lang: str) -> dict[int, str]:
    try:
        names = get_day_names("wide", locale=lang)
    except UnknownLocaleError:
        names = get_day_names("wide", locale="en")
    return {day: str(names[day]) for day in range(7)}


def _label(lang: str, scenario: Scenario | str) -> str:
    return tr(lang, SCENARIO_LABELS[Scenario(scenario)])


async def schedule_view(
    subscriber_id: int, lang: str, now: datetime | None = None
) -> ScheduleView | None:
    """The subscriber's schedule, or None if it has none (the caller checked the
    subscriber may see it: this reads by id)."""
    subscriber = await Subscriber.get_or_none(id=subscriber_id)
    schedule = await Schedule.get_or_none(subscriber_id=subscriber_id)
    if subscriber is None or schedule is None:
        return None
    moment = now or datetime.now(UTC)
    zone = ZoneInfo(subscriber.timezone)
    periods = await SchedulePeriod.filter(schedule_id=schedule.id).order_by("weekday", "starts")
    closures = await ScheduleClosure.filter(schedule_id=schedule.id).order_by("first_day")
    switches = (
        await ScheduleSwitch.filter(subscriber_id=subscriber_id, applied=True)
        .order_by("-boundary")
        .limit(RECENT_SWITCHES)
    )
    due = rules.due_at(plan_of(schedule, periods, closures), subscriber.timezone, moment)
    names = _day_names(lang)
    override = None
    if subscriber.scenario_until is not None and subscriber.scenario_until > moment:
        override = OverrideRow(
            subscriber.scenario.value,
            _label(lang, subscriber.scenario),
            subscriber.scenario_until.astimezone(zone),
        )
    return ScheduleView(
        subscriber_id=subscriber_id,
        timezone=subscriber.timezone,
        default_scenario=Scenario(schedule.default_scenario).value,
        default_label=_label(lang, schedule.default_scenario),
        holidays=schedule.holidays,
        announce=schedule.announce,
        enabled=schedule.enabled,
        periods=[
            PeriodRow(
                p.weekday,
                names[p.weekday],
                rules.hhmm(p.starts),
                rules.hhmm(p.ends),
                Scenario(p.scenario).value,
                _label(lang, p.scenario),
            )
            for p in periods
        ],
        closures=[ClosureRow(c.first_day, c.last_day, c.note) for c in closures],
        current_scenario=subscriber.scenario.value,
        current_label=_label(lang, subscriber.scenario),
        override=override,
        due_scenario=due.scenario.value,
        due_label=_label(lang, due.scenario),
        due_reason_label=tr(lang, REASONS[due.reason]),
        next_boundary=due.until.astimezone(zone) if due.until else None,
        switches=[
            SwitchRow(
                s.boundary.astimezone(zone),
                Scenario(s.scenario).value,
                _label(lang, s.scenario),
                Scenario(s.previous).value if s.previous else None,
                s.reason,
                tr(lang, REASONS.get(s.reason, s.reason)),
                s.changed,
                s.held_until.astimezone(zone) if s.held_until else None,
            )
            for s in switches
        ],
    )
