"""The diary's move and cancel (used by the web desk): book()'s rules, own diary only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.diary import appointments as diary
from models.db import Appointment, Subscriber

ZONE = ZoneInfo("Europe/Athens")
NOW = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # Monday 09:00 in Athens


def at(hour: int, minute: int = 0, days: int = 1) -> datetime:
    return datetime(2026, 3, 2 + days, hour, minute, tzinfo=ZONE)


async def _subscriber(name: str = "Dr A") -> Subscriber:
    return await Subscriber.create(name=name, language="en", timezone="Europe/Athens")


async def test_move_keeps_the_length_and_may_overlap_only_itself(db: str) -> None:
    s = await _subscriber()
    first = await diary.book(s, at(10), "First", length=timedelta(minutes=45), now=NOW)
    await diary.book(s, at(12), "Second", now=NOW)
    moved = await diary.move(s, first.id, at(10, 15), now=NOW)  # overlaps its old self only
    assert moved.starts_at == at(10, 15) and moved.ends_at - moved.starts_at == timedelta(
        minutes=45
    )
    with pytest.raises(diary.Overlap) as refused:
        await diary.move(s, first.id, at(11, 30), now=NOW)
    assert refused.value.free  # alternatives offered
    with pytest.raises(diary.InThePast):
        await diary.move(s, first.id, at(8, days=0), now=NOW)
    with pytest.raises(diary.OutsideWorkingHours):
        await diary.move(s, first.id, at(22), now=NOW)
    assert (await Appointment.get(id=first.id)).starts_at == at(10, 15)


async def test_another_subscribers_appointment_is_not_found(db: str) -> None:
    a, b = await _subscriber(), await _subscriber("Dr B")
    theirs = await diary.book(b, at(10), "B's", now=NOW)
    with pytest.raises(LookupError):
        await diary.move(a, theirs.id, at(11), now=NOW)
    assert not await diary.cancel(a, theirs.id)
    assert await Appointment.exists(id=theirs.id)
    assert await diary.cancel(b, theirs.id)
    assert not await diary.cancel(b, theirs.id)


async def test_two_moves_racing_to_one_slot_leave_one_there(db: str) -> None:
    s = await _subscriber()
    one = await diary.book(s, at(10), "One", now=NOW)
    two = await diary.book(s, at(11), "Two", now=NOW)
    results = await asyncio.gather(
        diary.move(s, one.id, at(14), now=NOW),
        diary.move(s, two.id, at(14), now=NOW),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Appointment) for r in results) == 1
    assert sum(isinstance(r, diary.Overlap) for r in results) == 1
    assert (
        await Appointment.filter(subscriber_id=s.id, starts_at=at(14).astimezone(UTC)).count() == 1
    )
