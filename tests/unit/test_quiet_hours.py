"""Quiet hours in the subscriber's timezone, across midnight and DST."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.delivery.quiet_hours import BadQuietHours, quiet_until


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-11-23T20:30", "2026-11-24T07:00+02:00"),  # 22:30 Athens: evening part
        ("2026-11-24T03:00", "2026-11-24T07:00+02:00"),  # 05:00 Athens: morning part
        ("2026-11-24T05:00", None),  # 07:00 Athens: over
        ("2026-11-23T12:00", None),  # 14:00 Athens: day
        ("2026-11-23T19:59", None),  # 21:59 Athens
    ],
)
def test_overnight_quiet_hours_in_athens(now: str, expected: str | None) -> None:
    until = quiet_until("22:00", "07:00", "Europe/Athens", utc(now))
    assert until == (datetime.fromisoformat(expected) if expected else None)


def test_same_instant_is_quiet_in_one_zone_and_not_in_another() -> None:
    now = utc("2026-11-23T21:00")  # 23:00 Athens, 05:00 Shanghai, 00:00 Moscow
    assert quiet_until("22:00", "07:00", "Europe/Athens", now) is not None
    assert quiet_until("22:00", "07:00", "Asia/Shanghai", now) is not None
    assert quiet_until("22:00", "04:00", "Asia/Shanghai", now) is None
    assert quiet_until("01:00", "07:00", "Europe/Moscow", now) is None


def test_end_follows_the_wall_clock_over_a_dst_change() -> None:
    # Athens leaves summer time on 2026-10-25 at 04:00 local: 07:00 is then UTC+2, not +3.
    until = quiet_until("22:00", "07:00", "Europe/Athens", utc("2026-10-24T20:00"))
    assert until is not None and until.astimezone(UTC) == utc("2026-10-25T05:00")


def test_none_or_empty_period() -> None:
    now = utc("2026-11-23T21:00")
    assert quiet_until(None, None, "UTC", now) is None
    assert quiet_until("08:00", "08:00", "UTC", now) is None


def test_bad_value_is_a_clear_error() -> None:
    with pytest.raises(BadQuietHours, match="HH:MM"):
        quiet_until("10pm", "07:00", "UTC", utc("2026-11-23T21:00"))
