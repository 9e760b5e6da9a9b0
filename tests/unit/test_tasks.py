"""Tasks on a controlled clock: a reminder at the due time (once), escalation to the team's
supervisor when overdue (once), /tasks and its buttons, "Call now" placing the Originate
agent first, and another team's task refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.control import callbacks
from gateway.delivery.notices import Notices
from gateway.pbx.actions import Pbx
from gateway.staff.conversation import Conversations
from gateway.staff.replies import Reply
from gateway.staff.tasks import CALL_CONTEXT, Tasks
from models.db import AuditEntry, Call, Delivery
from models.events import CallStatus
from models.settings import RoutingSettings
from models.staff import Agent, Task, TaskCategory, TaskStatus
from tests.desk_people import (
    CALLER,
    DDI,
    ELENI,
    MARIA,
    NIKOS,
    OTHER_SUPERVISOR,
    SUPERVISOR,
    People,
    make_people,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
Frame = dict[str, str]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Link:
    """An AMI link that accepts every action and keeps it."""

    def __init__(self) -> None:
        self.sent: list[Frame] = []

    async def send_action(self, action: Frame, timeout: float = 5.0) -> Frame:
        self.sent.append(action)
        return {"Response": "Success"}

    async def send_list_action(self, action: Frame, timeout: float = 10.0) -> list[Frame]:
        self.sent.append(action)
        return []


@pytest.fixture
async def people(db: str) -> People:
    return await make_people()


def chats(rows: list[Delivery]) -> list[str]:
    return sorted(r.address for r in rows)


async def task_for(
    people: People,
    tasks: Tasks,
    *,
    assignee: Agent | str | None = "maria",
    team_id: int | None = None,
    is_call: bool = False,
) -> Task:
    return await tasks.create(
        people.subscriber,
        "Call back about results",
        NOW + timedelta(hours=1),
        created_by=people.maria,
        assignee=people.maria if assignee == "maria" else assignee,  # type: ignore[arg-type]
        team_id=team_id or people.team_a.id,
        is_call=is_call,
        caller_number=CALLER,
    )


async def test_a_due_task_pings_its_assignee_once_and_escalates_once_when_overdue(
    people: People,
) -> None:
    clock = Clock(NOW)
    tasks = Tasks(None, clock=clock, grace=timedelta(minutes=30))
    task = await task_for(people, tasks)
    assert await tasks.due() == 0  # not yet

    clock.now = task.due_at
    assert await tasks.due() == 1
    [ping] = await Delivery.filter(kind="task")
    assert ping.address == str(MARIA) and ping.text.startswith("Task due: Call back")
    assert ping.buttons == [[{"text": "Done", "data": callbacks.task(task.id, "done")}]]
    assert await tasks.due() == 0  # once
    assert (await Task.get(id=task.id)).reminded_at == task.due_at

    clock.now = task.due_at + timedelta(minutes=29)
    assert await tasks.due() == 0  # within the grace
    clock.now = task.due_at + timedelta(minutes=30)
    assert await tasks.due() == 1
    escalation = await Delivery.get(kind="task", dedupe_key__contains="escalate")
    assert escalation.address == str(SUPERVISOR)
    assert escalation.text.startswith("Overdue task: Call back")
    clock.now += timedelta(hours=5)
    assert await tasks.due() == 0
    assert await Delivery.filter(kind="task").count() == 2


async def test_a_team_task_pings_every_member_and_a_closed_one_nobody(people: People) -> None:
    clock = Clock(NOW)
    tasks = Tasks(None, clock=clock)
    team = await task_for(people, tasks, assignee=None)
    closed = await task_for(people, tasks)
    closed.status = TaskStatus.CLOSED
    await closed.save()
    clock.now = team.due_at + timedelta(days=1)
    await tasks.due()
    reminders = await Delivery.filter(dedupe_key__contains=":remind:")
    assert chats(reminders) == sorted([str(MARIA), str(NIKOS), str(SUPERVISOR)])
    assert all(f"task:{team.id}:" in r.dedupe_key for r in reminders)


async def test_tasks_lists_mine_with_buttons_and_done_closes(people: People) -> None:
    tasks = Tasks(None, clock=Clock(NOW))
    mine = await task_for(people, tasks)
    await task_for(people, tasks, assignee=people.eleni, team_id=people.team_b.id)
    [shown] = await tasks.listing(MARIA, "en")
    assert shown.text.startswith("Task: Call back about results")
    assert "For: Dr Papadopoulos" in shown.text and "Status: new" in shown.text
    done = await tasks.act(MARIA, callbacks.task(mine.id, "done"), "en")
    assert done.toast == "Done" and "Status: closed" in done.text
    assert (await Task.get(id=mine.id)).status == TaskStatus.CLOSED
    [empty] = await tasks.listing(MARIA, "en")
    assert empty.text == "No open tasks."


async def test_a_scheduled_call_is_scheduled_until_call_now_places_it_agent_first(
    people: People,
) -> None:
    link = Link()
    clock = Clock(NOW)
    tasks = Tasks(Pbx(link), clock=clock)
    task = await task_for(people, tasks, is_call=True)
    row = await Call.get(linkedid=f"task:{task.id}")
    assert (row.status, row.caller_number, row.ddi) == (CallStatus.SCHEDULED, CALLER, DDI)

    [shown] = await tasks.listing(MARIA, "en")
    assert shown.buttons[0][0] == ("Call now", callbacks.task(task.id, "call"))
    reply = await tasks.act(MARIA, callbacks.task(task.id, "call"), "en")
    assert reply.toast == "Calling: your phone rings first."
    [originate] = link.sent
    assert originate == {
        "Action": "Originate",
        "Channel": "PJSIP/agent1",  # Maria's own phone first
        "Context": CALL_CONTEXT,
        "Exten": CALLER,  # then the customer, through the dialplan's outbound path
        "Priority": "1",
        "CallerID": f'"Dr Papadopoulos" <{DDI}>',
        "Async": "true",
    }
    assert (await Task.get(id=task.id)).called_at == NOW
    assert not await Call.exists(linkedid=f"task:{task.id}")
    clock.now = task.due_at + timedelta(days=1)
    await tasks.due()  # reminded, but a placed call is never overdue
    assert not await Delivery.exists(dedupe_key__contains="escalate")


async def test_another_teams_task_is_refused_audited_and_unchanged(people: People) -> None:
    link = Link()
    tasks = Tasks(Pbx(link), clock=Clock(NOW))
    task = await task_for(people, tasks, is_call=True)
    for chat, action in ((ELENI, "done"), (ELENI, "call"), (OTHER_SUPERVISOR, "follow")):
        reply = await tasks.act(chat, callbacks.task(task.id, action), "en")
        assert reply.refused and reply.toast == "That is not yours to do."
    assert link.sent == []
    unchanged = await Task.get(id=task.id)
    assert (unchanged.status, unchanged.called_at) == (TaskStatus.NEW, None)
    assert await AuditEntry.filter(result="refused").count() == 3
    # Her team's supervisor and a teammate (not the assignee) may not close it either...
    assert (await tasks.act(NIKOS, callbacks.task(task.id, "done"), "en")).refused
    # ...but the supervisor leading the team may.
    assert not (await tasks.act(SUPERVISOR, callbacks.task(task.id, "follow"), "en")).refused
    assert (await Task.get(id=task.id)).status == TaskStatus.FOLLOW_UP


def press(reply: Reply, label: str) -> str:
    return next(d for row in reply.buttons for text, d in row if text.startswith(label))


async def test_a_task_from_a_card_with_a_category_and_an_assignee(people: People) -> None:
    await TaskCategory.create(name="Call back")
    clock = Clock(NOW)
    tasks = Tasks(None, clock=clock)
    notices = Notices({"telegram"}, RoutingSettings(), clock=clock)
    c = Conversations(notices, tasks, clock=clock)
    # The supervisor, on a card of their team, gives the call back to Nikos.
    reply = await c.from_card(SUPERVISOR, callbacks.card(people.card.id, "task"), "en")
    assert reply.text.startswith("Task for Dr Papadopoulos")
    reply = await c.text(SUPERVISOR, "Call back with the results", "en") or Reply()
    reply = await c.text(SUPERVISOR, "25/11 10:00", "en") or Reply()
    reply = await c.press(SUPERVISOR, press(reply, "Yes"), "en")  # a scheduled call
    assert [row[0][0] for row in reply.buttons] == ["Me", "My team", "Maria", "Nikos", "Cancel"]
    reply = await c.press(SUPERVISOR, press(reply, "Nikos"), "en")
    reply = await c.press(SUPERVISOR, press(reply, "Call back"), "en")
    done = await c.press(SUPERVISOR, press(reply, "Send"), "en")
    assert done.toast == "Task created."
    [task] = await Task.all()
    assert (task.assignee_id, task.team_id, task.is_call) == (  # type: ignore[attr-defined]
        people.nikos.id,
        people.team_a.id,
        True,
    )
    assert (task.category, task.caller_number) == ("Call back", CALLER)
    assert task.due_at == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert await Call.exists(linkedid=f"task:{task.id}", status=CallStatus.SCHEDULED)

    # An agent cannot give a task to someone of another team (forged choice).
    reply = await c.from_card(MARIA, callbacks.card(people.card.id, "task"), "en")
    reply = await c.text(MARIA, "x", "en") or Reply()
    reply = await c.press(MARIA, press(reply, "In 1 hour"), "en")
    reply = await c.press(MARIA, press(reply, "No"), "en")
    forged = press(reply, "Me").replace(":me", f":a{people.eleni.id}")
    refused = await c.press(MARIA, forged, "en")
    assert refused.toast == "That question has been answered already."
    assert await Task.all().count() == 1


async def test_a_task_by_command_asks_for_the_subscriber_first(people: People) -> None:
    clock = Clock(NOW)
    tasks = Tasks(None, clock=clock)
    c = Conversations(Notices({"telegram"}, RoutingSettings(), clock=clock), tasks, clock=clock)
    reply = await c.new_task(NIKOS, "en")
    assert reply.text.startswith("New task") and "For which subscriber?" in reply.text
    reply = await c.text(NIKOS, "nobody like this", "en") or Reply()
    assert reply.text.startswith("No subscriber matches that.")
    reply = await c.text(NIKOS, "papadop", "en") or Reply()  # one match: chosen
    assert reply.text.startswith("Task for Dr Papadopoulos")
    reply = await c.text(NIKOS, "Send the invoice", "en") or Reply()
    reply = await c.press(NIKOS, press(reply, "Tomorrow 10:00"), "en")
    reply = await c.press(NIKOS, press(reply, "No"), "en")
    reply = await c.press(NIKOS, press(reply, "My team"), "en")
    await c.press(NIKOS, press(reply, "Send"), "en")
    [task] = await Task.all()
    assert (task.assignee_id, task.team_id, task.is_call) == (  # type: ignore[attr-defined]
        None,
        people.team_a.id,
        False,
    )
    assert task.due_at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # 10:00 in Athens
    [shown] = await tasks.listing(MARIA, "en")  # a task of her team
    assert shown.text.startswith("Task: Send the invoice")
