"""The demo's office hours, reminders and web desk (issue 14), for the Greek subscriber.

On a controlled clock (a weekday two or more days ahead, so the real-clock loops have
nothing to do meanwhile): her schedule (weekdays 09:00-17:00 `agent`, otherwise `closed`)
switches her line to closed at 17:00, and the sandbox AMI receives the DBPut. An
appointment for the next morning, booked with the end customer's mobile, gets its
reminder SMS at 18:00 the day before; the customer answers `1`, the appointment is
confirmed and the subscriber told. Last she opens her web desk through a magic link (the
URL is printed), as a browser would: the link, then the desk's first page.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from bot.runtime import Runtime
from gateway.diary import appointments as diary
from gateway.schedule import admin as schedules
from gateway.web.links import issue_link
from models.db import Appointment, Notification, Subscriber
from models.reminders import Reminder, ReminderStatus
from models.schedule import ScheduleSwitch
from models.vocab import Kind, Scenario
from sandbox.ami_server import AmiServer
from sandbox.smsc import SmscServer

WAIT = 20.0
CUSTOMER = "+306977000123"  # the end customer's mobile, as booked
CUSTOMER_NAME = "Νίκος Αλεξίου"


def office_day(zone: ZoneInfo, today: date) -> date:
    """A Monday to Thursday at least two days ahead: the next day is a working day too."""
    day = today + timedelta(days=2)
    while day.weekday() > 3:
        day += timedelta(days=1)
    return day


def _at(day: date, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)


async def office_hours(
    runtime: Runtime, ami: AmiServer, subscriber_name: str, ddi: str
) -> dict[str, Any]:
    """The schedule switches the line to closed at 17:00 on the controlled clock."""
    subscriber = await Subscriber.get(name=subscriber_name)
    zone = ZoneInfo(subscriber.timezone)
    day = office_day(zone, datetime.now(zone).date())
    clock = [_at(day, 16, 59, zone)]
    switcher = runtime.gateway.schedule
    switcher.clock = lambda: clock[0]  # the schedule loop runs on the demo's clock too
    spec = schedules.parse_period("mon-fri 09:00-17:00=agent")
    await schedules.set_schedule(subscriber.id, [spec], default=Scenario.CLOSED, announce=True)
    await switcher.round(clock[0])  # 16:59: agent is due, as the line already is
    before = len(ami.actions)
    clock[0] = _at(day, 17, 0, zone)
    switched = await switcher.round(clock[0])
    put = await ami.wait_action(
        "DBPut",
        lambda a: a.get("Key") == f"scenario/{ddi}" and a.get("Val") == Scenario.CLOSED,
        WAIT,
    )
    last = await ScheduleSwitch.filter(subscriber_id=subscriber.id).order_by("-id").first()
    return {
        "day": day.isoformat(),
        "switched_at": clock[0].astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"),
        "switched": switched,  # by this round (the loop, on the same clock, may come first)
        "changed": bool(last and last.changed),
        "scenario": last.scenario.value if last else None,
        "previous": last.previous.value if last and last.previous else None,
        "dbput": f"{put.get('Family')}/{put.get('Key')}={put.get('Val')}",
        "dbput_after_switch": ami.actions.index(put) >= before,
    }


async def reminder(runtime: Runtime, smsc: SmscServer, subscriber_name: str) -> dict[str, Any]:
    """Booked for the next morning with the customer's mobile; reminded at 18:00 the day
    before (the controlled clock); the customer's `1` confirms; the subscriber is told."""
    subscriber = await Subscriber.get(name=subscriber_name)
    zone = ZoneInfo(subscriber.timezone)
    day = office_day(zone, datetime.now(zone).date())
    now = _at(day, 12, 0, zone)
    booked = await diary.book(
        subscriber,
        _at(day + timedelta(days=1), 10, 0, zone),
        CUSTOMER_NAME,
        now=now,
        phone=CUSTOMER,
        lang="el",
    )
    number = CUSTOMER.lstrip("+")
    reminders = runtime.gateway.reminders
    sent_early = await reminders.run(_at(day, 17, 59, zone))
    sent = await reminders.run(_at(day, 18, 0, zone))
    await smsc.wait_until(lambda: any(m.destination == number for m in smsc.messages), WAIT)
    await smsc.inject_mo(number, "Frontdesk", "1")
    # The customer's short answer is written with the diary change and the subscriber's
    # notice, in one transaction: once it is sent, both are there.
    await smsc.wait_until(lambda: sum(m.destination == number for m in smsc.messages) >= 2, WAIT)
    row = await Reminder.get(appointment_id=booked.id)
    told = await Notification.filter(
        subscriber_id=subscriber.id, dedupe_key=f"reminder:{row.id}:confirmed"
    ).first()
    texts = [m.text for m in smsc.messages if m.destination == number]
    return {
        "appointment": (await Appointment.get(id=booked.id)).starts_at.isoformat(),
        "sent_at_17_59": sent_early,
        "sent_at_18_00": sent,
        "sms_to_customer": texts,
        "status": row.status.value,
        "confirmed": row.status is ReminderStatus.CONFIRMED,
        "subscriber_told": told is not None and told.kind == Kind.MESSAGE,
    }


async def web_desk(runtime: Runtime, subscriber_name: str) -> dict[str, Any]:
    """A magic link for the subscriber (printed), opened as a browser would."""
    subscriber = await Subscriber.get(name=subscriber_name)
    url = await issue_link(subscriber.id, runtime.gateway.web_base_url())
    print(f"web desk for {subscriber_name}: {url}")
    # A browser keeps a cookie from 127.0.0.1; aiohttp's jar does only when told to.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(url) as first:  # follows the 303 to /desk/ with the cookie
            page = await first.text()
            landed, status = first.url.path, first.status
        async with http.get(url) as again:  # a link opens once
            reused = again.status
    return {
        "link": url.split("/desk/auth/")[0] + "/desk/auth/…",  # the token is a secret
        "landed_on": landed,
        "status": status,
        "today_page": 'data-testid="today"' in page,
        "link_reused_status": reused,
    }


async def office_report(
    runtime: Runtime,
    ami: AmiServer,
    smsc: SmscServer,
    subscriber_name: str,
    ddi: str,
) -> dict[str, Any]:
    return {
        "office": {
            "schedule": await office_hours(runtime, ami, subscriber_name, ddi),
            "reminder": await reminder(runtime, smsc, subscriber_name),
            "web_desk": await web_desk(runtime, subscriber_name),
        }
    }


def check_office(report: dict[str, Any]) -> list[str]:
    office = report.get("office")
    if office is None:
        return ["the office part (schedule, reminder, web desk) did not run"]
    problems = []
    s, r, w = office["schedule"], office["reminder"], office["web_desk"]
    if (s["scenario"], s["changed"], s["dbput_after_switch"]) != ("closed", True, True):
        problems.append(f"expected the schedule to switch the line to closed at 17:00: {s}")
    if (r["sent_at_17_59"], r["sent_at_18_00"], r["status"], r["subscriber_told"]) != (
        0,
        1,
        "confirmed",
        True,
    ):
        problems.append(f"expected one reminder at 18:00, confirmed by `1`, subscriber told: {r}")
    if (w["status"], w["landed_on"], w["today_page"], w["link_reused_status"]) != (
        200,
        "/desk/",
        True,
        400,
    ):
        problems.append(f"expected the magic link to open the desk once: {w}")
    return problems


def print_office(report: dict[str, Any]) -> None:
    office = report.get("office")
    if not office:
        return
    s, r, w = office["schedule"], office["reminder"], office["web_desk"]
    print("\nOffice hours, reminders and the web desk:")
    print(f"  schedule: {s['previous']} -> {s['scenario']} at {s['switched_at']} ({s['dbput']})")
    print(f"  reminder: sent at 18:00 the day before, answered `1`: {r['status']}")
    opened = f"{w['landed_on']} ({w['status']})"
    print(f"  web desk: magic link -> {opened}; opened again: {w['link_reused_status']}")
