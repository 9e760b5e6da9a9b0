"""The screen-pop card on a real Asterisk 22 (marker `pbx`): the shipped dialplan's queue
rings its static members Local/agent1@test-agents and Local/agent2@test-agents, each
agent's chat gets the call's card, and the cards are edited when agent1 answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from models.db import Role, User
from models.events import CallOutcome
from models.staff import Agent, Card, CardState
from sandbox.telegram_api import Call as BotCall
from tests.pbx_stack import LiveStack, live_stack

pytestmark = pytest.mark.pbx

MARIA = '"Μαρία Νίκου" <+302101234567>'
AGENT1, AGENT2 = 801, 802  # the agents' chats
RING = 5


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveStack]:
    async with live_stack(tmp_path, mailboxes=("2100001",)) as stack:
        yield stack


def _card_to(chat: int) -> Callable[[BotCall], bool]:
    def found(c: BotCall) -> bool:
        rows = (c.params.get("reply_markup") or {}).get("inline_keyboard") or []
        return (
            c.method == "sendMessage"
            and str(c.params.get("chat_id")) == str(chat)
            and any(b.get("callback_data", "").startswith("cd:") for row in rows for b in row)
        )

    return found


async def test_a_real_queue_call_pops_the_agents_cards_edited_on_the_answer(
    live: LiveStack,
) -> None:
    await live.line("2100001", chat=501)
    await live.astdb("ringtime/2100001", str(RING))
    for name, chat, agent in (("Agent One", AGENT1, "agent1"), ("Agent Two", AGENT2, "agent2")):
        user = await User.create(name=name, role=Role.AGENT, telegram_chat_id=chat, language="en")
        await Agent.create(user=user, interface=f"Local/{agent}@test-agents")
    await live.agents(agent1="answer", agent2="ring")

    await live.harness.call("2100001", MARIA, patience=30)
    one = await live.bot.wait_for(_card_to(AGENT1), timeout=30)
    two = await live.bot.wait_for(_card_to(AGENT2), timeout=30)
    for sent in (one, two):
        text = sent.params["text"]
        assert text.startswith("📞 Call for Office 2100001\nSay: “Good ")
        assert "Caller: new caller (Μαρία Νίκου, +302101234567)" in text
        assert text.endswith("🔔 Ringing…")

    [call] = await live.call_ended("2100001")
    assert call.outcome is CallOutcome.ANSWERED

    def reads(sent: BotCall) -> str:
        assert sent.result is not None
        message = live.bot.message(int(sent.params["chat_id"]), sent.result["message_id"])
        return str((message or {}).get("text", ""))

    await live.bot.wait_until(
        lambda: (
            reads(one).endswith("✅ Answered by you · Call ended")
            and reads(two).endswith("☑️ Answered by Agent One")
        ),
        timeout=30,
        what="both cards edited",
    )
    await live.runtime.gateway.cards.drain()
    states = {c.chat_id: c.state for c in await Card.filter(linkedid=call.linkedid)}
    assert states == {AGENT1: CardState.ANSWERED, AGENT2: CardState.TAKEN}
    assert len([c for c in live.bot.sent if _card_to(AGENT1)(c)]) == 1  # re-rings: one card
