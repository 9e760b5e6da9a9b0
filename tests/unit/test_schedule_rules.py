"""Office-hours schedules on a controlled clock: what is due and when it changes (pure),
and the switch round against a scripted AMI link: boundaries switched once, holidays and
closures closed, DST at local wall-clock time, a timed override winning until it ends,
two rounds at once switching once, and the diary's bookable hours from the schedule."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.control import admin
from gateway.control.lines import Control
from gateway.diary import appointments as diary
from gateway.schedule import admin as schedules
from gateway.schedule import rules
from gateway.schedule.switcher import Switcher
from gateway.schedule.view import schedule_view
from models.db import AuditEntry, Notification, Subscriber
from models.schedule import Period, ScheduleSwitch, WeekPlan, local_instant
from models.vocab import Scenario

ATHENS = ZoneInfo("Europe/Athens")
DDI = "2105550100"
OFFICE = WeekPlan(
    periods=tuple(Period(day, 9 * 60, 17 * 60, Scenario.AGENT) for day in range(5)),
    default=Scenario.CLOSED,
    country="GR",
)


def at(*args: int) -> datetime:
    """A local Athens wall-clock time as an aware datetime."""
    return datetime(*args, tzinfo=ATHENS)  # type: ignore[misc]


# -- pure rules ---------------------------------------------------------------------------


def test_weekday_hours_switch_at_nine_and_five_local() -> None:
    # Wednesday 2025-03-05
    morning = rules.due_at(OFFICE, "Europe/Athens", at(2025, 3, 5, 8, 59))
    assert morning.scenario is Scenario.CLOSED
    assert morning.until == at(2025, 3, 5, 9, 0)
    midday = rules.due_at(OFFICE, "Europe/Athens", at(2025, 3, 5, 12, 0))
    assert (midday.scenario, midday.reason) == (Scenario.AGENT, "period")
    assert midday.since == at(2025, 3, 5, 9, 0)
    assert midday.until == at(2025, 3, 5, 17, 0)
    evening = rules.due_at(OFFICE, "Europe/Athens", at(2025, 3, 5, 17, 0))
    assert evening.scenario is Scenario.CLOSED and evening.since == at(2025, 3, 5, 17, 0)


def test_the_weekend_is_one_closed_stretch_from_friday_to_monday() -> None:
    saturday = rules.due_at(OFFICE, "Europe/Athens", at(2025, 3, 8, 12, 0))
    assert saturday.scenario is Scenario.CLOSED
    assert saturday.since == at(2025, 3, 7, 17, 0)
    assert saturday.until == at(2025, 3, 10, 9, 0)


def test_a_public_holiday_stays_closed_all_day() -> None:
    # 25 March 2025 (a Tuesday) is Greece's Independence Day.
    due = rules.due_at(OFFICE, "Europe/Athens", at(2025, 3, 25, 11, 0))
    assert (due.scenario, due.reason) == (Scenario.CLOSED, "holiday")
    assert due.since == at(2025, 3, 24, 17, 0)
    assert due.until == at(2025, 3, 26, 9, 0)
    # Without the country the same day is a working day.
    plain = WeekPlan(OFFICE.periods, Scenario.CLOSED)
    assert rules.due_at(plain, "Europe/Athens", at(2025, 3, 25, 11, 0)).scenario is Scenario.AGENT


def test_a_closure_is_outside_hours() -> None:
    closed = WeekPlan(
        OFFICE.periods, Scenario.CLOSED, closures=((date(2025, 8, 4), date(2025, 8, 8)),)
    )
    due = rules.due_at(closed, "Europe/Athens", at(2025, 8, 6, 10, 0))
    assert (due.scenario, due.reason) == (Scenario.CLOSED, "closure")
    assert due.until == at(2025, 8, 11, 9, 0)


def test_boundaries_stay_at_local_wall_clock_time_across_dst() -> None:
    # Athens moves from UTC+2 to UTC+3 on Sunday 30 March 2025.
    friday = rules.due_at(OFFICE, "Europe/Athens", at(2025, 3, 28, 12, 0))
    assert friday.until == datetime(2025, 3, 28, 15, 0, tzinfo=UTC)  # 17:00 at UTC+2
    weekend = rules.due_at(OFFICE, "Europe/Athens", at(2025, 3, 29, 12, 0))
    assert weekend.until == datetime(2025, 3, 31, 6, 0, tzinfo=UTC)  # 09:00 at UTC+3
    assert weekend.until.astimezone(ATHENS).hour == 9
    # ... and back in October (UTC+3 -> UTC+2 on Sunday 26 October 2025).
    autumn = rules.due_at(OFFICE, "Europe/Athens", at(2025, 10, 25, 12, 0))
    assert autumn.until == datetime(2025, 10, 27, 7, 0, tzinfo=UTC)


def test_parsing_periods() -> None:
    p = schedules.parse_period("mon-fri 09:00-17:00=agent")
    assert p == schedules.PeriodSpec((0, 1, 2, 3, 4), 540, 1020, Scenario.AGENT)
    assert schedules.parse_period("sat,sun 10:00-24:00=voicemail").ends == 1440
    for bad in ("mon 17:00-09:00=agent", "mon 09:00-17:00=nobody", "xyz 09:00-10:00=agent"):
        with pytest.raises(schedules.ScheduleError):
            schedules.parse_period(bad)


# -- the switch round against a scripted AMI link ------------------------------------------


class FakeLink:
    """AMI as a list of actions; AstDB as a dict; DBPut may be made to wait or fail."""

    def __init__(self) -> None:
        self.actions: list[dict[str, str]] = []
        self.astdb: dict[str, str] = {}
        self.refuse = False

    async def send_action(self, action: dict[str, str], timeout: float = 5.0) -> dict[str, str]:
        await asyncio.sleep(0)  # another round may run meanwhile, as over a socket
        if self.refuse:
            return {"Response": "Error", "Message": "Permission denied"}
        self.actions.append(action)
        if action["Action"] == "DBPut":
            self.astdb[action["Key"]] = action["Val"]
        return {"Response": "Success"}

    async def send_list_action(
        self, action: dict[str, str], timeout: float = 10.0
    ) -> list[dict[str, str]]:
        return []

    def puts(self) -> list[str]:
        return [a["Val"] for a in self.actions if a["Key"] == f"scenario/{DDI}"]


@pytest.fixture
async def office(db: str) -> tuple[Subscriber, FakeLink, Switcher]:
    created = await admin.add_subscriber(
        name="Dr Papadopoulos", ddis=[DDI], language="el", timezone="Europe/Athens"
    )
    link = FakeLink()
    return created.subscriber, link, Switcher(Control(link))


async def _set(subscriber: Subscriber, now: datetime, announce: bool = False) -> None:
    await schedules.set_schedule(
        subscriber.id,
        [schedules.parse_period("09:00-17:00=agent", schedules.WEEKDAYS)],
        "closed",
        "GR",
        announce=announce,
        now=now,
    )


async def _scenario(subscriber: Subscriber) -> Scenario:
    return (await Subscriber.get(id=subscriber.id)).scenario


async def test_switches_at_its_boundaries_once_each(
    office: tuple[Subscriber, FakeLink, Switcher],
) -> None:
    subscriber, link, switcher = office
    await _set(subscriber, at(2025, 3, 5, 12, 0))
    assert await switcher.round(at(2025, 3, 5, 12, 0, 5)) == 0  # agent already: no DBPut
    assert link.puts() == []
    assert await switcher.round(at(2025, 3, 5, 16, 59, 59)) == 0
    assert await switcher.round(at(2025, 3, 5, 17, 0, 1)) == 1
    assert link.puts() == ["closed"]
    assert await _scenario(subscriber) is Scenario.CLOSED
    assert await switcher.round(at(2025, 3, 5, 17, 0, 30)) == 0  # idempotent
    assert await switcher.round(at(2025, 3, 6, 9, 0, 2)) == 1
    assert link.puts() == ["closed", "agent"]
    assert await _scenario(subscriber) is Scenario.AGENT
    rows = await ScheduleSwitch.filter(subscriber_id=subscriber.id, changed=True).order_by("id")
    assert [(r.boundary, r.scenario) for r in rows] == [
        (at(2025, 3, 5, 17, 0), Scenario.CLOSED),
        (at(2025, 3, 6, 9, 0), Scenario.AGENT),
    ]
    audited = await AuditEntry.filter(channel="schedule").values_list("command", flat=True)
    assert audited == ["scenario closed", "scenario agent"]


async def test_a_public_holiday_stays_closed(
    office: tuple[Subscriber, FakeLink, Switcher],
) -> None:
    subscriber, link, switcher = office
    await _set(subscriber, at(2025, 3, 24, 12, 0))  # Monday; Tuesday 25 March is a holiday
    await switcher.round(at(2025, 3, 24, 17, 0, 1))
    for hour in (9, 12, 16):
        assert await switcher.round(at(2025, 3, 25, hour, 0, 1)) == 0
    assert link.puts() == ["closed"]
    assert await _scenario(subscriber) is Scenario.CLOSED
    assert await switcher.round(at(2025, 3, 26, 9, 0, 1)) == 1
    assert link.puts() == ["closed", "agent"]


async def test_a_closure_stays_closed(office: tuple[Subscriber, FakeLink, Switcher]) -> None:
    subscriber, link, switcher = office
    await _set(subscriber, at(2025, 8, 1, 12, 0))
    await schedules.close(subscriber.id, date(2025, 8, 4), date(2025, 8, 5), now=at(2025, 8, 1, 12))
    await switcher.round(at(2025, 8, 1, 17, 0, 1))  # Friday evening
    assert await switcher.round(at(2025, 8, 4, 9, 0, 1)) == 0
    assert await switcher.round(at(2025, 8, 6, 9, 0, 1)) == 1
    assert link.puts() == ["closed", "agent"]


async def test_the_switch_across_dst_is_at_nine_local(
    office: tuple[Subscriber, FakeLink, Switcher],
) -> None:
    subscriber, link, switcher = office
    await _set(subscriber, at(2025, 3, 28, 12, 0))
    await switcher.round(at(2025, 3, 28, 17, 0, 1))
    # 06:00 UTC on Monday 31 March is 09:00 in Athens after the change (08:00 before it).
    assert await switcher.round(datetime(2025, 3, 31, 5, 59, 59, tzinfo=UTC)) == 0
    assert await switcher.round(datetime(2025, 3, 31, 6, 0, 1, tzinfo=UTC)) == 1
    assert link.puts() == ["closed", "agent"]


async def test_a_timed_override_wins_until_it_ends_then_the_schedule_resumes(
    office: tuple[Subscriber, FakeLink, Switcher],
) -> None:
    subscriber, link, switcher = office
    control = Control(link)
    await _set(subscriber, at(2025, 3, 5, 8, 0))
    await switcher.round(at(2025, 3, 5, 8, 0, 1))  # closed (was agent)
    assert link.puts() == ["closed"]
    # At 08:30 the subscriber says "agent until 10:00": the 09:00 boundary does not switch.
    s = await Subscriber.get(id=subscriber.id)
    await control.set_scenario(s, Scenario.AGENT, until=at(2025, 3, 5, 10, 0))
    assert await switcher.round(at(2025, 3, 5, 9, 0, 1)) == 0
    # "voicemail until 18:00" at 16:00: 17:00 passes under it, closed is what comes back.
    s = await Subscriber.get(id=subscriber.id)
    await control.set_scenario(s, Scenario.VOICEMAIL, until=at(2025, 3, 5, 18, 0))
    assert await switcher.round(at(2025, 3, 5, 17, 0, 1)) == 0
    s = await Subscriber.get(id=subscriber.id)
    assert (s.scenario, s.scenario_after) == (Scenario.VOICEMAIL, Scenario.CLOSED)
    before = len(link.puts())
    assert await switcher.round(at(2025, 3, 5, 17, 59, 59)) == 0
    assert len(link.puts()) == before
    # It ends at 18:00: the schedule's scenario applies.
    assert await switcher.round(at(2025, 3, 5, 18, 0, 1)) == 1
    s = await Subscriber.get(id=subscriber.id)
    assert (s.scenario, s.scenario_until, s.scenario_after) == (Scenario.CLOSED, None, None)
    assert link.puts()[-1] == "closed"
    # ... and the schedule goes on at the next boundary.
    assert await switcher.round(at(2025, 3, 6, 9, 0, 1)) == 1
    assert link.puts()[-1] == "agent"


async def test_the_revert_loop_ending_an_override_returns_to_the_schedules_scenario(
    office: tuple[Subscriber, FakeLink, Switcher],
) -> None:
    subscriber, link, switcher = office
    control = Control(link)
    await _set(subscriber, at(2025, 3, 5, 12, 0))
    s = await Subscriber.get(id=subscriber.id)
    await control.set_scenario(s, Scenario.VOICEMAIL, until=at(2025, 3, 5, 18, 0))
    await switcher.round(at(2025, 3, 5, 17, 0, 1))  # held: closed comes back at 18:00
    await control.revert_due(at(2025, 3, 5, 18, 0, 1))  # the revert loop comes first
    assert await _scenario(subscriber) is Scenario.CLOSED
    assert await switcher.round(at(2025, 3, 5, 18, 0, 2)) == 0  # nothing left to do
    assert link.puts()[-1] == "closed"


async def test_two_rounds_at_once_switch_once(
    office: tuple[Subscriber, FakeLink, Switcher],
) -> None:
    subscriber, link, switcher = office
    await _set(subscriber, at(2025, 3, 5, 12, 0), announce=True)
    await switcher.round(at(2025, 3, 5, 12, 0, 1))
    other = Switcher(Control(link))  # another gateway's switcher on the same database
    done = await asyncio.gather(
        switcher.round(at(2025, 3, 5, 17, 0, 1)), other.round(at(2025, 3, 5, 17, 0, 2))
    )
    assert sorted(done) == [0, 1]
    assert link.puts() == ["closed"]
    rows = await ScheduleSwitch.filter(
        subscriber_id=subscriber.id, boundary=at(2025, 3, 5, 17).astimezone(UTC)
    )
    assert len(rows) == 1 and rows[0].applied


async def test_a_refused_switch_is_retried_next_round(
    office: tuple[Subscriber, FakeLink, Switcher],
) -> None:
    subscriber, link, switcher = office
    await _set(subscriber, at(2025, 3, 5, 12, 0))
    link.refuse = True
    assert await switcher.round(at(2025, 3, 5, 17, 0, 1)) == 0
    assert await _scenario(subscriber) is Scenario.AGENT
    assert not await ScheduleSwitch.exists(
        subscriber_id=subscriber.id, boundary=at(2025, 3, 5, 17).astimezone(UTC)
    )
    link.refuse = False
    assert await switcher.round(at(2025, 3, 5, 17, 0, 11)) == 1
    assert await _scenario(subscriber) is Scenario.CLOSED


async def test_a_switch_is_announced_in_the_subscribers_language(db: str) -> None:
    from gateway.delivery.notices import Notices
    from models.settings import load_settings

    created = await admin.add_subscriber(
        name="Dr P", ddis=[DDI], language="el", timezone="Europe/Athens"
    )
    notices = Notices(["telegram"], load_settings(None, environ={}).routing)
    switcher = Switcher(Control(FakeLink()), notices)
    await _set(created.subscriber, at(2025, 3, 5, 12, 0), announce=True)
    await switcher.round(at(2025, 3, 5, 17, 0, 1))
    note = await Notification.get(dedupe_key__startswith=f"schedule:{created.subscriber.id}:")
    assert "Κλειστό" in note.payload["text"] or "Ωράριο" in note.payload["text"]


async def test_the_view_lists_periods_and_switches_localised(
    office: tuple[Subscriber, FakeLink, Switcher],
) -> None:
    subscriber, _, switcher = office
    await _set(subscriber, at(2025, 3, 5, 12, 0))
    await switcher.round(at(2025, 3, 5, 17, 0, 1))
    view = await schedule_view(subscriber.id, "el", now=at(2025, 3, 5, 18, 0))
    assert view is not None
    assert view.periods[0].weekday_name == "Δευτέρα"
    assert view.periods[0].starts == "09:00" and view.holidays == "GR"
    assert view.switches[0].scenario == "closed" and view.override is None
    assert view.next_boundary == at(2025, 3, 6, 9, 0)
    assert await schedule_view(subscriber.id + 1, "el") is None


async def test_the_diary_books_only_in_the_schedules_agent_hours(
    office: tuple[Subscriber, FakeLink, Switcher],
) -> None:
    subscriber, _, _ = office
    now = at(2025, 3, 3, 8, 0)
    s = await Subscriber.get(id=subscriber.id)
    # Without a schedule: 09:00-18:00 every day.
    await diary.book(s, at(2025, 3, 5, 17, 0), "Late", now=now)
    await _set(subscriber, now)
    with pytest.raises(diary.OutsideWorkingHours):
        await diary.book(s, at(2025, 3, 6, 17, 0), "Too late", now=now)
    with pytest.raises(diary.OutsideWorkingHours):  # the holiday
        await diary.book(s, at(2025, 3, 25, 10, 0), "Holiday", now=now)
    await diary.book(s, at(2025, 3, 6, 16, 30), "Last slot", now=now)
    # Asked on a Saturday: the weekend is closed, Monday from opening is offered.
    free = await diary.free_slots(s, at(2025, 3, 8, 10, 0), now=now)
    assert free == [at(2025, 3, 10, 9, 0), at(2025, 3, 10, 9, 30), at(2025, 3, 10, 10, 0)]


def test_local_instant_handles_midnight() -> None:
    assert local_instant(date(2025, 3, 5), 1440, ATHENS) == at(2025, 3, 6, 0, 0)
    assert local_instant(date(2025, 3, 5), 540, ATHENS) - timedelta(hours=7) == datetime(
        2025, 3, 5, 0, 0, tzinfo=UTC
    )
