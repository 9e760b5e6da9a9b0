"""Guided exchanges in a staff chat: taking a message, a request or an appointment from a
call's card, and creating a task (from a card or /task).

Each exchange is a `Conversation` row: its kind, the step it is at and the answers so far.
Every answer is stored before the next question is returned, so a gateway restart halfway
goes on at the same step. Buttons carry `cv:<conversation>:<step>:<choice>`: a press for a
step that is over (an old message, a replay) changes nothing. Text from a staff chat goes
to that staff member's newest open exchange. Every start, press and text is checked with
`rights.allowed` against the owner of the card or conversation; a refusal is audited and
changes nothing.

Steps:
  message      name, number, text, category, urgency, confirm
  request      name, number, text, nature, handling, resolved, cause, category, urgency, confirm
  appointment  name, number, when, note, confirm (booked by the diary's rules)
  task         subscriber (only from /task), text, due, call, assignee, task category, confirm
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from gateway.control import callbacks
from gateway.delivery.message_render import CATEGORIES
from gateway.delivery.notices import Notices
from gateway.delivery.render import local_time
from gateway.diary import appointments as diary
from gateway.staff import taking
from gateway.staff.identity import owner_of, staff_of_chat
from gateway.staff.replies import Reply, language, not_staff, refuse
from gateway.staff.rights import Act, Staff, allowed
from gateway.staff.tasks import Tasks
from locales import N_, tr
from models.db import Call, Contact, Ddi, Subscriber, Urgency
from models.phone import InvalidNumber, to_e164
from models.staff import Agent, Card, Conversation, Taken, TaskCategory, Team

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
TASK = "task"
# The exchanges this desk runs (a transfer's pending note is gateway/staff/transfer.py's).
KINDS_TAKEN = (*(k.value for k in Taken), TASK)
# The card's buttons (`cd:<card>:<action>`) that start an exchange here.
CARD_ACTIONS = {
    callbacks.CARD_MESSAGE: Taken.MESSAGE.value,
    callbacks.CARD_REQUEST: Taken.REQUEST.value,
    callbacks.CARD_APPOINTMENT: Taken.APPOINTMENT.value,
    callbacks.CARD_TASK: TASK,
}
STEPS: dict[str, tuple[str, ...]] = {
    Taken.MESSAGE: ("name", "number", "text", "category", "urgency", "confirm"),
    Taken.REQUEST: (
        "name",
        "number",
        "text",
        "nature",
        "handling",
        "resolved",
        "cause",
        "category",
        "urgency",
        "confirm",
    ),
    Taken.APPOINTMENT: ("name", "number", "when", "note", "confirm"),
    TASK: ("subscriber", "text", "due", "call", "assignee", "tcat", "confirm"),
}
TEXT_STEPS = frozenset(
    ("name", "number", "text", "nature", "handling", "cause", "when", "note", "subscriber", "due")
)
OPTIONAL = frozenset(("nature", "handling", "cause", "note"))  # a "Skip" button
QUESTIONS = {
    "name": N_("Caller's name?"),
    "number": N_("Caller's number?"),
    "text": N_("What is the message?"),
    "nature": N_("Nature of the call?"),
    "handling": N_("How was it handled?"),
    "resolved": N_("Resolved?"),
    "cause": N_("Cause?"),
    "category": N_("Category?"),
    "urgency": N_("How urgent is it?"),
    "when": N_("When? Choose a free time or type one (14:30, 25/12 10:00)."),
    "note": N_("A note for the appointment?"),
    "subscriber": N_("For which subscriber? Type part of the name or number."),
    "due": N_("Due when? Choose or type a time (14:30, 25/12 10:00)."),
    "call": N_("Is it a call back at that time?"),
    "assignee": N_("Who does it?"),
    "tcat": N_("Task category?"),
    "confirm": N_("Send it?"),
}
TITLES = {
    Taken.MESSAGE: N_("Message for {subscriber}"),
    Taken.REQUEST: N_("Request for {subscriber}"),
    Taken.APPOINTMENT: N_("Appointment for {subscriber}"),
    TASK: N_("Task for {subscriber}"),
}
NEW_TASK = N_("New task")
USE_BUTTONS = N_("Please answer with the buttons.")
STEP_OVER = N_("That question has been answered already.")
NO_SUBSCRIBER = N_("This call has no subscriber.")
BAD_TIME = N_("I could not read that time; e.g. 14:30 or 25/12 10:00.")
PAST_TIME = N_("That time has already passed.")
EMPTY = N_("Please type something.")
NO_MATCH = N_("No subscriber matches that.")
SLOT_TAKEN = N_("That time is taken; choose another.")
NOT_A_NUMBER = N_("That is not a phone number: {number}")
SLOT_REFUSED = N_("That time cannot be booked; choose another.")
FREE_SLOTS = 4
TOMORROW_AT = time(10, 0)


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- times typed by staff ------------------------------------------------------------------------

_WHEN = re.compile(
    r"\s*(?:(?:(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})"
    r"|(?P<d2>\d{1,2})[./](?P<mo2>\d{1,2})(?:[./](?P<y2>\d{2}|\d{4}))?)\s+)?"
    r"(?P<h>\d{1,2})[:.](?P<mi>\d{2})\s*"
)


def parse_when(text: str, timezone: str, now: datetime) -> datetime | None:
    """`14:30` (today, or tomorrow once passed), `25/12 10:00`, `25.12.2026 10:00` or
    `2026-12-25 10:00`, in the subscriber's time zone; None when it reads as no time."""
    m = _WHEN.fullmatch(text)
    if m is None:
        return None
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    hour, minute = int(m["h"]), int(m["mi"])
    try:
        at = time(hour, minute)
        if m["y"]:
            day = date(int(m["y"]), int(m["mo"]), int(m["d"]))
        elif m["d2"]:
            year = int(m["y2"]) if m["y2"] else today.year
            year += 2000 if year < 100 else 0
            day = date(year, int(m["mo2"]), int(m["d2"]))
            if not m["y2"] and datetime.combine(day, at, zone) < now:
                day = day.replace(year=day.year + 1)
        else:
            day = today
            if datetime.combine(day, at, zone) < now:
                day += timedelta(days=1)
    except ValueError:  # 31/02, 25:00
        return None
    return datetime.combine(day, at, zone).astimezone(UTC)


# -- the exchanges ---------------------------------------------------------------------------------


class Conversations:
    def __init__(
        self, notices: Notices, tasks: Tasks, region: str = "GR", clock: Clock = utcnow
    ) -> None:
        self._notices = notices
        self._tasks = tasks
        self._region = region
        self.clock = clock

    # -- starting ----------------------------------------------------------------------------

    async def from_card(self, chat_id: int, data: str, tg: str | None) -> Reply:
        """A card's Message / Request / Appointment / Task button (`cd:<card>:<action>`)."""
        what = data
        found = await staff_of_chat(chat_id)
        if found is None:
            return await not_staff(chat_id, language(None, tg), what)
        agent, actor = found
        lang = language(agent, tg)
        unpacked = callbacks.unpack_card(data)
        kind = CARD_ACTIONS.get(unpacked[1]) if unpacked else None
        card = (
            await Card.get_or_none(id=unpacked[0]).select_related("agent", "subscriber")
            if unpacked
            else None
        )
        if card is None or kind is None:
            return await refuse(chat_id, lang, what, why="no such card")
        act = Act.CREATE_TASK if kind == TASK else Act.TAKE_MESSAGE
        if not allowed(actor, act, owner_of(card.agent)):
            return await refuse(chat_id, lang, what, card.subscriber, f"{act} card {card.id}")
        subscriber = card.subscriber
        if subscriber is None:
            return Reply(toast=tr(lang, NO_SUBSCRIBER))
        number = card.caller_number
        contact = (
            await Contact.get_or_none(subscriber=subscriber, number=number) if number else None
        )
        name = contact.name if contact else ""
        if not name:
            call = await Call.get_or_none(linkedid=card.linkedid)
            name = call.caller_name if call else ""
        answers: dict[str, Any] = {
            "subscriber_id": subscriber.id,
            "subscriber_name": subscriber.name,
            "timezone": subscriber.timezone,
            "linkedid": card.linkedid,
            "prefill_name": name,
            "prefill_number": number,
            "contact_name": contact.name if contact else None,
        }
        return await self._open(agent, actor, kind, card, answers, lang)

    async def new_task(self, chat_id: int, tg: str | None) -> Reply:
        """/task: a task without a card (the subscriber is asked first)."""
        found = await staff_of_chat(chat_id)
        if found is None:
            return await not_staff(chat_id, language(None, tg), "/task")
        agent, actor = found
        lang = language(agent, tg)
        if not allowed(actor, Act.CREATE_TASK, owner_of(agent)):
            return await refuse(chat_id, lang, "/task", why="create_task")
        return await self._open(agent, actor, TASK, None, {}, lang)

    async def _open(
        self,
        agent: Agent,
        actor: Staff,
        kind: str,
        card: Card | None,
        answers: dict[str, Any],
        lang: str,
    ) -> Reply:
        async with in_transaction():
            # One exchange at a time per staff member: the text typed next is for this one.
            await Conversation.filter(agent=agent, done=False).update(done=True, step="cancelled")
            conversation = Conversation(agent=agent, card=card, kind=kind, step="", answers=answers)
            conversation.step = await self._first_open(conversation, 0)
            await conversation.save()
        log.info("conversation %s (%s) opened by agent %s", conversation.id, kind, agent.id)
        return await self._prompt(conversation, agent, actor, lang)

    # -- answering ---------------------------------------------------------------------------

    async def press(self, chat_id: int, data: str, tg: str | None) -> Reply:
        """A button of an exchange: `cv:<conversation>:<step>:<choice>`."""
        found = await staff_of_chat(chat_id)
        if found is None:
            return await not_staff(chat_id, language(None, tg), data)
        agent, actor = found
        lang = language(agent, tg)
        unpacked = callbacks.unpack_conversation(data)
        conversation = (
            await Conversation.get_or_none(id=unpacked[0]).select_related("agent")
            if unpacked
            else None
        )
        if conversation is None or unpacked is None:
            return await refuse(chat_id, lang, data, why="no such conversation")
        _, step, choice = unpacked
        subscriber = await self._subscriber(conversation)
        act = self._act(conversation, choice)
        if not allowed(actor, act, owner_of(conversation.agent)):
            return await refuse(
                chat_id, lang, data, subscriber, f"{act} conversation {conversation.id}"
            )
        if conversation.done or step != conversation.step:
            return Reply(toast=tr(lang, STEP_OVER))
        return await self._answer(conversation, agent, actor, lang, choice=choice)

    async def text(self, chat_id: int, text: str, tg: str | None) -> Reply | None:
        """Free text from a staff chat: the answer to their open exchange's question, or
        None when they have none open (the text is then no business of the desk's)."""
        found = await staff_of_chat(chat_id)
        if found is None:
            return None
        agent, actor = found
        conversation = (
            await Conversation.filter(agent=agent, done=False, kind__in=list(KINDS_TAKEN))
            .order_by("-id")
            .select_related("agent")
            .first()
        )
        if conversation is None:
            return None
        lang = language(agent, tg)
        act = self._act(conversation, "")
        if not allowed(actor, act, owner_of(conversation.agent)):  # their own: always allowed
            return await refuse(chat_id, lang, "text", None, f"{act} {conversation.id}")
        if conversation.step not in TEXT_STEPS:
            prompt = await self._prompt(conversation, agent, actor, lang)
            return Reply(f"{tr(lang, USE_BUTTONS)}\n\n{prompt.text}", prompt.buttons)
        return await self._answer(conversation, agent, actor, lang, text=text.strip())

    @staticmethod
    def _act(conversation: Conversation, choice: str) -> Act:
        if choice == "contact":
            return Act.EDIT_CONTACT
        return Act.CREATE_TASK if conversation.kind == TASK else Act.TAKE_MESSAGE

    async def _answer(
        self,
        conversation: Conversation,
        agent: Agent,
        actor: Staff,
        lang: str,
        *,
        choice: str | None = None,
        text: str | None = None,
    ) -> Reply:
        a = conversation.answers
        step = conversation.step
        if choice == "cancel":
            conversation.done, conversation.step = True, "cancelled"
            await conversation.save(update_fields=["done", "step", "updated_at"])
            return Reply(tr(lang, "Cancelled."), (), tr(lang, "Cancelled."))
        if step == "confirm" and choice == "send":
            return await self._finish(conversation, agent, actor, lang)
        if step == "confirm" and choice == "contact":
            a["save_contact"] = not a.get("save_contact")
        else:
            problem = await self._store(conversation, actor, step, choice, text)
            if problem:  # the same question again, saying what was wrong
                said = tr(lang, problem, number=text or "")
                prompt = await self._prompt(conversation, agent, actor, lang)
                return Reply(f"{said}\n\n{prompt.text}", prompt.buttons, said)
            if problem is None:  # "": the same step, with what the answer found (matches)
                index = STEPS[conversation.kind].index(step)
                conversation.step = await self._first_open(conversation, index + 1)
        conversation.answers = a
        await conversation.save(update_fields=["answers", "step", "updated_at"])
        return await self._prompt(conversation, agent, actor, lang)

    async def _store(
        self,
        conversation: Conversation,
        actor: Staff,
        step: str,
        choice: str | None,
        text: str | None,
    ) -> str | None:
        """Keep one answer in `answers`; a localised problem instead when it will not do."""
        a = conversation.answers
        if text is not None:
            return await self._store_text(conversation, step, text)
        assert choice is not None
        match step, choice:
            case ("name", "keep"):
                a["name"] = a.get("prefill_name", "")
            case ("number", "keep"):
                a["number"] = a.get("prefill_number", "")
            case ("nature" | "handling" | "cause" | "note", "skip"):
                a[step] = ""
            case ("resolved", "yes" | "no"):
                a["resolved"] = choice == "yes"
            case ("category", _) if choice in CATEGORIES:
                a["category"] = choice
            case ("urgency", Urgency.NORMAL | Urgency.URGENT):
                a["urgency"] = choice
            case ("call", "yes" | "no"):
                a["is_call"] = choice == "yes"
            case ("tcat", "skip"):
                a["task_category"] = ""
            case ("tcat", _) if choice.startswith("c") and callbacks.parse_id(choice[1:]):
                category = await TaskCategory.get_or_none(id=int(choice[1:]))
                if category is None:
                    return STEP_OVER
                a["task_category"] = category.name
            case ("assignee", _):
                if not await self._assignee_ok(actor, choice):
                    return STEP_OVER
                a["assignee"] = choice
            case ("when" | "due" | "subscriber", _) if choice.startswith(("s", "h", "t")):
                return await self._store_pick(conversation, step, choice)
            case _:
                return STEP_OVER
        return None

    async def _store_text(self, conversation: Conversation, step: str, text: str) -> str | None:
        a = conversation.answers
        if not text:
            return EMPTY
        now = self.clock()
        match step:
            case "number":
                try:
                    a["number"] = to_e164(text, self._region)
                except InvalidNumber:
                    return NOT_A_NUMBER
            case "when" | "due":
                at = parse_when(text, a.get("timezone", "UTC"), now)
                if at is None:
                    return BAD_TIME
                if at <= now:
                    return PAST_TIME
                a[step] = at.isoformat()
            case "subscriber":
                found = await _find_subscribers(text)
                if not found:
                    return NO_MATCH
                if len(found) == 1:
                    _choose_subscriber(a, found[0])
                else:
                    a["matches"] = [[s.id, s.name] for s in found]
                    return ""  # stay: the matches are offered as buttons
            case _:
                a[step] = text[:2000] if step == "text" else text[:200]
        return None

    async def _store_pick(self, conversation: Conversation, step: str, choice: str) -> str | None:
        a = conversation.answers
        now = self.clock()
        if step == "when" and choice.startswith("s"):
            start = callbacks.parse_slot(choice[1:], now)
            if start is None:
                return STEP_OVER
            a["when"] = start.isoformat()
        elif step == "due" and choice in ("h1", "h3"):
            a["due"] = (now + timedelta(hours=int(choice[1:]))).replace(microsecond=0).isoformat()
        elif step == "due" and choice == "tm":
            zone = ZoneInfo(a.get("timezone", "UTC"))
            day = now.astimezone(zone).date() + timedelta(days=1)
            a["due"] = datetime.combine(day, TOMORROW_AT, zone).astimezone(UTC).isoformat()
        elif step == "subscriber" and choice.startswith("s") and callbacks.parse_id(choice[1:]):
            subscriber = await Subscriber.get_or_none(id=int(choice[1:]))
            if subscriber is None:
                return STEP_OVER
            _choose_subscriber(a, subscriber)
        else:
            return STEP_OVER
        return None

    async def _assignee_ok(self, actor: Staff, choice: str) -> bool:
        """me, my team, or (a supervisor) an agent of a team they lead."""
        if choice == "me":
            return True
        if choice == "team":
            return actor.team_id is not None
        if choice.startswith("a") and (agent_id := callbacks.parse_id(choice[1:])):
            target = await Agent.get_or_none(id=agent_id)
            return target is not None and allowed(actor, Act.EDIT_TASK, owner_of(target))
        return False

    async def _first_open(self, conversation: Conversation, index: int) -> str:
        """The first step from `index` on that still has a question to ask."""
        for step in STEPS[conversation.kind][index:]:
            if step == "subscriber" and "subscriber_id" in conversation.answers:
                continue
            if step == "tcat" and not await TaskCategory.exists():
                continue
            return step
        return "confirm"

    # -- finishing ---------------------------------------------------------------------------

    async def _finish(
        self, conversation: Conversation, agent: Agent, actor: Staff, lang: str
    ) -> Reply:
        a = conversation.answers
        name = a.get("subscriber_name", "")
        if conversation.kind == TASK:
            return await self._finish_task(conversation, agent, actor, lang)
        now = self.clock()
        try:
            result = await taking.take(self._notices, conversation, agent, now)
        except diary.Overlap:
            return await self._back_to_when(conversation, agent, actor, lang, SLOT_TAKEN)
        except diary.DiaryError:
            return await self._back_to_when(conversation, agent, actor, lang, SLOT_REFUSED)
        if not result.created:
            return Reply(toast=tr(lang, STEP_OVER))
        done = tr(lang, "Sent to {subscriber}.", subscriber=name)
        return Reply(f"{self._summary(conversation, lang)}\n\n✓ {done}", (), done)

    async def _back_to_when(
        self, conversation: Conversation, agent: Agent, actor: Staff, lang: str, why: str
    ) -> Reply:
        conversation.answers.pop("when", None)
        conversation.step = "when"
        await conversation.save(update_fields=["answers", "step", "updated_at"])
        prompt = await self._prompt(conversation, agent, actor, lang)
        return Reply(f"{tr(lang, why)}\n\n{prompt.text}", prompt.buttons, tr(lang, why))

    async def _finish_task(
        self, conversation: Conversation, agent: Agent, actor: Staff, lang: str
    ) -> Reply:
        a = conversation.answers
        subscriber = await Subscriber.get(id=a["subscriber_id"])
        choice = a.get("assignee", "me")
        assignee: Agent | None = agent
        team_id = agent.team_id  # type: ignore[attr-defined]
        if choice == "team":
            assignee = None
        elif choice.startswith("a"):
            assignee = await Agent.get(id=int(choice[1:]))
            team_id = assignee.team_id  # type: ignore[attr-defined]
        async with in_transaction():
            claimed = await Conversation.filter(id=conversation.id, done=False).update(
                done=True, step="done"
            )
            if not claimed:
                return Reply(toast=tr(lang, STEP_OVER))
            task = await self._tasks.create(
                subscriber,
                a.get("text", ""),
                datetime.fromisoformat(a["due"]),
                created_by=agent,
                assignee=assignee,
                team_id=team_id,
                category=a.get("task_category", ""),
                is_call=bool(a.get("is_call")),
                caller_number=a.get("number") or a.get("prefill_number", ""),
                caller_name=a.get("name") or a.get("prefill_name", ""),
            )
        conversation.done, conversation.step = True, "done"
        done = tr(lang, "Task created.")
        return Reply(f"{self._summary(conversation, lang)}\n\n✓ {done} (#{task.id})", (), done)

    # -- what is shown -----------------------------------------------------------------------

    async def _subscriber(self, conversation: Conversation) -> Subscriber | None:
        sid = conversation.answers.get("subscriber_id")
        return await Subscriber.get_or_none(id=sid) if sid else None

    async def _prompt(
        self, conversation: Conversation, agent: Agent, actor: Staff, lang: str
    ) -> Reply:
        a, step = conversation.answers, conversation.step
        if "subscriber_name" in a:
            title = tr(lang, TITLES[conversation.kind], subscriber=a["subscriber_name"])
        else:
            title = tr(lang, NEW_TASK)
        lines = [title]
        if step == "confirm":
            lines.append(self._summary(conversation, lang, title=False))
        elif step in ("name", "number") and a.get(f"prefill_{step}"):
            lines.append(tr(lang, "Now: {value}", value=a[f"prefill_{step}"]))
        lines.append(tr(lang, QUESTIONS[step]))
        rows = await self._buttons(conversation, actor, lang)
        cancel = (tr(lang, "Cancel"), callbacks.conversation(conversation.id, step, "cancel"))
        if step == "confirm":
            send = (tr(lang, "Send"), callbacks.conversation(conversation.id, step, "send"))
            rows = [*rows, (send, cancel)]
        else:
            rows = [*rows, (cancel,)]
        return Reply("\n".join(lines), tuple(rows))

    async def _buttons(
        self, conversation: Conversation, actor: Staff, lang: str
    ) -> list[tuple[tuple[str, str], ...]]:
        a, step, cid = conversation.answers, conversation.step, conversation.id

        def b(label: str, choice: str) -> tuple[str, str]:
            return (label, callbacks.conversation(cid, step, choice))

        match step:
            case "name" | "number" if a.get(f"prefill_{step}"):
                return [(b(tr(lang, "Keep"), "keep"),)]
            case "nature" | "handling" | "cause" | "note":
                return [(b(tr(lang, "Skip"), "skip"),)]
            case "resolved" | "call":
                return [(b(tr(lang, "Yes"), "yes"), b(tr(lang, "No"), "no"))]
            case "category":
                keys = list(CATEGORIES)
                return [
                    tuple(b(tr(lang, CATEGORIES[k]), k) for k in keys[i : i + 2])
                    for i in range(0, len(keys), 2)
                ]
            case "urgency":
                return [
                    (b(tr(lang, "Normal"), Urgency.NORMAL), b(tr(lang, "Urgent"), Urgency.URGENT))
                ]
            case "when":
                subscriber = await Subscriber.get(id=a["subscriber_id"])
                now = self.clock()
                free = await diary.free_slots(subscriber, now, now=now, limit=FREE_SLOTS)
                tz = subscriber.timezone
                return [(b(local_time(lang, tz, t), f"s{int(t.timestamp())}"),) for t in free]
            case "due":
                return [
                    (b(tr(lang, "In 1 hour"), "h1"), b(tr(lang, "In 3 hours"), "h3")),
                    (b(tr(lang, "Tomorrow 10:00"), "tm"),),
                ]
            case "subscriber":
                return [(b(name, f"s{sid}"),) for sid, name in a.get("matches", [])]
            case "assignee":
                rows: list[tuple[tuple[str, str], ...]] = [(b(tr(lang, "Me"), "me"),)]
                if actor.team_id is not None:
                    rows.append((b(tr(lang, "My team"), "team"),))
                for team in await Team.filter(id__in=list(actor.leads)).order_by("name"):
                    for member in await Agent.filter(team=team).select_related("user"):
                        if member.id != actor.agent_id:
                            rows.append((b(member.user.name, f"a{member.id}"),))
                return rows
            case "tcat":
                categories = await TaskCategory.all().order_by("name")
                offered: list[tuple[tuple[str, str], ...]] = [
                    (b(c.name, f"c{c.id}"),) for c in categories
                ]
                return [*offered, (b(tr(lang, "Skip"), "skip"),)]
            case "confirm" if conversation.kind != TASK and a.get("number"):
                return [(b(await self._contact_label(conversation, lang), "contact"),)]
        return []

    async def _contact_label(self, conversation: Conversation, lang: str) -> str:
        a = conversation.answers
        known = a.get("contact_name")
        tick = "✓ " if a.get("save_contact") else ""
        if known is None:
            return tick + tr(lang, "Save as a new contact")
        return tick + tr(lang, "Correct the contact's name")

    def _summary(self, conversation: Conversation, lang: str, title: bool = True) -> str:
        a = conversation.answers
        lines = []
        if title and "subscriber_name" in a:
            lines.append(tr(lang, TITLES[conversation.kind], subscriber=a["subscriber_name"]))
        caller = " ".join(p for p in (a.get("name", ""), a.get("number", "")) if p)
        if caller:
            lines.append(tr(lang, "Caller: {caller}", caller=caller))
        tz = a.get("timezone", "UTC")
        if a.get("when"):
            when = local_time(lang, tz, datetime.fromisoformat(a["when"]))
            lines.append(tr(lang, "Appointment: {time}", time=when))
        if a.get("due"):
            lines.append(
                tr(lang, "Due: {time}", time=local_time(lang, tz, datetime.fromisoformat(a["due"])))
            )
        if a.get("text"):
            lines.append(a["text"])
        if a.get("note"):
            lines.append(a["note"])
        if a.get("category") in CATEGORIES:
            label = tr(lang, CATEGORIES[a["category"]])
            lines.append(tr(lang, "Category: {category}", category=label))
        if a.get("task_category"):
            lines.append(tr(lang, "Category: {category}", category=a["task_category"]))
        for key, msgid in (
            ("nature", N_("Nature of the call: {text}")),
            ("handling", N_("Handling: {text}")),
            ("cause", N_("Cause: {text}")),
        ):
            if a.get(key):
                lines.append(tr(lang, msgid, text=a[key]))
        if a.get("resolved") is not None:
            lines.append(tr(lang, "Resolved: yes") if a["resolved"] else tr(lang, "Resolved: no"))
        if a.get("urgency") == Urgency.URGENT:
            lines.append(tr(lang, "Urgent"))
        if a.get("is_call"):
            lines.append(tr(lang, "Scheduled call"))
        return "\n".join(lines)


async def _find_subscribers(text: str, limit: int = 6) -> list[Subscriber]:
    by_name = await Subscriber.filter(name__icontains=text).order_by("name").limit(limit)
    if by_name:
        return list(by_name)
    ddis = (
        await Ddi.filter(number__contains=text).limit(limit).values_list("subscriber_id", flat=True)
    )
    return list(await Subscriber.filter(id__in=list(ddis)).order_by("name"))


def _choose_subscriber(a: dict[str, Any], subscriber: Subscriber) -> None:
    a["subscriber_id"] = subscriber.id
    a["subscriber_name"] = subscriber.name
    a["timezone"] = subscriber.timezone
    a.pop("matches", None)
