"""Office-hours schedules: weekly periods, closures, and the log of switches made.

A subscriber's schedule says which scenario each stretch of the week has (periods on its
own wall clock), what applies outside every period (`default_scenario`), and which days
count as wholly outside hours: the public holidays of a country (the `holidays` package)
and one-off closures. `WeekPlan` is the pure reading of it for one local date, shared by
the switcher (gateway/schedule) and the diary's bookable hours (gateway/diary), so both
say the same hours.

Switches are logged once per (subscriber, boundary instant): the unique constraint is what
keeps two gateways (or two rounds) from switching the same boundary twice.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
from tortoise import fields
from tortoise.models import Model

from models.db import Subscriber
from models.vocab import Scenario

DAY_MINUTES = 24 * 60


class Schedule(Model):
    """One subscriber's office hours (one schedule each)."""

    id = fields.IntField(primary_key=True)
    subscriber: fields.OneToOneRelation[Subscriber] = fields.OneToOneField(
        "models.Subscriber", related_name="schedule", on_delete=fields.CASCADE
    )
    # What applies outside every period, on holidays and closures (e.g. closed).
    default_scenario = fields.CharEnumField(Scenario, max_length=16, default=Scenario.CLOSED)
    holidays = fields.CharField(max_length=8, default="")  # ISO country code; "" none
    announce = fields.BooleanField(default=False)  # tell the subscriber of each switch
    enabled = fields.BooleanField(default=True)
    # When it was last changed: the first round after an edit applies what is due then.
    updated_at = fields.DatetimeField()

    periods: fields.ReverseRelation[SchedulePeriod]
    closures: fields.ReverseRelation[ScheduleClosure]

    class Meta:
        table = "schedule"


class SchedulePeriod(Model):
    """[starts, ends) on a weekday, local wall clock, minutes since midnight (ends <= 1440)."""

    id = fields.IntField(primary_key=True)
    schedule: fields.ForeignKeyRelation[Schedule] = fields.ForeignKeyField(
        "models.Schedule", related_name="periods", on_delete=fields.CASCADE
    )
    weekday = fields.SmallIntField()  # 0 Monday .. 6 Sunday
    starts = fields.SmallIntField()
    ends = fields.SmallIntField()
    scenario = fields.CharEnumField(Scenario, max_length=16)

    class Meta:
        table = "schedule_period"


class ScheduleClosure(Model):
    """A one-off closure: whole local days, first to last inclusive."""

    id = fields.IntField(primary_key=True)
    schedule: fields.ForeignKeyRelation[Schedule] = fields.ForeignKeyField(
        "models.Schedule", related_name="closures", on_delete=fields.CASCADE
    )
    first_day = fields.DateField()
    last_day = fields.DateField()
    note = fields.CharField(max_length=200, default="")

    class Meta:
        table = "schedule_closure"


class ScheduleSwitch(Model):
    """A boundary the schedule handled: inserted first (the claim), `applied` once done."""

    id = fields.IntField(primary_key=True)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="schedule_switches", on_delete=fields.CASCADE
    )
    boundary = fields.DatetimeField()  # the instant the due scenario began (UTC)
    scenario = fields.CharEnumField(Scenario, max_length=16)  # what the schedule made due
    previous = fields.CharEnumField(Scenario, max_length=16, null=True)
    reason = fields.CharField(max_length=16)  # period, default, holiday, closure, override
    changed = fields.BooleanField(default=False)  # the lines were switched (not already so)
    # Due while a timed override ran: set as what the override returns to, not switched.
    held_until = fields.DatetimeField(null=True)
    applied = fields.BooleanField(default=False)
    at = fields.DatetimeField(db_index=True)  # when the round claimed it

    class Meta:
        table = "schedule_switch"
        unique_together = (("subscriber", "boundary"),)


# -- the pure reading of a schedule -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    weekday: int
    starts: int  # minutes since local midnight
    ends: int
    scenario: Scenario


@dataclass(frozen=True, slots=True)
class Stretch:
    """[starts, ends) minutes of one local day with its scenario and why."""

    starts: int
    ends: int
    scenario: Scenario
    reason: str  # period, default, holiday, closure


def local_instant(on: date, minute: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock minute of a local day (1440: the next midnight)."""
    day = on + timedelta(days=minute // DAY_MINUTES)
    minute %= DAY_MINUTES
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone).astimezone(UTC)


@functools.lru_cache(maxsize=64)
def _country(code: str) -> holidays.HolidayBase:
    return holidays.country_holidays(code)


def valid_country(code: str) -> bool:
    try:
        _country(code.upper())
    except NotImplementedError:
        return False
    return True


@dataclass(frozen=True)
class WeekPlan:
    periods: tuple[Period, ...]
    default: Scenario
    country: str = ""
    closures: tuple[tuple[date, date], ...] = ()

    def closed_why(self, on: date) -> str | None:
        """'holiday' or 'closure' if the whole local day is outside hours, else None."""
        if any(first <= on <= last for first, last in self.closures):
            return "closure"
        if self.country and on in _country(self.country.upper()):
            return "holiday"
        return None

    def day(self, on: date) -> list[Stretch]:
        """The whole local day [0, 1440) as stretches in order, gaps filled by default."""
        why = self.closed_why(on)
        if why is not None:
            return [Stretch(0, DAY_MINUTES, self.default, why)]
        out: list[Stretch] = []
        at = 0
        today = sorted(
            (p for p in self.periods if p.weekday == on.weekday()), key=lambda p: p.starts
        )
        for p in today:
            starts = max(p.starts, at)  # overlapping periods: the earlier one keeps its time
            if p.ends <= starts:
                continue
            if starts > at:
                out.append(Stretch(at, starts, self.default, "default"))
            out.append(Stretch(starts, p.ends, p.scenario, "period"))
            at = p.ends
        if at < DAY_MINUTES:
            out.append(Stretch(at, DAY_MINUTES, self.default, "default"))
        return out

    def windows(self, on: date, scenario: Scenario = Scenario.AGENT) -> list[tuple[int, int]]:
        """The stretches of a local day with that scenario (the diary's bookable hours for
        `agent`), adjacent ones joined."""
        out: list[tuple[int, int]] = []
        for s in self.day(on):
            if s.scenario is not scenario:
                continue
            if out and out[-1][1] == s.starts:
                out[-1] = (out[-1][0], s.ends)
            else:
                out.append((s.starts, s.ends))
        return out


def plan_of(
    schedule: Schedule,
    periods: Iterable[SchedulePeriod],
    closures: Iterable[ScheduleClosure],
) -> WeekPlan:
    return WeekPlan(
        periods=tuple(Period(p.weekday, p.starts, p.ends, Scenario(p.scenario)) for p in periods),
        default=Scenario(schedule.default_scenario),
        country=schedule.holidays,
        closures=tuple((c.first_day, c.last_day) for c in closures),
    )


async def load_plan(subscriber_id: int) -> WeekPlan | None:
    """The subscriber's enabled schedule as a WeekPlan; None without one."""
    schedule = await Schedule.get_or_none(subscriber_id=subscriber_id, enabled=True)
    if schedule is None:
        return None
    periods = await SchedulePeriod.filter(schedule_id=schedule.id).order_by("weekday", "starts")
    closures = await ScheduleClosure.filter(schedule_id=schedule.id)
    return plan_of(schedule, periods, closures)
