"""An agent puts a live call through to a colleague, on a real Asterisk (marker `pbx`).

The caller is answered by agent1 (Local/agent1@test-agents); from agent1's card, through
the sandbox Bot API, the agent picks agent2 and types a note. The gateway's Setvar and
Redirect move the caller into the shipped [frontdesk-transfer], whose Dial rings
Local/agent2@test-agents on the same call (same Linkedid); agent2 answers, agent1's leg
is hung up, and agent2's chat has the note.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.control import callbacks
from models.db import Role, User
from models.events import CallSnapshot
from models.staff import Agent, Card, Presence, Team
from tests.pbx_stack import WAIT, LiveStack, live_stack

pytestmark = pytest.mark.pbx

MARIA = '"Μαρία Νίκου" <+302101234567>'
DDI = "2100005"
ANNA_CHAT, BORIS_CHAT = 701, 702
NOTE = "VIP: wants the results today"


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveStack]:
    async with live_stack(tmp_path, mailboxes=(DDI,)) as stack:
        yield stack


async def _agent(name: str, team: Team, interface: str, chat: int) -> Agent:
    user = await User.create(name=name, role=Role.AGENT, telegram_chat_id=chat, language="en")
    return await Agent.create(user=user, team=team, interface=interface, presence=Presence.READY)


async def test_a_call_answered_by_one_agent_is_put_through_to_another(live: LiveStack) -> None:
    line = await live.line(DDI, chat=601)
    await live.astdb(f"ringtime/{DDI}", "10")
    await live.agents(agent1="answer", agent2="ring")
    await live.pbx.db_put("test", "talk", "60")  # agent1 stays on the line
    team = await Team.create(name="North")
    anna = await _agent("Anna", team, "Local/agent1@test-agents", ANNA_CHAT)
    boris = await _agent("Boris", team, "Local/agent2@test-agents", BORIS_CHAT)

    answered: asyncio.Future[CallSnapshot] = asyncio.get_running_loop().create_future()

    def observe(snap: CallSnapshot) -> None:
        if snap.ddi == DDI and snap.answered_by == anna.interface and not answered.done():
            answered.set_result(snap)

    gateway = live.runtime.gateway
    gateway.observers.append(observe)
    await live.harness.call(DDI, MARIA, patience=30, wait=60)
    call = await asyncio.wait_for(answered, WAIT)
    linkedid = call.linkedid
    await live.agents(agent2="answer")  # from now on agent2 picks up when rung

    await gateway.cards.drain()
    card = await Card.get_or_none(agent_id=anna.id, linkedid=linkedid)
    if card is None:  # the cards desk pops it on the ring; made here if it did not
        card = await Card.create(
            agent=anna,
            linkedid=linkedid,
            subscriber_id=line.subscriber_id,
            caller_number="+302101234567",
            chat_id=ANNA_CHAT,
            text="card",
        )

    live.bot.inject_callback(ANNA_CHAT, 1, callbacks.transfer_to(card.id, "a", boris.id))
    await live.bot.wait_for(
        lambda c: (
            str(c.params.get("chat_id")) == str(ANNA_CHAT)
            and "note for Boris" in str(c.params.get("text", ""))
        ),
        timeout=WAIT,
    )
    live.bot.inject_message(ANNA_CHAT, NOTE)

    # On the real PBX: agent2's leg of the same call rings and answers; agent1's goes.
    def agent2_leg(event: dict[str, str], name: str) -> bool:
        return (
            event.get("Event") == name
            and event.get("DestChannel", "").startswith("Local/agent2@test-agents-")
            and event.get("Linkedid") == linkedid
            and event.get("Context") == "frontdesk-transfer"  # not the queue's first ring
        )

    rang = await live.harness.wait_event(lambda e: agent2_leg(e, "DialBegin"), timeout=WAIT)
    ended = await live.harness.wait_event(
        lambda e: agent2_leg(e, "DialEnd") and e.get("DialStatus") == "ANSWER", timeout=WAIT
    )
    assert rang["DestChannel"] == ended["DestChannel"]
    hung = await live.harness.wait_event(
        lambda e: (
            e.get("Event") == "Hangup"
            and e.get("Channel", "").startswith("Local/agent1@test-agents-")
            and e.get("Channel", "").endswith(";1")
            and e.get("Linkedid") == linkedid
        ),
        timeout=WAIT,
    )
    assert hung
    # The gateway's own actions, seen by Asterisk: the target was set, then the move.
    setvar = await live.harness.wait_event(
        lambda e: (
            e.get("Event") == "VarSet"
            and e.get("Variable") == "FD_XFER_TO"
            and e.get("Linkedid") == linkedid
        ),
        timeout=WAIT,
    )
    assert setvar["Value"] == "Local/agent2@test-agents"

    # Boris sees the note, and his card of the call carries it.
    told = await live.bot.wait_for(
        lambda c: (
            str(c.params.get("chat_id")) == str(BORIS_CHAT)
            and NOTE in str(c.params.get("text", ""))
        ),
        timeout=WAIT,
    )
    assert "Anna" in told.params["text"]
    received = await Card.get(agent_id=boris.id, linkedid=linkedid)
    assert received.transfer_note == NOTE
    assert linkedid in gateway.tracker.calls  # the same call goes on
