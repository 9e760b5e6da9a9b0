"""The diary: bookings without double booking, alternatives offered, days, .ics invites."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from gateway.diary import appointments as diary
from gateway.diary.appointments import (
    DiaryError,
    InThePast,
    OutsideWorkingHours,
    Overlap,
    book,
    day,
    ics_invite,
)
from models.db import Appointment, Subscriber

ATHENS = ZoneInfo("Europe/Athens")
MONDAY = date(2026, 11, 23)  # Athens is on UTC+2 then
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=ATHENS)  # before opening on the day under test


def when(event: icalendar.Component, name: str) -> datetime:
    value = event.decoded(name)
    assert isinstance(value, datetime)
    return value


def at(hhmm: str, on: date = MONDAY, zone: ZoneInfo = ATHENS) -> datetime:
    return datetime.combine(on, time.fromisoformat(hhmm), tzinfo=zone)


async def athens_office() -> Subscriber:
    return await Subscriber.create(
        name="Ιατρείο Παπαδόπουλος", language="el", timezone="Europe/Athens"
    )


async def test_a_booking_is_stored_in_utc_with_an_ics_uid(db: str) -> None:
    office = await athens_office()
    made = await book(office, at("10:00:30"), "Μαρία", note="πρώτη επίσκεψη", now=NOW)

    stored = await Appointment.get(id=made.id)
    assert stored.subscriber_id == office.id  # type: ignore[attr-defined]
    assert stored.starts_at == at("10:00")  # the diary works in whole minutes
    assert stored.ends_at == at("10:30")
    assert stored.starts_at.utcoffset() == timedelta(0)
    assert (stored.name, stored.note) == ("Μαρία", "πρώτη επίσκεψη")
    assert stored.uid.endswith("@frontdesk") and len(stored.uid) == 36 + len("@frontdesk")

    longer = await book(office, at("11:00"), "Ivan", length=timedelta(hours=1), now=NOW)
    assert longer.ends_at == at("12:00")
    assert longer.uid != made.uid


async def test_back_to_back_bookings_are_fine(db: str) -> None:
    office = await athens_office()
    await book(office, at("10:00"), "middle", now=NOW)
    await book(office, at("10:30"), "after", now=NOW)
    await book(office, at("09:30"), "before", now=NOW)
    assert [a.name for a in await day(office, MONDAY)] == ["before", "middle", "after"]


@pytest.mark.parametrize(
    ("start", "length"),
    [
        ("10:00", timedelta(minutes=30)),  # the same slot
        ("10:15", timedelta(minutes=30)),  # starts inside
        ("09:45", timedelta(minutes=30)),  # ends inside
        ("09:00", timedelta(hours=3)),  # contains it
        ("10:10", timedelta(minutes=5)),  # inside it
    ],
)
async def test_an_overlapping_booking_is_refused(db: str, start: str, length: timedelta) -> None:
    office = await athens_office()
    await book(office, at("10:00"), "first", now=NOW)
    with pytest.raises(Overlap):
        await book(office, at(start), "second", length=length, now=NOW)
    assert await Appointment.filter(subscriber_id=office.id).count() == 1


async def test_overlap_offers_the_nearest_free_slots_later_that_day_first(db: str) -> None:
    office = await athens_office()
    await book(office, at("10:00"), "a", now=NOW)
    await book(office, at("11:00"), "b", now=NOW)

    with pytest.raises(Overlap) as refused:
        await book(office, at("10:15"), "c", now=NOW)

    free = refused.value.free
    # 10:30 fits between the two; 10:45 would run into 11:00; the offers do not overlap.
    assert free == [at("10:30"), at("11:30"), at("12:00")]
    assert all(slot.tzinfo == ATHENS for slot in free)
    assert "10:30" in str(refused.value)
    for slot in free:  # really free: each can be booked
        await book(office, slot, "c", now=NOW)


async def test_overlap_looks_back_skips_the_past_then_tries_the_next_day(db: str) -> None:
    office = await athens_office()
    await book(office, at("12:30"), "afternoon", length=timedelta(hours=5, minutes=30), now=NOW)
    now = at("11:20")

    with pytest.raises(Overlap) as refused:
        await book(office, at("13:00"), "late", now=now)

    # Nothing later today; earlier: 12:00 and 11:30 (11:15 has passed); then tomorrow morning.
    assert refused.value.free == [at("12:00"), at("11:30"), at("09:00", MONDAY + timedelta(1))]


async def test_overlap_with_a_full_diary_offers_nothing(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(diary, "SEARCH_DAYS", 0)
    office = await athens_office()
    await book(office, at("09:00"), "all day", length=timedelta(hours=9), now=NOW)
    with pytest.raises(Overlap) as refused:
        await book(office, at("12:00"), "no room", now=NOW)
    assert refused.value.free == []
    assert "none" in str(refused.value)


async def test_alternatives_keep_to_working_hours_of_each_local_day(db: str) -> None:
    office = await athens_office()
    await book(office, at("16:00"), "long", length=timedelta(hours=2), now=NOW)
    with pytest.raises(Overlap) as refused:
        await book(office, at("15:30"), "two hours", length=timedelta(hours=2), now=NOW)
    for slot in refused.value.free:
        local = slot.astimezone(ATHENS)
        assert local.time() >= time(9) and (local + timedelta(hours=2)).time() <= time(18)
    assert refused.value.free == [at("14:00"), at("12:00"), at("10:00")]


async def test_two_racing_bookings_for_one_slot_cannot_both_win(db: str) -> None:
    office = await athens_office()
    results = await asyncio.gather(
        *(book(office, at("10:00"), f"caller {n}", now=NOW) for n in range(5)),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, Appointment)]
    assert len(won) == 1
    assert all(isinstance(r, Overlap) for r in results if r is not won[0])
    assert await Appointment.filter(subscriber_id=office.id).count() == 1


@pytest.mark.parametrize(
    ("start", "length", "error", "message"),
    [
        ("07:59", timedelta(minutes=30), InThePast, "already passed"),
        ("08:45", timedelta(minutes=30), OutsideWorkingHours, "working hours"),
        ("17:45", timedelta(minutes=30), OutsideWorkingHours, "working hours"),
        ("18:00", timedelta(minutes=30), OutsideWorkingHours, "working hours"),
        ("20:00", timedelta(minutes=30), OutsideWorkingHours, "working hours"),
        ("10:00", timedelta(0), DiaryError, "last some time"),
        ("10:00", timedelta(minutes=30), DiaryError, "needs a name"),
    ],
)
async def test_past_or_out_of_hours_is_refused_clearly(
    db: str, start: str, length: timedelta, error: type[DiaryError], message: str
) -> None:
    office = await athens_office()
    with pytest.raises(error, match=message) as refused:
        await book(office, at(start), " " if "name" in message else "x", length=length, now=NOW)
    assert isinstance(refused.value, ValueError)
    assert await Appointment.all().count() == 0


async def test_the_edges_of_the_working_day_can_be_booked(db: str) -> None:
    office = await athens_office()
    await book(office, at("09:00"), "first", now=NOW)
    await book(office, at("17:30"), "last", now=NOW)  # ends at 18:00 sharp
    await book(office, at("12:00"), "now", now=at("12:00"))  # starting this very minute


async def test_the_past_is_relative_to_the_injected_now(db: str) -> None:
    office = await athens_office()
    with pytest.raises(InThePast):
        await book(office, at("10:00"), "x", now=at("10:01"))
    # A day later in Athens is still bookable; the wall clock is never consulted.
    await book(office, at("10:00", MONDAY + timedelta(1)), "x", now=at("10:01"))


async def test_a_naive_time_is_a_programming_error(db: str) -> None:
    office = await athens_office()
    with pytest.raises(TypeError, match="timezone-aware"):
        await book(office, datetime(2026, 11, 23, 10, 0), "x", now=NOW)


async def test_working_hours_follow_the_local_clock_over_a_dst_change(db: str) -> None:
    # Athens leaves summer time on 2026-10-25 at 04:00: 09:00 is 06:00 UTC on the 24th,
    # 07:00 UTC on the 25th.
    office = await athens_office()
    now = datetime(2026, 10, 24, 5, 0, tzinfo=UTC)
    saturday = await book(office, at("09:00", date(2026, 10, 24)), "x", now=now)
    sunday = await book(office, at("09:00", date(2026, 10, 25)), "x", now=now)
    assert saturday.starts_at == datetime(2026, 10, 24, 6, 0, tzinfo=UTC)
    assert sunday.starts_at == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)
    with pytest.raises(OutsideWorkingHours):
        await book(office, datetime(2026, 10, 25, 6, 30, tzinfo=UTC), "x", now=now)


async def test_day_lists_that_local_day_in_order_across_the_utc_date_line(db: str) -> None:
    # Vladivostok is UTC+10: 09:00 there on the 24th is 23:00 UTC on the 23rd.
    vladivostok = ZoneInfo("Asia/Vladivostok")
    office = await Subscriber.create(name="Салон", language="ru", timezone="Asia/Vladivostok")
    other = await athens_office()
    now = datetime(2026, 11, 22, tzinfo=UTC)
    tuesday = date(2026, 11, 24)

    await book(office, at("17:00", tuesday, vladivostok), "вечер", now=now)
    await book(office, at("09:00", tuesday, vladivostok), "утро", now=now)
    await book(office, at("17:30", tuesday - timedelta(1), vladivostok), "вчера", now=now)
    await book(office, at("09:00", tuesday + timedelta(1), vladivostok), "завтра", now=now)
    await book(other, at("12:00", tuesday), "someone else's", now=now)

    listed = await day(office, tuesday)
    assert [a.name for a in listed] == ["утро", "вечер"]
    assert listed[0].starts_at == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
    assert [a.name for a in await day(office, tuesday - timedelta(1))] == ["вчера"]
    assert await day(office, date(2026, 11, 30)) == []


async def test_ics_invite_parses_back_with_uid_greek_summary_and_the_booked_instant(
    db: str,
) -> None:
    office = await athens_office()
    summary = "Κυρία Παπαδοπούλου — έλεγχος δοντιών"
    note = "Перезвонить накануне. 请提前十分钟到达。" * 3  # long enough to be folded
    made = await book(office, at("10:00"), summary, note=note, now=NOW)
    stored = await Appointment.get(id=made.id)

    raw = ics_invite(stored, office, organizer_email="desk@example.com")

    assert summary.encode() in raw.replace(b"\r\n ", b"")  # UTF-8 as is, not escaped
    assert max(len(line) for line in raw.split(b"\r\n")) <= 75  # folded by octets (RFC 5545)
    calendar = icalendar.Calendar.from_ical(raw)
    assert calendar["METHOD"] == "PUBLISH"
    assert calendar["PRODID"] == diary.PRODID
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]) == stored.uid
    assert str(event["SUMMARY"]) == summary
    assert str(event["DESCRIPTION"]) == note
    assert when(event, "DTSTART") == at("10:00") == stored.starts_at
    assert when(event, "DTEND") == at("10:30")
    assert event["DTSTART"].params["TZID"] == "Europe/Athens"
    assert when(event, "DTSTAMP") == stored.created_at.replace(microsecond=0)
    assert str(event["ORGANIZER"]) == "mailto:desk@example.com"
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Athens"]


async def test_ics_invite_without_note_or_organizer(db: str) -> None:
    office = await Subscriber.create(name="茶馆", language="zh", timezone="Asia/Shanghai")
    made = await book(
        office, at("09:30", MONDAY + timedelta(1), ZoneInfo("Asia/Shanghai")), "王先生", now=NOW
    )
    [event] = icalendar.Calendar.from_ical(ics_invite(made, office)).walk("VEVENT")
    assert str(event["SUMMARY"]) == "王先生"
    assert "DESCRIPTION" not in event and "ORGANIZER" not in event
    assert when(event, "DTSTART") == made.starts_at


async def test_ics_invite_falls_back_to_utc_without_vtimezone_tooling(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    office = await athens_office()
    made = await book(office, at("10:00"), "Μαρία", now=NOW)
    monkeypatch.delattr(icalendar.Timezone, "from_tzid")
    calendar = icalendar.Calendar.from_ical(ics_invite(made, office))
    [event] = calendar.walk("VEVENT")
    assert calendar.walk("VTIMEZONE") == []
    assert when(event, "DTSTART") == at("10:00")
    assert when(event, "DTSTART").utcoffset() == timedelta(0)
