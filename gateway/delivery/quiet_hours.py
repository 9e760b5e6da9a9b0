"""Quiet hours: when a normal message must wait, in the subscriber's own timezone."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


class BadQuietHours(ValueError):
    """Not an "HH:MM" pair."""


def parse_hhmm(value: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise BadQuietHours(f"quiet hours must be HH:MM, not {value!r}") from exc


def quiet_until(
    start: str | None, end: str | None, timezone: str, now: datetime
) -> datetime | None:
    """When the quiet period that contains `now` ends (aware, UTC-comparable), or None if
    `now` is not quiet. A period may run past midnight (22:00-07:00); start == end: none.

    Wall-clock times are resolved in the subscriber's zone on the right local date, so a
    DST change moves the end with the clock, as a person expects."""
    if not start or not end:
        return None
    begin, finish = parse_hhmm(start), parse_hhmm(end)
    if begin == finish:
        return None
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    today = local.date()
    clock = local.time().replace(second=0, microsecond=0)
    if begin < finish:  # same-day period, e.g. 13:00-15:00
        if not begin <= clock < finish:
            return None
        end_date = today
    elif clock >= begin:  # evening part of an overnight period
        end_date = today + timedelta(days=1)
    elif clock < finish:  # morning part
        end_date = today
    else:
        return None
    return datetime.combine(end_date, finish, tzinfo=zone)
