"""Tasks and scheduled calls: created at the desk, a reminder ping at the due time, an
escalation to the team's supervisor when overdue, and "Call now" for a scheduled call.

A reminder and an escalation are each sent once (`reminded_at`, `escalated_at` are set in
the transaction that writes their outbox rows, keyed `task:<id>:remind:<chat>` and
`task:<id>:escalate:<chat>`), through the outbox as Telegram messages to the staff chats.
A scheduled call shows in the console as a `Call` row with status `scheduled` (linkedid
`task:<id>`, direction outbound) until the agent places it; then that row goes and an
outbound row `out:<uuid>` records the call placed (its progress on the PBX is not followed).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from tortoise.transactions import in_transaction

from gateway.admin import policy
from gateway.control import callbacks
from gateway.pbx.actions import Pbx
from gateway.pbx.errors import UNREACHABLE, PbxUnavailable
from gateway.staff.identity import staff_of_chat
from gateway.staff.replies import Reply, language, not_staff, refuse
from gateway.staff.rights import Act, Owner, Staff, allowed
from locales import N_, tr
from models.db import Call, CallDirection, Ddi, Delivery, DeliveryStatus, Subscriber, User
from models.events import CallStatus
from models.staff import Agent, Task, TaskStatus, Team
from models.vocab import Channel

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# The dialplan context that dials an outside number through the trunk (the same one the
# subscriber's "Call back" uses: deploy/asterisk/extensions_frontdesk.conf).
CALL_CONTEXT = "frontdesk-callback"
# Overdue by this much, an open task goes to the team's supervisor.
GRACE = timedelta(minutes=30)
LIST_LIMIT = 20  # /tasks shows at most this many

DONE, FOLLOW_UP, CALL = "done", "follow", "call"
OPEN = (TaskStatus.NEW, TaskStatus.FOLLOW_UP)

NO_TASKS = N_("No open tasks.")
NO_INTERFACE = N_("You have no phone on the queue to call from.")
NO_NUMBER = N_("This task has no number to call.")


def utcnow() -> datetime:
    return datetime.now(UTC)


def owner_of_task(task: Task, assignee_team: int | None) -> Owner:
    """A task is its assignee's (within their team), or its team's when nobody has it."""
    return Owner(
        agent_id=task.assignee_id,  # type: ignore[attr-defined]
        team_id=task.team_id if task.team_id is not None else assignee_team,  # type: ignore[attr-defined]
    )


async def _owner(task: Task) -> Owner:
    team = None
    if task.assignee_id is not None:  # type: ignore[attr-defined]
        agent = await Agent.get_or_none(id=task.assignee_id)  # type: ignore[attr-defined]
        team = agent.team_id if agent else None  # type: ignore[attr-defined]
    return owner_of_task(task, team)


def when(lang: str, timezone: str, at: datetime) -> str:
    return format_datetime(at, format="short", tzinfo=ZoneInfo(timezone), locale=lang)


class Tasks:
    def __init__(
        self,
        pbx: Pbx | None,
        on_new: Callable[[], None] = lambda: None,
        clock: Clock = utcnow,
        grace: timedelta = GRACE,
        region: str = "GR",
    ) -> None:
        self._pbx = pbx
        self._region = region  # the operator's country, for the outbound policy
        self._on_new = on_new
        self.clock = clock  # replaceable: tests move time on
        self.grace = grace

    # -- creating ----------------------------------------------------------------------------

    async def create(
        self,
        subscriber: Subscriber,
        text: str,
        due_at: datetime,
        *,
        created_by: Agent | None,
        assignee: Agent | None,
        team_id: int | None,
        category: str = "",
        is_call: bool = False,
        caller_number: str = "",
        caller_name: str = "",
    ) -> Task:
        """A task (in the caller's transaction, if any); a scheduled call also gets its
        `scheduled` row in the console."""
        task = await Task.create(
            subscriber=subscriber,
            text=text,
            due_at=due_at,
            created_by=created_by,
            assignee=assignee,
            team_id=team_id,
            category=category,
            is_call=is_call,
            caller_number=caller_number,
            caller_name=caller_name,
        )
        if is_call:
            ddi = await Ddi.filter(subscriber=subscriber).order_by("id").first()
            await Call.create(
                linkedid=f"task:{task.id}",
                ddi=ddi.number if ddi else "",
                subscriber=subscriber,
                caller_number=caller_number,
                caller_name=caller_name,
                status=CallStatus.SCHEDULED,
                direction=CallDirection.OUTBOUND,
                started_at=due_at,
            )
        log.info("task %s for subscriber %s due %s", task.id, subscriber.id, due_at.isoformat())
        return task

    # -- reminders and escalation (the gateway's `tasks` loop) -------------------------------

    async def due(self) -> int:
        """Remind the assignees of tasks now due, escalate those overdue by the grace.
        Returns how many messages were queued."""
        now = self.clock()
        sent = 0
        for task in await Task.filter(
            status__in=OPEN, reminded_at__isnull=True, due_at__lte=now
        ).order_by("due_at", "id"):
            sent += await self._remind(task, now)
        for task in await Task.filter(
            status__in=OPEN, escalated_at__isnull=True, due_at__lte=now - self.grace
        ).order_by("due_at", "id"):
            if task.is_call and task.called_at is not None:
                continue  # the call was placed: nothing is late
            sent += await self._escalate(task, now)
        if sent:
            self._on_new()
        return sent

    async def _remind(self, task: Task, now: datetime) -> int:
        subscriber = await Subscriber.get(id=task.subscriber_id)  # type: ignore[attr-defined]
        users = await self._assignees(task)
        rows = [
            self._row(
                task,
                f"task:{task.id}:remind:{u.telegram_chat_id}",
                u,
                now,
                self._text(task, subscriber, u, N_("Task due: {text}")),
            )
            for u in users
        ]
        async with in_transaction():
            claimed = await Task.filter(id=task.id, reminded_at__isnull=True).update(
                reminded_at=now
            )
            if not claimed:
                return 0
            fresh = [r for r in rows if not await Delivery.exists(dedupe_key=r.dedupe_key)]
            await Delivery.bulk_create(fresh)
        if not users:
            log.warning("task %s is due and nobody with a linked chat has it", task.id)
        return len(fresh)

    async def _escalate(self, task: Task, now: datetime) -> int:
        subscriber = await Subscriber.get(id=task.subscriber_id)  # type: ignore[attr-defined]
        supervisors = await self._supervisors(task)
        rows = [
            self._row(
                task,
                f"task:{task.id}:escalate:{u.telegram_chat_id}",
                u,
                now,
                self._text(task, subscriber, u, N_("Overdue task: {text}")),
            )
            for u in supervisors
        ]
        async with in_transaction():
            claimed = await Task.filter(id=task.id, escalated_at__isnull=True).update(
                escalated_at=now
            )
            if not claimed:
                return 0
            fresh = [r for r in rows if not await Delivery.exists(dedupe_key=r.dedupe_key)]
            await Delivery.bulk_create(fresh)
        if not supervisors:
            log.warning("task %s is overdue and its team has no supervisor with a chat", task.id)
        return len(fresh)

    async def _assignees(self, task: Task) -> list[User]:
        """Who a reminder goes to: the assignee, else every member of the task's team."""
        if task.assignee_id is not None:  # type: ignore[attr-defined]
            agents = await Agent.filter(id=task.assignee_id).select_related("user")  # type: ignore[attr-defined]
        elif task.team_id is not None:  # type: ignore[attr-defined]
            agents = await Agent.filter(team_id=task.team_id).select_related("user")  # type: ignore[attr-defined]
        else:
            agents = []
        return [a.user for a in agents if a.user.telegram_chat_id is not None]

    async def _supervisors(self, task: Task) -> list[User]:
        team_id = task.team_id  # type: ignore[attr-defined]
        if team_id is None and task.assignee_id is not None:  # type: ignore[attr-defined]
            agent = await Agent.get_or_none(id=task.assignee_id)  # type: ignore[attr-defined]
            team_id = agent.team_id if agent else None  # type: ignore[attr-defined]
        team = await Team.get_or_none(id=team_id).select_related("supervisor") if team_id else None
        user = team.supervisor if team is not None else None
        return [user] if user is not None and user.telegram_chat_id is not None else []

    def _text(self, task: Task, subscriber: Subscriber, user: User, headline: str) -> str:
        lang = user.language or subscriber.language
        return describe(lang, task, subscriber, headline)

    def _row(self, task: Task, key: str, user: User, now: datetime, text: str) -> Delivery:
        lang = user.language or "en"
        buttons = [[{"text": tr(lang, "Done"), "data": callbacks.task(task.id, DONE)}]]
        if task.is_call:
            buttons.insert(
                0, [{"text": tr(lang, "Call now"), "data": callbacks.task(task.id, CALL)}]
            )
        return Delivery(
            dedupe_key=key,
            kind="task",
            channel=Channel.TELEGRAM,
            address=str(user.telegram_chat_id),
            subscriber_id=task.subscriber_id,  # type: ignore[attr-defined]
            text=text,
            buttons=buttons,
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
        )

    # -- the staff member's view: /tasks and the task buttons --------------------------------

    async def listing(self, chat_id: int, telegram_lang: str | None) -> list[Reply]:
        """/tasks: the actor's open tasks (theirs and their team's unassigned ones), one
        message each with its buttons; or one line saying there are none."""
        found = await staff_of_chat(chat_id)
        if found is None:
            return [await not_staff(chat_id, language(None, telegram_lang), "/tasks")]
        agent, actor = found
        lang = language(agent, telegram_lang)
        query = Task.filter(status__in=OPEN).order_by("due_at", "id")
        mine = await query.filter(assignee_id=agent.id).limit(LIST_LIMIT)
        team = agent.team_id  # type: ignore[attr-defined]
        if team is not None:
            mine += await query.filter(team_id=team, assignee_id__isnull=True).limit(LIST_LIMIT)
        replies = []
        for task in sorted(mine, key=lambda t: (t.due_at, t.id))[:LIST_LIMIT]:
            if not allowed(actor, Act.SEE_TASK, await _owner(task)):
                continue
            subscriber = await Subscriber.get(id=task.subscriber_id)  # type: ignore[attr-defined]
            replies.append(
                Reply(describe(lang, task, subscriber), buttons=task_buttons(lang, task))
            )
        return replies or [Reply(tr(lang, NO_TASKS))]

    async def act(self, chat_id: int, data: str, telegram_lang: str | None) -> Reply:
        """A task button (`tk:<id>:<action>`): checked, then done, follow-up or call now."""
        found = await staff_of_chat(chat_id)
        unpacked = callbacks.unpack_task(data)
        if found is None:
            return await not_staff(chat_id, language(None, telegram_lang), data)
        agent, actor = found
        lang = language(agent, telegram_lang)
        task = await Task.get_or_none(id=unpacked[0]) if unpacked else None
        if task is None or unpacked is None or unpacked[1] not in (DONE, FOLLOW_UP, CALL):
            return await refuse(chat_id, lang, data, why="no such task")
        action = unpacked[1]
        act = Act.PLACE_CALL if action == CALL else Act.EDIT_TASK
        subscriber = await Subscriber.get(id=task.subscriber_id)  # type: ignore[attr-defined]
        if not allowed(actor, act, await _owner(task)):
            return await refuse(chat_id, lang, data, subscriber, why=f"{act} task {task.id}")
        now = self.clock()
        if action == DONE:
            return await self._close(task, subscriber, lang, now)
        if action == FOLLOW_UP:
            task.status = TaskStatus.FOLLOW_UP
            await task.save(update_fields=["status"])
            return Reply(
                describe(lang, task, subscriber), task_buttons(lang, task), tr(lang, "Follow-up")
            )
        return await self._call(task, subscriber, agent, actor, lang, now)

    async def _close(self, task: Task, subscriber: Subscriber, lang: str, now: datetime) -> Reply:
        async with in_transaction():
            task.status, task.closed_at = TaskStatus.CLOSED, now
            await task.save(update_fields=["status", "closed_at"])
            await Call.filter(linkedid=f"task:{task.id}", status=CallStatus.SCHEDULED).delete()
        return Reply(describe(lang, task, subscriber), (), tr(lang, "Done"))

    async def _call(
        self,
        task: Task,
        subscriber: Subscriber,
        agent: Agent,
        actor: Staff,
        lang: str,
        now: datetime,
    ) -> Reply:
        """The scheduled call: the agent's own phone rings first, then the customer."""
        if not task.caller_number:
            return Reply(toast=tr(lang, NO_NUMBER))
        interface = agent.interface
        if not interface or self._pbx is None:
            return Reply(toast=tr(lang, NO_INTERFACE))
        try:  # the customer is the far end: the subscriber's outbound policy applies
            number_class = policy.check(subscriber, task.caller_number, self._region)
        except policy.OutboundRefused as exc:
            what = f"task {task.id}: call {task.caller_number}"
            chat = str(agent.user.telegram_chat_id)
            await policy.audit_refusal(Channel.TELEGRAM, chat, subscriber, what, exc)
            text = policy.refusal(lang, exc)
            return Reply(text=text, toast=text[:200], refused=True)
        try:
            ddi = await ring_agent_first(self._pbx, interface, subscriber, task.caller_number)
        except PbxUnavailable as exc:
            log.warning("task %s: the call could not be placed: %s", task.id, exc)
            return Reply(toast=tr(lang, UNREACHABLE))
        async with in_transaction():
            task.called_at = now
            await task.save(update_fields=["called_at"])
            await Call.filter(linkedid=f"task:{task.id}", status=CallStatus.SCHEDULED).delete()
            await placed_call(agent, subscriber, ddi, task.caller_number, task.caller_name, now)
        await policy.placed(subscriber, task.caller_number, number_class, policy.TASK)
        log.info("task %s: call to %s placed from %s", task.id, task.caller_number, agent.interface)
        return Reply(
            describe(lang, task, subscriber),
            task_buttons(lang, task),
            tr(lang, "Calling: your phone rings first."),
        )


def describe(lang: str, task: Task, subscriber: Subscriber, headline: str = "") -> str:
    """A task as the staff chat shows it."""
    head = tr(lang, headline or N_("Task: {text}"), text=task.text)
    lines = [
        head,
        tr(lang, "For: {subscriber}", subscriber=subscriber.name),
        tr(lang, "Due: {time}", time=when(lang, subscriber.timezone, task.due_at)),
    ]
    if task.caller_number or task.caller_name:
        who = " ".join(p for p in (task.caller_name, task.caller_number) if p)
        lines.append(tr(lang, "Caller: {caller}", caller=who))
    if task.category:
        lines.append(tr(lang, "Category: {category}", category=task.category))
    if task.is_call:
        lines.append(tr(lang, "Scheduled call") if task.called_at is None else tr(lang, "Called"))
    status = {
        TaskStatus.NEW: N_("Status: new"),
        TaskStatus.FOLLOW_UP: N_("Status: follow-up"),
        TaskStatus.CLOSED: N_("Status: closed"),
    }[TaskStatus(task.status)]
    lines.append(tr(lang, status))
    return "\n".join(lines)


def task_buttons(lang: str, task: Task) -> tuple[tuple[tuple[str, str], ...], ...]:
    if task.status == TaskStatus.CLOSED:
        return ()
    rows: list[tuple[tuple[str, str], ...]] = []
    if task.is_call:
        rows.append(((tr(lang, "Call now"), callbacks.task(task.id, CALL)),))
    rows.append(
        (
            (tr(lang, "Done"), callbacks.task(task.id, DONE)),
            (tr(lang, "Follow-up"), callbacks.task(task.id, FOLLOW_UP)),
        )
    )
    return tuple(rows)


async def ring_agent_first(pbx: Pbx, interface: str, subscriber: Subscriber, number: str) -> str:
    """Originate: the agent's phone (`interface`) first, then `number`, shown the
    subscriber's first DDI (returned; "" without one). Raises PbxUnavailable as `Pbx` does."""
    ddi = await Ddi.filter(subscriber=subscriber).order_by("id").first()
    shown = ddi.number if ddi else ""
    await pbx.originate_agent_first(interface, number, CALL_CONTEXT, subscriber.name, shown)
    return shown


async def placed_call(
    agent: Agent, subscriber: Subscriber, ddi: str, number: str, name: str, now: datetime
) -> None:
    """A call placed for an agent, as an outgoing call of theirs in the console (not
    followed further)."""
    await Call.create(
        linkedid=f"out:{uuid.uuid4().hex}",
        ddi=ddi,
        subscriber=subscriber,
        caller_number=number,
        caller_name=name[:200],
        status=CallStatus.SCHEDULED,
        direction=CallDirection.OUTBOUND,
        answered_by=agent.interface,
        started_at=now,
    )
