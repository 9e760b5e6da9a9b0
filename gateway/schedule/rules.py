"""What a schedule makes due at an instant, and when that changes (pure).

Everything is reasoned on the subscriber's wall clock: each local day is laid out as
stretches (models.schedule.WeekPlan.day), each stretch start turned into an instant with
zoneinfo, so a boundary at 09:00 stays at 09:00 local across a DST change. Stretches with
the same scenario that follow each other are one: a boundary is where the due scenario
changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from models.schedule import WeekPlan, local_instant
from models.vocab import Scenario

LOOK_DAYS = 8  # a weekly schedule changes within a week unless closed all along

_HHMM = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class Due:
    scenario: Scenario
    reason: str  # period, default, holiday, closure
    since: datetime | None  # the boundary it began at (None: unchanged for LOOK_DAYS)
    until: datetime | None  # the next boundary (None: none within LOOK_DAYS)


def minutes(text: str) -> int:
    """'09:30' -> 570; '24:00' is the end of the day. ValueError otherwise."""
    m = _HHMM.match(text.strip())
    if not m or (int(m[1]) == 24 and m[2] != "00"):
        raise ValueError(f"not a time of day: {text!r}")
    return int(m[1]) * 60 + int(m[2])


def hhmm(value: int) -> str:
    return f"{value // 60:02d}:{value % 60:02d}"


def _changes(
    plan: WeekPlan, zone: ZoneInfo, first: date, last: date
) -> list[tuple[datetime, Scenario, str]]:
    """(instant, scenario, reason) where the due scenario changes, first..last local days;
    the first entry is the start of `first` whatever it holds."""
    out: list[tuple[datetime, Scenario, str]] = []
    day = first
    while day <= last:
        for s in plan.day(day):
            if out and out[-1][1] is s.scenario:
                continue
            out.append((local_instant(day, s.starts, zone), s.scenario, s.reason))
        day += timedelta(days=1)
    return out


def due_at(plan: WeekPlan, timezone: str, now: datetime) -> Due:
    """The scenario the schedule makes due at `now` (aware), since when and until when."""
    if now.tzinfo is None:
        raise TypeError("now must be timezone-aware")
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    start = today - timedelta(days=LOOK_DAYS)
    changes = _changes(plan, zone, start, today + timedelta(days=LOOK_DAYS))
    current = 0
    for i, (at, _, _) in enumerate(changes):
        if at <= now:
            current = i
    at, scenario, _ = changes[current]
    since = None if current == 0 else at
    until = changes[current + 1][0] if current + 1 < len(changes) else None
    # Why: the stretch `now` is in (a holiday after a closed evening is still a holiday).
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    reason = next(s.reason for s in plan.day(today) if s.starts <= minute < s.ends)
    return Due(scenario, reason, since, until)
