"""The console of live and recent calls, for directors and admins (Act.SEE_CONSOLE).

`/console` lists the live calls first (not started, waiting, in progress, forwarded and
not over), then the recent ones of a period (today by default, in the operator's time
zone), ten a page; buttons filter by period, status, subscriber and agent, with the whole
state in the button data (gateway/control/callbacks.py `cs:`). A call's detail tells its
legs, who answered, the hold time, the transfer notes and the deliveries its missed-call
notification caused; a lost or unanswered call has "Call back", which rings the
subscriber's mobile first and then the caller (Control.call_back, as the subscriber's own
button), recorded as an outbound call.

`not_started` calls are in no table: they are the channels the tracker has seen open whose
call our dialplan has not routed yet (`CallTracker.unrouted`), shown while they last.
Supervisors and agents are refused (and the refusal audited): the console shows every
subscriber's calls.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from tortoise.queryset import QuerySet

from gateway.admin.policy import OutboundRefused, refusal
from gateway.calls.tracker import Unrouted
from gateway.control import audit, callbacks
from gateway.pbx.errors import UNREACHABLE, PbxUnavailable
from gateway.staff.identity import staff_of_chat
from gateway.staff.replies import Buttons, Reply, language, not_staff, refuse
from gateway.staff.rights import Act, Owner, allowed
from locales import N_, tr
from models.db import Call, CallDirection, Delivery, Notification, Subscriber
from models.events import CallStatus
from models.staff import Agent, Card
from models.vocab import Channel

log = logging.getLogger(__name__)

PAGE = 10
# Live first, then the final ones: the order of the list and of the status filter.
LIVE = (CallStatus.NOT_STARTED, CallStatus.WAITING, CallStatus.IN_PROGRESS, CallStatus.FORWARDED)
ORDER = (
    *LIVE,
    CallStatus.ANSWERED,
    CallStatus.NOT_ANSWERED,
    CallStatus.LOST,
    CallStatus.SCHEDULED,
    CallStatus.UNKNOWN,
)
CAN_CALL_BACK = (CallStatus.LOST, CallStatus.NOT_ANSWERED)
CALLBACK_CONTEXT = "frontdesk-callback"  # our Originate's Local channel (control/lines.py)

STATUS_LABELS = {
    CallStatus.NOT_STARTED: N_("status: not started"),
    CallStatus.WAITING: N_("status: waiting"),
    CallStatus.IN_PROGRESS: N_("status: in progress"),
    CallStatus.FORWARDED: N_("status: forwarded"),
    CallStatus.ANSWERED: N_("status: answered"),
    CallStatus.NOT_ANSWERED: N_("status: not answered"),
    CallStatus.LOST: N_("status: lost"),
    CallStatus.SCHEDULED: N_("status: scheduled"),
    CallStatus.UNKNOWN: N_("status: unknown"),
}
DIRECTION_LABELS = {
    CallDirection.INBOUND: N_("direction: in"),
    CallDirection.OUTBOUND: N_("direction: out"),
    CallDirection.INTERNAL: N_("direction: internal"),
}
PERIOD_LABELS = {
    "t": N_("period: today"),
    "y": N_("period: yesterday"),
    "w": N_("period: last 7 days"),
    "m": N_("period: this month"),
}
HEADER = N_("Calls, {period}: {count}")
LIVE_HEADER = N_("Live calls")
RECENT_HEADER = N_("Recent calls")
NONE = N_("No calls in this view.")
FILTERS = N_("Filters: {filters}")
ANY = N_("filter: any")
PERIOD_BUTTON = N_("Filter: period")
STATUS_BUTTON = N_("Filter: status")
SUBSCRIBER_BUTTON = N_("Filter: subscriber")
AGENT_BUTTON = N_("Filter: agent")
BACK = N_("Back to the list")
PREVIOUS, NEXT = N_("« Newer calls"), N_("Older calls »")
DETAIL = N_("Details: {when}")
CALL_BACK = N_("Call back")
NOBODY = N_("nobody answered")
GONE = N_("That call is not there any more.")
D_HEAD = N_("Call {when} · {status} · {direction}")
D_SUBSCRIBER = N_("Subscriber: {name} (line {ddi})")
D_CALLER = N_("Caller: {caller}")
D_LEGS = N_("Legs rung: {count}")
D_ANSWERED = N_("Answered by: {who}")
D_HOLD = N_("Hold time: {seconds} s")
D_NOTE = N_("Transfer note ({agent}): {note}")
D_DELIVERIES = N_("Deliveries: {items}")
NO_MOBILE = N_("The subscriber has no mobile number to ring first.")
NO_CALLER = N_("There is no number to call back.")
CALLING = N_("Calling {subscriber}'s mobile now; then we connect {caller}.")


class CallsBack(Protocol):
    """What places a call back: gateway/control/lines.Control."""

    async def call_back(self, subscriber: Subscriber, call: Call) -> None: ...


@dataclass(frozen=True)
class View:
    """The list's state, all of it in the button data."""

    page: int = 0
    period: str = "t"
    status: int = 0  # 0: any; else 1 + the status's index in ORDER
    subscriber: int = 0
    agent: int = 0

    def data(self, view: str = "l", /, **changes: Any) -> str:
        v = replace(self, **changes)
        return callbacks.console(view, v.page, v.period, v.status, v.subscriber, v.agent)

    @property
    def wanted(self) -> CallStatus | None:
        return ORDER[self.status - 1] if 0 < self.status <= len(ORDER) else None


@dataclass(frozen=True)
class Line:
    """One call as listed (a Call row, or a channel not routed yet: id 0)."""

    id: int
    at: datetime
    status: CallStatus
    subscriber: str
    caller: str
    agent: str
    direction: CallDirection


def period_range(period: str, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a period, in UTC, by the calendar of `tz`."""
    local = now.astimezone(tz)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "y":
        start, end = today - timedelta(days=1), today
    elif period == "w":
        start, end = today - timedelta(days=6), today + timedelta(days=1)
    elif period == "m":
        start, end = today.replace(day=1), today + timedelta(days=1)
    else:
        start, end = today, today + timedelta(days=1)
    # Midnights by the wall clock, also across a change of summer time.
    start = start.replace(tzinfo=None).replace(tzinfo=tz)
    end = end.replace(tzinfo=None).replace(tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def _caller(number: str, name: str) -> str:
    if number and name:
        return f"{name} {number}"
    return number or name or "?"


class Console:
    def __init__(
        self,
        control: CallsBack,
        unrouted: Callable[[], Iterable[Unrouted]] = tuple,
        timezone: str = "Europe/Athens",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._control = control
        self._unrouted = unrouted  # the tracker's channels not routed yet
        self._tz = ZoneInfo(timezone)
        self._clock = clock

    # -- entry points (bot/console.py) ---------------------------------------------------------

    async def open(self, chat_id: int, tg: str | None) -> Reply:
        """/console: today's list, no filters."""
        return await self._as_staff(
            chat_id, tg, "/console", lambda lang: self.listing(lang, View())
        )

    async def press(self, chat_id: int, data: str, tg: str | None) -> Reply:
        """Any `cs:` button."""
        state = callbacks.unpack_console(data)
        if state is not None:
            kind, page, period, status, subscriber, agent = state
            view = View(page, period, status, subscriber, agent)
            return await self._as_staff(
                chat_id, tg, f"console {data}", lambda lang: self._show(lang, kind, view)
            )
        call = callbacks.unpack_console_call(data)
        if call is None:
            return await self._as_staff(chat_id, tg, f"console {data[:64]}", None)
        action, call_id = call
        if action == "c":
            return await self._as_staff(
                chat_id, tg, f"console call back {call_id}", None, call_back=call_id
            )
        return await self._as_staff(
            chat_id, tg, f"console {data}", lambda lang: self.detail(lang, call_id)
        )

    async def _as_staff(
        self,
        chat_id: int,
        tg: str | None,
        what: str,
        show: Callable[[str], Awaitable[Reply]] | None,
        call_back: int = 0,
    ) -> Reply:
        found = await staff_of_chat(chat_id)
        if found is None:
            return await not_staff(chat_id, language(None, tg), what)
        agent, actor = found
        lang = language(agent, tg)
        if not allowed(actor, Act.SEE_CONSOLE, Owner()):
            return await refuse(chat_id, lang, what, why=str(Act.SEE_CONSOLE))
        if call_back:
            return await self.call_back(chat_id, lang, call_back)
        if show is None:  # data we would not have written
            return Reply(toast=tr(lang, GONE))
        return await show(lang)

    async def _show(self, lang: str, kind: str, view: View) -> Reply:
        if kind == "p":
            return self._pick_period(lang, view)
        if kind == "s":
            return self._pick_status(lang, view)
        if kind == "u":
            return await self._pick_subscriber(lang, view)
        if kind == "a":
            return await self._pick_agent(lang, view)
        return await self.listing(lang, view)

    # -- the list -------------------------------------------------------------------------------

    async def lines(self, view: View) -> tuple[list[Line], list[Line], int]:
        """The live lines (all), the recent lines of the view's page, and the total count."""
        wanted = view.wanted
        names = await self._agent_names()
        agent_if = ""
        if view.agent:
            agent = await Agent.get_or_none(id=view.agent)
            agent_if = (agent.interface or "-") if agent is not None else "-"

        def keep(query: QuerySet[Call]) -> QuerySet[Call]:
            if view.subscriber:
                query = query.filter(subscriber_id=view.subscriber)
            if agent_if:
                query = query.filter(answered_by=agent_if)
            if wanted is not None:
                query = query.filter(status=wanted)
            return query

        live_rows = (
            await keep(Call.filter(ended_at__isnull=True, status__in=LIVE))
            .select_related("subscriber")
            .order_by("-started_at", "-id")
        )
        live = [self._line(c, names) for c in live_rows]
        if wanted in (None, CallStatus.NOT_STARTED) and not view.subscriber and not agent_if:
            live = [*self._not_started(), *live]
        start, end = period_range(view.period, self._clock(), self._tz)
        recent_q = keep(Call.filter(started_at__gte=start, started_at__lt=end)).exclude(
            id__in=[c.id for c in live_rows]
        )
        total_recent = await recent_q.count()
        skip = max(0, view.page * PAGE - len(live))
        room = PAGE - max(0, min(PAGE, len(live) - view.page * PAGE))
        recent_rows = (
            await recent_q.select_related("subscriber")
            .order_by("-started_at", "-id")
            .offset(skip)
            .limit(room)
            if room > 0
            else []
        )
        shown_live = live[view.page * PAGE : (view.page + 1) * PAGE]
        recent = [self._line(c, names) for c in recent_rows]
        return shown_live, recent, len(live) + total_recent

    def _not_started(self) -> list[Line]:
        found = []
        for u in self._unrouted():
            opened = u.opened
            outbound = opened.context == CALLBACK_CONTEXT
            found.append(
                Line(
                    0,
                    datetime.fromtimestamp(u.seen_at, UTC),
                    CallStatus.NOT_STARTED,
                    "",
                    _caller(opened.exten if outbound else opened.caller_number, ""),
                    "",
                    CallDirection.OUTBOUND if outbound else CallDirection.INBOUND,
                )
            )
        return sorted(found, key=lambda line: line.at, reverse=True)

    @staticmethod
    async def _agent_names() -> dict[str, str]:
        agents = await Agent.filter(interface__isnull=False).select_related("user")
        return {a.interface: a.user.name for a in agents if a.interface}

    @staticmethod
    def _line(call: Call, names: dict[str, str]) -> Line:
        subscriber = call.subscriber.name if call.subscriber is not None else call.ddi
        return Line(
            call.id,
            call.started_at,
            CallStatus(call.status),
            subscriber,
            _caller(call.caller_number, call.caller_name),
            names.get(call.answered_by, call.answered_by),
            CallDirection(call.direction),
        )

    def _when(self, at: datetime, with_date: bool) -> str:
        local = at.astimezone(self._tz)
        return local.strftime("%d.%m %H:%M" if with_date else "%H:%M")

    def describe(self, lang: str, line: Line, with_date: bool) -> str:
        parts = [
            self._when(line.at, with_date),
            tr(lang, STATUS_LABELS[line.status]),
            line.subscriber,
            line.caller,
            line.agent,
            tr(lang, DIRECTION_LABELS[line.direction]),
        ]
        return " · ".join(p for p in parts if p)

    async def listing(self, lang: str, view: View) -> Reply:
        live, recent, total = await self.lines(view)
        with_date = view.period != "t"
        period = tr(lang, PERIOD_LABELS[view.period])
        text = [tr(lang, HEADER, period=period, count=total)]
        text.append(tr(lang, FILTERS, filters=await self._filters(lang, view)))
        if live:
            text += ["", tr(lang, LIVE_HEADER)]
            text += [self.describe(lang, line, True) for line in live]
        if recent:
            text += ["", tr(lang, RECENT_HEADER)]
            text += [self.describe(lang, line, with_date) for line in recent]
        if not live and not recent:
            text += ["", tr(lang, NONE)]
        rows: list[tuple[tuple[str, str], ...]] = []
        for line in [*live, *recent]:
            if line.id:
                label = tr(lang, DETAIL, when=f"{self._when(line.at, with_date)} {line.caller}")
                rows.append(((label[:60], callbacks.console_call("d", line.id)),))
        paging = []
        if view.page > 0:
            paging.append((tr(lang, PREVIOUS), view.data(page=view.page - 1)))
        if (view.page + 1) * PAGE < total:
            paging.append((tr(lang, NEXT), view.data(page=view.page + 1)))
        if paging:
            rows.append(tuple(paging))
        rows.append(
            (
                (tr(lang, PERIOD_BUTTON), view.data("p")),
                (tr(lang, STATUS_BUTTON), view.data("s")),
            )
        )
        rows.append(
            (
                (tr(lang, SUBSCRIBER_BUTTON), view.data("u")),
                (tr(lang, AGENT_BUTTON), view.data("a")),
            )
        )
        return Reply("\n".join(text), tuple(rows))

    async def _filters(self, lang: str, view: View) -> str:
        said = [tr(lang, PERIOD_LABELS[view.period])]
        if view.wanted is not None:
            said.append(tr(lang, STATUS_LABELS[view.wanted]))
        if view.subscriber:
            s = await Subscriber.get_or_none(id=view.subscriber)
            said.append(s.name if s is not None else "?")
        if view.agent:
            a = await Agent.get_or_none(id=view.agent).select_related("user")
            said.append(a.user.name if a is not None else "?")
        return ", ".join(said)

    # -- pickers --------------------------------------------------------------------------------

    def _pick_period(self, lang: str, view: View) -> Reply:
        rows = tuple(
            ((tr(lang, label), view.data(page=0, period=code)),)
            for code, label in PERIOD_LABELS.items()
        )
        return Reply(tr(lang, PERIOD_BUTTON), rows)

    def _pick_status(self, lang: str, view: View) -> Reply:
        choices = [(tr(lang, ANY), 0)] + [
            (tr(lang, STATUS_LABELS[s]), i + 1) for i, s in enumerate(ORDER)
        ]
        rows = tuple(
            tuple((label, view.data(page=0, status=code)) for label, code in choices[i : i + 2])
            for i in range(0, len(choices), 2)
        )
        return Reply(tr(lang, STATUS_BUTTON), rows)

    async def _pick_subscriber(self, lang: str, view: View) -> Reply:
        subscribers = await Subscriber.all().order_by("name", "id").limit(40)
        choices = [(tr(lang, ANY), 0)] + [(s.name[:30], s.id) for s in subscribers]
        return Reply(tr(lang, SUBSCRIBER_BUTTON), _pairs(choices, view, "subscriber"))

    async def _pick_agent(self, lang: str, view: View) -> Reply:
        agents = await Agent.filter(interface__isnull=False).select_related("user").limit(40)
        choices = [(tr(lang, ANY), 0)] + [
            (a.user.name[:30], a.id) for a in sorted(agents, key=lambda a: a.user.name)
        ]
        return Reply(tr(lang, AGENT_BUTTON), _pairs(choices, view, "agent"))

    # -- a call ---------------------------------------------------------------------------------

    async def detail(self, lang: str, call_id: int) -> Reply:
        call = await Call.get_or_none(id=call_id).select_related("subscriber")
        if call is None:
            return Reply(text=tr(lang, GONE), toast=tr(lang, GONE))
        names = await self._agent_names()
        status = CallStatus(call.status)
        text = [
            tr(
                lang,
                D_HEAD,
                when=self._when(call.started_at, True),
                status=tr(lang, STATUS_LABELS[status]),
                direction=tr(lang, DIRECTION_LABELS[CallDirection(call.direction)]),
            )
        ]
        if call.subscriber is not None:
            text.append(tr(lang, D_SUBSCRIBER, name=call.subscriber.name, ddi=call.ddi or "-"))
        text.append(tr(lang, D_CALLER, caller=_caller(call.caller_number, call.caller_name)))
        text.append(tr(lang, D_LEGS, count=call.legs_rung))
        who = names.get(call.answered_by, call.answered_by) or tr(lang, NOBODY)
        text.append(tr(lang, D_ANSWERED, who=who))
        if call.answered_at is not None:
            held = int((call.answered_at - call.started_at).total_seconds())
            text.append(tr(lang, D_HOLD, seconds=max(0, held)))
        notes = (
            await Card.filter(linkedid=call.linkedid)
            .exclude(transfer_note="")
            .select_related("agent__user")
            .order_by("id")
        )
        text += [tr(lang, D_NOTE, agent=c.agent.user.name, note=c.transfer_note) for c in notes]
        deliveries = await self._deliveries(call.linkedid)
        if deliveries:
            text.append(tr(lang, D_DELIVERIES, items=", ".join(deliveries)))
        rows: list[tuple[tuple[str, str], ...]] = []
        if status in CAN_CALL_BACK and call.caller_number and call.subscriber is not None:
            rows.append(((tr(lang, CALL_BACK), callbacks.console_call("c", call.id)),))
        rows.append(((tr(lang, BACK), View().data()),))
        return Reply("\n".join(text), tuple(rows))

    @staticmethod
    async def _deliveries(linkedid: str) -> list[str]:
        notification = await Notification.get_or_none(dedupe_key=f"missed_call:{linkedid}")
        if notification is None:
            return []
        rows = await Delivery.filter(notification_id=notification.id).order_by("id")
        return [f"{d.channel} {d.status}" for d in rows]

    async def call_back(self, chat_id: int, lang: str, call_id: int) -> Reply:
        """Ring the subscriber's mobile first, then the caller: the subscriber's own path."""
        call = await Call.get_or_none(id=call_id).select_related("subscriber")
        what = f"console call back {call_id}"
        if call is None or call.subscriber is None or call.status not in CAN_CALL_BACK:
            return Reply(toast=tr(lang, GONE))
        subscriber: Subscriber = call.subscriber
        if not call.caller_number:
            return Reply(toast=tr(lang, NO_CALLER))
        if not subscriber.mobile:
            return Reply(toast=tr(lang, NO_MOBILE))
        try:
            await self._control.call_back(subscriber, call)
        except OutboundRefused as exc:  # the subscriber's outbound policy
            why = exc.number_class.value
            await audit.record(Channel.TELEGRAM, str(chat_id), subscriber, what, audit.REFUSED, why)
            return Reply(toast=refusal(lang, exc)[:200])
        except PbxUnavailable as exc:
            log.warning("console call back of call %s failed: %s", call_id, exc)
            await audit.record(Channel.TELEGRAM, str(chat_id), subscriber, what, audit.FAILED)
            return Reply(toast=tr(lang, UNREACHABLE))
        await audit.record(Channel.TELEGRAM, str(chat_id), subscriber, what, audit.DONE)
        said = tr(lang, CALLING, subscriber=subscriber.name, caller=call.caller_number)
        shown = await self.detail(lang, call_id)
        return Reply(f"{shown.text}\n\n{said}", shown.buttons, said[:200])


def _pairs(choices: list[tuple[str, int]], view: View, field: str) -> Buttons:
    return tuple(
        tuple((label, view.data(page=0, **{field: code})) for label, code in choices[i : i + 2])
        for i in range(0, len(choices), 2)
    )
