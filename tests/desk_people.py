"""The people of the desk tests (tests/unit/test_conversation.py, test_tasks.py and the
e2e tests of taking messages and tasks): a subscriber reachable on every channel, two
teams, each with a supervisor and agents linked to Telegram chats, and a card."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.control import admin
from models.db import Role, Subscriber, User
from models.staff import Agent, Card, CardState, Team
from sandbox.telegram_api import Call

SUBSCRIBER_CHAT = 7001
MARIA, NIKOS, ELENI, SUPERVISOR, OTHER_SUPERVISOR = 8001, 8002, 8003, 8101, 8102
DDI = "2100077"
CALLER = "+302101112233"
EMAIL = "office@example.org"
MOBILE = "+306944000777"


@dataclass
class People:
    subscriber: Subscriber
    maria: Agent  # team A
    nikos: Agent  # team A
    eleni: Agent  # team B
    supervisor: Agent  # leads team A
    other_supervisor: Agent  # leads team B
    team_a: Team
    team_b: Team
    card: Card  # a call of the subscriber's, on Maria's desk


async def _agent(name: str, chat: int, role: Role, team: Team | None, interface: str) -> Agent:
    user = await User.create(name=name, role=role, telegram_chat_id=chat, language="en")
    agent = await Agent.create(user=user, team=team, interface=interface)
    return await Agent.get(id=agent.id).select_related("user", "team")


async def make_people(*, linked_chat: bool = True) -> People:
    created = await admin.add_subscriber(
        name="Dr Papadopoulos", ddis=[DDI], language="en", timezone="Europe/Athens"
    )
    subscriber = created.subscriber
    await admin.set_contact_points(subscriber.id, email=EMAIL, mobile=MOBILE)
    if linked_chat:
        await admin.link_chat(created.link_code, SUBSCRIBER_CHAT, "Office", "en")
    subscriber = await Subscriber.get(id=subscriber.id)
    team_a = await Team.create(name="A")
    team_b = await Team.create(name="B")
    supervisor = await _agent("Sofia", SUPERVISOR, Role.SUPERVISOR, team_a, "PJSIP/sup1")
    other = await _agent("Petros", OTHER_SUPERVISOR, Role.SUPERVISOR, team_b, "PJSIP/sup2")
    team_a.supervisor_id = supervisor.user.id
    team_b.supervisor_id = other.user.id
    await team_a.save()
    await team_b.save()
    maria = await _agent("Maria", MARIA, Role.AGENT, team_a, "PJSIP/agent1")
    nikos = await _agent("Nikos", NIKOS, Role.AGENT, team_a, "PJSIP/agent2")
    eleni = await _agent("Eleni", ELENI, Role.AGENT, team_b, "PJSIP/agent3")
    card = await Card.create(
        agent=maria,
        linkedid="1700000000.1",
        subscriber=subscriber,
        caller_number=CALLER,
        chat_id=MARIA,
        message_id=1,
        state=CardState.ANSWERED,
    )
    return People(subscriber, maria, nikos, eleni, supervisor, other, team_a, team_b, card)


# -- the running service, for the e2e tests -----------------------------------------------------


def said_to(chat: int, words: str) -> Callable[[Call], bool]:
    """A message the bot sent or edited in `chat` whose text has `words`."""

    def match(call: Call) -> bool:
        return (
            call.method in ("sendMessage", "editMessageText")
            and str(call.params.get("chat_id")) == str(chat)
            and words in str(call.params.get("text", ""))
            and call.ok
        )

    return match


def button(call: Call, label: str) -> str:
    """The data of the button starting with `label` on what the bot sent."""
    rows = call.params.get("reply_markup", {}).get("inline_keyboard", [])
    for row in rows:
        for b in row:
            if str(b["text"]).startswith(label):
                return str(b["callback_data"])
    raise AssertionError(f"no button {label!r} in {rows}")


def message_id(call: Call) -> int:
    return int(call.params.get("message_id") or (call.result or {})["message_id"])
