"""The schedule loop's round: switch each subscriber's lines at its schedule's boundaries.

Boundaries, not states: at each boundary (where the due scenario changes) the lines are
set to what is due, once; a manual change between boundaries stands until the next one.
A timed override ("closed until 18:00", Subscriber.scenario_until) wins while it runs: a
boundary passed meanwhile is not switched but becomes what the override returns to
(Subscriber.scenario_after); when the override ends the schedule's scenario applies (here,
or by Control.revert_due, whichever comes first: both set the same scenario).

Once per boundary, across rounds and gateways: a ScheduleSwitch row keyed (subscriber,
boundary) is inserted before switching (the unique constraint refuses a second claim),
marked applied after; a switch the PBX refused deletes its claim, so the next round tries
again, and a claim left unapplied by a crash is dropped after STALE_CLAIM. A boundary is
`since` the later of the stretch start and the schedule's last edit (an edit applies what
is due at once), and is handled if any switch at or after it is logged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError

from gateway.admin.policy import OutboundRefused
from gateway.control import audit
from gateway.control.labels import SCENARIO_LABELS
from gateway.control.lines import Control
from gateway.delivery.message_render import MessagePayload
from gateway.delivery.notices import NewNotification, Notices
from gateway.pbx.errors import PbxUnavailable
from gateway.schedule import rules
from locales import tr
from models.db import Subscriber, Urgency
from models.schedule import (
    Schedule,
    ScheduleClosure,
    SchedulePeriod,
    ScheduleSwitch,
    WeekPlan,
    plan_of,
)
from models.vocab import Kind, Scenario

log = logging.getLogger(__name__)

CHANNEL = "schedule"  # the audit log's channel (and actor) for the schedule's switches
STALE_CLAIM = timedelta(minutes=2)  # a claim not applied by then was lost to a crash
ROUND_EVERY = 10.0  # seconds between rounds: a boundary is switched within this


class Switcher:
    def __init__(
        self,
        control: Control,
        notices: Notices | None = None,
        on_switch: Callable[[ScheduleSwitch], None] = lambda switch: None,
    ) -> None:
        self._control = control
        self._notices = notices  # None: nothing is announced
        self._on_switch = on_switch
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # tests set their own

    async def round(self, now: datetime) -> int:
        """Handle every enabled schedule's due boundary at `now`; returns how many lines
        were switched. A subscriber the PBX could not switch is retried next round."""
        now = now.astimezone(UTC)  # stored and compared in UTC (SQLite compares text)
        await ScheduleSwitch.filter(applied=False, at__lt=now - STALE_CLAIM).delete()
        schedules = await Schedule.filter(enabled=True).select_related("subscriber")
        if not schedules:
            return 0
        ids = [s.id for s in schedules]
        periods: dict[int, list[SchedulePeriod]] = defaultdict(list)
        for p in await SchedulePeriod.filter(schedule_id__in=ids):
            periods[p.schedule_id].append(p)  # type: ignore[attr-defined]
        closures: dict[int, list[ScheduleClosure]] = defaultdict(list)
        for c in await ScheduleClosure.filter(schedule_id__in=ids):
            closures[c.schedule_id].append(c)  # type: ignore[attr-defined]
        switched = 0
        for schedule in schedules:
            plan = plan_of(schedule, periods[schedule.id], closures[schedule.id])
            try:
                switched += await self._one(schedule, plan, now)
            except PbxUnavailable as exc:
                log.warning(
                    "subscriber %s: schedule switch waits (%s)", schedule.subscriber.id, exc
                )
        return switched

    async def _one(self, schedule: Schedule, plan: WeekPlan, now: datetime) -> int:
        sub = schedule.subscriber
        due = rules.due_at(plan, sub.timezone, now)
        since = max(t for t in (due.since, schedule.updated_at) if t is not None)
        if since > now:  # edited after this round's clock: nothing is due by it yet
            return 0
        until = sub.scenario_until
        if until is not None and until > now:  # a timed override runs: it returns to `due`
            await self._hold(sub, due, since, until, now)
            return 0
        reason = due.reason
        if until is not None:  # it ended and was not reverted yet: the schedule takes over
            since, reason = max(since, until), "override"
        elif await ScheduleSwitch.exists(subscriber_id=sub.id, boundary__gte=since):
            return 0
        claim = await self._claim(sub, due.scenario, reason, since, now)
        if claim is None:
            return 0
        previous = Scenario(sub.scenario)
        try:
            if previous is not due.scenario or until is not None:
                await self._control.set_scenario(sub, due.scenario)
        except OutboundRefused as exc:  # forward to a number the policy now refuses
            await self._applied(claim, changed=False)
            await audit.record(CHANNEL, CHANNEL, sub, _said(due.scenario), audit.REFUSED, str(exc))
            return 0
        except BaseException:
            await ScheduleSwitch.filter(id=claim.id, applied=False).delete()
            raise
        changed = previous is not due.scenario
        await self._applied(claim, changed=changed)
        if not changed:
            return 0
        log.info(
            "subscriber %s: schedule switched %s -> %s at %s (%s)",
            sub.id,
            previous.value,
            due.scenario.value,
            since.isoformat(),
            reason,
        )
        await audit.record(
            CHANNEL, CHANNEL, sub, _said(due.scenario), audit.DONE, f"{reason} {since.isoformat()}"
        )
        if schedule.announce:
            await self._announce(sub, due.scenario, since, now)
        return 1

    async def _hold(
        self, sub: Subscriber, due: rules.Due, since: datetime, until: datetime, now: datetime
    ) -> None:
        """A boundary passed during an override: it becomes what the override returns to."""
        if await ScheduleSwitch.exists(subscriber_id=sub.id, boundary__gte=since):
            return
        claim = await self._claim(sub, due.scenario, due.reason, since, now, held_until=until)
        if claim is None:
            return
        # Only while an override runs (whichever: what it returns to is the schedule's).
        # Not by equality on scenario_until: SQLite compares the stored text, offset and all.
        await Subscriber.filter(id=sub.id, scenario_until__isnull=False).update(
            scenario_after=due.scenario
        )
        await self._applied(claim, changed=False)
        log.info(
            "subscriber %s: schedule's %s at %s held by an override until %s",
            sub.id,
            due.scenario.value,
            since.isoformat(),
            until.isoformat(),
        )

    async def _claim(
        self,
        sub: Subscriber,
        scenario: Scenario,
        reason: str,
        boundary: datetime,
        now: datetime,
        held_until: datetime | None = None,
    ) -> ScheduleSwitch | None:
        """The boundary's row, or None if another round claimed it first."""
        try:
            return await ScheduleSwitch.create(
                subscriber_id=sub.id,
                boundary=boundary,
                scenario=scenario,
                previous=sub.scenario,
                reason=reason,
                held_until=held_until,
                at=now,
            )
        except IntegrityError:
            return None

    async def _applied(self, claim: ScheduleSwitch, *, changed: bool) -> None:
        claim.applied, claim.changed = True, changed
        await claim.save(update_fields=["applied", "changed"])
        self._on_switch(claim)

    async def _announce(
        self, sub: Subscriber, scenario: Scenario, since: datetime, now: datetime
    ) -> None:
        if self._notices is None:
            return
        lang = sub.language
        text = tr(
            lang,
            "Office hours: your lines are now set to {scenario}.",
            scenario=tr(lang, SCENARIO_LABELS[scenario]),
        )
        payload = MessagePayload(subscriber=sub.name, at=now, timezone=sub.timezone, text=text)
        key = f"schedule:{sub.id}:{since.isoformat()}"
        notice = NewNotification(key, sub, Kind.MESSAGE, Urgency.NORMAL, payload.to_json())
        await self._notices.create([notice])


def _said(scenario: Scenario) -> str:
    return f"scenario {scenario.value}"
