"""The operator desk's part of the day (issue 11), played against the sandbox.

A team "Day shift" led by a supervisor; two agents whose phones are the queue members the
sandbox's call scripts ring (`PJSIP/agent1`, `PJSIP/agent2`) link their Telegram chats
with their staff codes and /signin (QueueAdd to the sandbox AMI). A known caller of the
Russian subscriber (a contact, whose missed call of the morning is her history) calls
again: both agents get a card with that history, the first answers and both cards are
edited. From her card she takes an urgent message (buttons and typed answers), which
reaches the subscriber on every channel; she puts the call through to her colleague with
a note, which he is shown; the caller hangs up; she makes a task (call back tomorrow
10:00). Last the supervisor asks /online.

Everything goes through the sandbox Bot API (injected updates, the bot's requests read
back) and the sandbox AMI (played frames, the actions it received); each step waits for
the answer it expects, never for time. Only with the sandbox's AMI stand-in: on a real
PBX (`demo --pbx`) nobody plays the agents' phones, and the desk's keys stay empty.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.runtime import Runtime
from gateway.control import callbacks
from gateway.staff import people
from models.events import CallSnapshot
from models.staff import Agent, Card, Presence, Task, TaskCategory
from models.vocab import Channel, Kind
from sandbox.ami_server import AmiServer
from sandbox.call_scripts import CallFactory
from sandbox.telegram_api import BotApiServer, Call

WAIT = 20.0
TEAM = "Day shift"
SUPERVISOR = ("Sofia Alexiou", 2001)
# (name, chat, queue member interface): sandbox/call_scripts.py rings PJSIP/agent<N>.
AGENTS = [("Eleni Markou", 2101, "PJSIP/agent1"), ("Nikos Pappas", 2102, "PJSIP/agent2")]
LANGUAGE = "en"  # the desk's language (cards and prompts); the subscriber reads Russian
# Later than the morning's calls (demo/day.py's CallFactory), so no Uniqueid repeats.
CALL_EPOCH = 1795339700 + 3600
URGENT_TEXT = "Суд перенёс заседание на завтра 9:00, срочно перезвоните клиентке."
NOTE = "Client of Ivanov's, court hearing moved: wants to speak to the partner on duty"
TASK_TEXT = "Call Мария Петрова back about the hearing"
TASK_CATEGORY = "Call back"
SEND, EDIT = "sendMessage", "editMessageText"
CARD_STATES = {"answered", "taken"}  # the answering agent's card, the other's
EVERY_CHANNEL = {
    Channel.TELEGRAM: "sent",
    Channel.SMS: "delivered",
    Channel.EMAIL: "sent",
    Channel.MMS: "delivered",
}


@dataclass
class Seen:
    """What the desk's chats showed during the day (the rest is read from the database)."""

    linkedid: str = ""
    subscriber: str = ""
    shown: dict[int, str] = field(default_factory=dict)  # card id -> its status on screen
    transfer: dict[str, Any] = field(default_factory=dict)
    online: list[str] = field(default_factory=list)
    urgent_message: str = ""


class Chats:
    """The staff chats through the sandbox Bot API: say or press, then the bot's answer."""

    def __init__(self, bot: BotApiServer) -> None:
        self.bot = bot

    def mark(self) -> set[int]:
        return {id(c) for c in self.bot.requests}

    async def answer(
        self, chat: int, before: set[int], want: Callable[[Call], bool] = lambda c: True
    ) -> Call:
        """The bot's first message (sent or edited) to `chat` since `before` that `want`s."""
        return await self.bot.wait_for(
            lambda c: (
                id(c) not in before
                and c.method in (SEND, EDIT)
                and str(c.params.get("chat_id")) == str(chat)
                and c.ok
                and want(c)
            ),
            timeout=WAIT,
        )

    async def say(
        self, chat: int, text: str, want: Callable[[Call], bool] = lambda c: True
    ) -> Call:
        before = self.mark()
        self.bot.inject_message(chat, text, language_code=LANGUAGE)
        return await self.answer(chat, before, want)

    async def press(
        self, chat: int, on: Call, data: str, want: Callable[[Call], bool] = lambda c: True
    ) -> Call:
        assert data in datas(on), f"no button {data!r} on {on.params.get('text')!r}"
        before = self.mark()
        self.bot.inject_callback(chat, message_id(on), data, language_code=LANGUAGE)
        return await self.answer(chat, before, want)

    def text(self, chat: int, mid: int) -> str:
        return str((self.bot.message(chat, mid) or {}).get("text", ""))


def datas(call: Call) -> list[str]:
    rows = (call.params.get("reply_markup") or {}).get("inline_keyboard") or []
    return [str(b.get("callback_data", "")) for row in rows for b in row]


def message_id(call: Call) -> int:
    return int(call.params.get("message_id") or (call.result or {})["message_id"])


def asks(step: str) -> Callable[[Call], bool]:
    """The exchange's prompt for `step` (every prompt has buttons `cv:<id>:<step>:...`)."""
    shape = re.compile(rf"^{callbacks.CONVERSATION}:[0-9]+:{step}:")
    return lambda c: any(shape.match(d) for d in datas(c))


def choice(prompt: Call, value: str) -> str:
    """The data of the prompt's button for `value`."""
    found = [d for d in datas(prompt) if d.endswith(f":{value}")]
    assert found, f"no choice {value!r} in {datas(prompt)}"
    return found[0]


# -- the steps -----------------------------------------------------------------------------------


async def staff_sign_in(chats: Chats) -> dict[str, Agent]:
    """The team, its supervisor and agents; each links their chat; the agents /signin."""
    sup_name, sup_chat = SUPERVISOR
    sofia = await people.add_staff(name=sup_name, role="supervisor", language=LANGUAGE)
    team = await people.add_team(TEAM, sofia.agent.id)
    await Agent.filter(id=sofia.agent.id).update(team_id=team.id)  # she leads her own team
    made = [(sup_chat, sofia)]
    for name, chat, interface in AGENTS:
        agent = await people.add_staff(
            name=name, role="agent", team=TEAM, interface=interface, language=LANGUAGE
        )
        made.append((chat, agent))
    for chat, staff in made:
        await chats.say(chat, f"/start {staff.link_code}")
    for _, chat, _ in AGENTS:
        await chats.say(chat, "/signin")
    return {str(s.agent.user.name): s.agent for _, s in made}


async def ring_and_answer(
    runtime: Runtime, ami: AmiServer, chats: Chats, ddi: str, caller: tuple[str, str]
) -> tuple[str, list[dict[str, str]], dict[int, Call]]:
    """The known caller rings both agents, the first answers; the call stays up. The
    linkedid, the frames left (the caller hanging up) and each agent chat's card."""
    number, name = caller
    frames = CallFactory(start_epoch=CALL_EPOCH).agent_answered(
        ddi, number, name, agents=("1", "2"), answered_by_index=0
    )
    linkedid = frames[0]["Linkedid"]
    up = next(i for i, f in enumerate(frames) if f["Event"] == "HangupRequest")
    answered = asyncio.Event()

    def observe(snap: CallSnapshot) -> None:
        if snap.linkedid == linkedid and snap.answered_at is not None:
            answered.set()

    runtime.gateway.observers.append(observe)
    before = chats.mark()
    await ami.play(frames[:up])
    await asyncio.wait_for(answered.wait(), WAIT)
    runtime.gateway.observers.remove(observe)
    is_card = _is_card(number)
    cards = {chat: await chats.answer(chat, before, is_card) for _, chat, _ in AGENTS}
    return linkedid, frames[up:], cards


def _is_card(number: str) -> Callable[[Call], bool]:
    prefix = f"{callbacks.CARD}:"
    return lambda c: (
        c.method == SEND
        and number in str(c.params.get("text", ""))
        and any(d.startswith(prefix) for d in datas(c))
    )


async def card_of(agent: Agent, linkedid: str) -> Card:
    return await Card.get(agent_id=agent.id, linkedid=linkedid)


async def take_urgent_message(chats: Chats, chat: int, card: Card, on: Call) -> str:
    """The card's "Take message": keep the caller's name and number, type the message,
    category "Please call back", urgent, send. The bot's last word back."""
    prompt = await chats.press(
        chat, on, callbacks.card(card.id, callbacks.CARD_MESSAGE), asks("name")
    )
    prompt = await chats.press(chat, prompt, choice(prompt, "keep"), asks("number"))
    prompt = await chats.press(chat, prompt, choice(prompt, "keep"), asks("text"))
    prompt = await chats.say(chat, URGENT_TEXT, asks("category"))
    prompt = await chats.press(chat, prompt, choice(prompt, "callback"), asks("urgency"))
    prompt = await chats.press(chat, prompt, choice(prompt, "urgent"), asks("confirm"))
    done = await chats.press(chat, prompt, choice(prompt, "send"), lambda c: not datas(c))
    return str(done.params.get("text", ""))


async def transfer_with_note(
    chats: Chats, chat: int, card: Card, on: Call, to: Agent, to_chat: int, names: tuple[str, str]
) -> dict[str, Any]:
    """The card's "Transfer": the colleague, then the note; what he is told."""
    target = callbacks.transfer_to(card.id, "a", to.id)
    menu = await chats.press(
        chat, on, callbacks.card(card.id, callbacks.CARD_TRANSFER), lambda c: target in datas(c)
    )
    await chats.press(chat, menu, target)  # "Type a note for ..."
    before = chats.mark()
    done = await chats.say(chat, NOTE)
    told = await chats.answer(to_chat, before, lambda c: NOTE in str(c.params.get("text", "")))
    return {
        "from": names[0],
        "to": names[1],
        "note": NOTE,
        "done": str(done.params.get("text", "")),
        "seen_by_receiver": str(told.params.get("text", "")),
    }


async def make_task(chats: Chats, chat: int, card: Card, on: Call) -> None:
    """The card's "Task": the text, due tomorrow 10:00, no call, me, a category, send."""
    category, _ = await TaskCategory.get_or_create(name=TASK_CATEGORY)  # supervisors keep these
    prompt = await chats.press(chat, on, callbacks.card(card.id, callbacks.CARD_TASK), asks("text"))
    prompt = await chats.say(chat, TASK_TEXT, asks("due"))
    prompt = await chats.press(chat, prompt, choice(prompt, "tm"), asks("call"))
    prompt = await chats.press(chat, prompt, choice(prompt, "no"), asks("assignee"))
    prompt = await chats.press(chat, prompt, choice(prompt, "me"), asks("tcat"))
    prompt = await chats.press(chat, prompt, choice(prompt, f"c{category.id}"), asks("confirm"))
    await chats.press(chat, prompt, choice(prompt, "send"), lambda c: not datas(c))


async def hang_up(
    runtime: Runtime, ami: AmiServer, linkedid: str, rest: list[dict[str, str]]
) -> None:
    ended = asyncio.Event()

    def observe(snap: CallSnapshot) -> None:
        if snap.linkedid == linkedid and snap.ended:
            ended.set()

    runtime.gateway.observers.append(observe)
    await ami.play(rest)
    await asyncio.wait_for(ended.wait(), WAIT)
    runtime.gateway.observers.remove(observe)
    await asyncio.wait_for(runtime.gateway.cards.drain(), WAIT)


async def desk_day(
    runtime: Runtime,
    bot: BotApiServer,
    ami: AmiServer,
    subscriber: str,
    ddi: str,
    caller: tuple[str, str],
) -> Seen:
    """The desk's part of the day; what its chats showed."""
    chats = Chats(bot)
    seen = Seen(subscriber=subscriber)
    staff = await staff_sign_in(chats)
    first, second = (staff[name] for name, _, _ in AGENTS)
    (_, first_chat, _), (_, second_chat, _) = AGENTS
    linkedid, rest, shown = await ring_and_answer(runtime, ami, chats, ddi, caller)
    seen.linkedid = linkedid
    mine, theirs = await card_of(first, linkedid), await card_of(second, linkedid)
    # Both cards edited in place: "Answered by you" and "Answered by <her name>".
    await bot.wait_until(
        lambda: (
            "Answered by you" in chats.text(first_chat, message_id(shown[first_chat]))
            and "Answered by" in chats.text(second_chat, message_id(shown[second_chat]))
        ),
        WAIT,
        "both cards edited as answered",
    )
    seen.urgent_message = await take_urgent_message(chats, first_chat, mine, shown[first_chat])
    seen.transfer = await transfer_with_note(
        chats,
        first_chat,
        mine,
        shown[first_chat],
        second,
        second_chat,
        (AGENTS[0][0], AGENTS[1][0]),
    )
    await hang_up(runtime, ami, linkedid, rest)
    await make_task(chats, first_chat, mine, shown[first_chat])
    online = await chats.say(SUPERVISOR[1], "/online")
    seen.online = str(online.params.get("text", "")).splitlines()
    for chat, card in ((first_chat, mine), (second_chat, theirs)):
        lines = chats.text(chat, message_id(shown[chat])).splitlines()
        seen.shown[card.id] = lines[-1] if lines else ""
    return seen


# -- the report ----------------------------------------------------------------------------------


async def desk_report(seen: Seen | None) -> dict[str, Any]:
    """`agents`, `agent_cards`, `tasks`, and `desk` (what the chats showed)."""
    roster = await people.roster()
    cards = (
        await Card.filter(linkedid=seen.linkedid)
        .order_by("id")
        .prefetch_related("agent__user", "subscriber")
        if seen is not None
        else []
    )
    tasks = await Task.all().order_by("id").prefetch_related("assignee__user", "team")
    return {
        "agents": [
            {
                "name": a.user.name,
                "team": a.team.name if a.team is not None else None,
                "role": str(a.user.role),
                "state": str(a.presence),
            }
            for a in roster
        ],
        "agent_cards": [
            {
                "agent": c.agent.user.name,
                "subscriber": c.subscriber.name if c.subscriber is not None else None,
                "caller": c.caller_number,
                "history": [line for line in c.text.splitlines() if line.startswith("• ")],
                "final_state": str(c.state),
                "shown": seen.shown.get(c.id, "") if seen is not None else "",
                "transfer_note": c.transfer_note,
            }
            for c in cards
        ],
        "tasks": [
            {
                "assignee": t.assignee.user.name if t.assignee is not None else None,
                "team": t.team.name if t.team is not None else None,
                "category": t.category,
                "status": str(t.status),
                "due": t.due_at.isoformat(),
                "text": t.text,
                "is_call": t.is_call,
            }
            for t in tasks
        ],
        "desk": {
            "subscriber": seen.subscriber if seen is not None else None,
            "urgent_message": seen.urgent_message if seen is not None else "",
            "transfer": seen.transfer if seen is not None else {},
            "online": seen.online if seen is not None else [],
        },
    }


def check_desk(report: dict[str, Any]) -> list[str]:
    """What went wrong with the desk's part of the day, if anything (sandbox side only)."""
    problems = []
    agents = {a["name"]: a for a in report["agents"]}
    for name, _, _ in AGENTS:
        if agents.get(name, {}).get("state") != Presence.READY:
            problems.append(f"desk: {name} is not signed in (ready)")
    cards = report["agent_cards"]
    if sorted(c["final_state"] for c in cards) != sorted(CARD_STATES):
        problems.append(f"desk: expected two cards, answered and taken: {cards}")
    if any(not c["history"] for c in cards):
        problems.append("desk: a card showed no history for the known caller")
    subscriber = report["desk"]["subscriber"]
    urgent = {
        d["channel"]: d["status"]
        for d in report["deliveries"]
        if d["subscriber"] == subscriber and d["kind"] == Kind.MESSAGE and d["urgency"] == "urgent"
    }
    if urgent != EVERY_CHANNEL:
        problems.append(f"desk: the urgent message: expected {EVERY_CHANNEL}, got {urgent}")
    transfer = report["desk"]["transfer"]
    if NOTE not in transfer.get("seen_by_receiver", ""):
        problems.append("desk: the transfer note did not reach the colleague")
    if not any(c["transfer_note"] == NOTE for c in cards):
        problems.append("desk: the transfer note is on no card")
    if len(report["tasks"]) != 1:
        problems.append(f"desk: expected one task, got {report['tasks']}")
    online = report["desk"]["online"]
    if not all(any(line.startswith(name) for line in online) for name, _, _ in AGENTS):
        problems.append(f"desk: the supervisor's /online misses an agent: {online}")
    return problems


def print_desk(report: dict[str, Any]) -> None:
    """The desk's part of the day, after the timeline (nothing when it was not played)."""
    if not report["agent_cards"]:
        return
    print("\nOperator desk:")
    for a in report["agents"]:
        print(f"  {a['name']} ({a['role']}, {a['team']}): {a['state']}")
    for c in report["agent_cards"]:
        print(f"  card for {c['agent']}: {c['subscriber']}, caller {c['caller']}")
        for line in c["history"]:
            print(f"      {line}")
        print(f"      {c['shown']} [{c['final_state']}]")
    transfer = report["desk"]["transfer"]
    print(f"  {transfer['from']} -> {transfer['to']}: {transfer['done']}")
    for line in transfer["seen_by_receiver"].splitlines():
        print(f"      {line}")
    for t in report["tasks"]:
        print(f"  task for {t['assignee']} ({t['category']}, {t['status']}, due {t['due']})")
    print(f"  {SUPERVISOR[0]} asks /online:")
    for line in report["desk"]["online"]:
        print(f"      {line}")
