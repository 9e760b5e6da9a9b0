"""Agents' presence against a real Asterisk 22 (marker `pbx`).

The queue `frontdesk-agents` starts with no member; the phone `Local/agent7@test-agents`
exists in the test dialplan. An agent signs in from Telegram (sandbox Bot API): the
gateway's QueueAdd makes the phone a real member, and a real call to the subscriber's DDI
rings it. After Asterisk restarts, the gateway reads QueueStatus on its new login: without
`persistentmembers` the membership is gone and the agent shows signed out; with it the
member comes back, still paused.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.staff import people
from gateway.staff.presence import PAUSED, SIGNED_IN
from locales import tr
from models.events import CallOutcome
from models.staff import Agent, Presence
from sandbox.real_pbx import PbxConfig
from sandbox.telegram_api import Call as BotCall
from tests.pbx_stack import WAIT, LiveStack, live_stack

pytestmark = pytest.mark.pbx

PHONE = "agent7"
INTERFACE = f"Local/{PHONE}@test-agents"
QUEUE = "frontdesk-agents"
CHAT = 601
CALLER = '"Μαρία Νίκου" <+302101234567>'
RING = 5


def _no_static_members(persistent: bool) -> Callable[[PbxConfig], None]:
    def configure(config: PbxConfig) -> None:
        config.agents = ()
        config.dynamic_agents = (PHONE,)
        config.persistent_members = persistent

    return configure


async def _say(live: LiveStack, text: str, answer: str) -> BotCall:
    before = {id(c) for c in live.bot.requests}
    live.bot.inject_message(CHAT, text)
    return await live.bot.wait_for(
        lambda c: (
            id(c) not in before
            and c.method == "sendMessage"
            and c.params.get("chat_id") == CHAT
            and c.params.get("text", "").startswith(answer)
        ),
        timeout=WAIT,
    )


async def _maria(live: LiveStack) -> Agent:
    team = await people.add_team("Front")
    made = await people.add_staff(name="Maria", role="agent", team=team.name, interface=INTERFACE)
    await _say(live, f"/start {made.link_code}", "Linked to the desk as Maria")
    return made.agent


async def _presence(agent: Agent) -> tuple[Presence, str]:
    row = await Agent.get(id=agent.id)
    return row.presence, row.pause_reason


async def test_a_signed_in_agent_is_rung_and_a_restart_signs_them_out(tmp_path: Path) -> None:
    configure = _no_static_members(persistent=False)
    async with live_stack(tmp_path, mailboxes=("2100001",), configure=configure) as live:
        await live.line("2100001", chat=501)
        await live.astdb("ringtime/2100001", str(RING))
        await live.agents(**{PHONE: "answer"})
        maria = await _maria(live)
        assert "No Members" in await live.pbx.rx(f"queue show {QUEUE}")

        await _say(live, "/signin", tr("en", SIGNED_IN, agent="Maria"))
        added = await live.harness.wait_event(
            lambda e: e.get("Event") == "QueueMemberAdded" and e.get("Interface") == INTERFACE
        )
        assert (added["MemberName"], added["Membership"]) == ("Maria", "dynamic")
        assert f"Maria ({INTERFACE}" in await live.pbx.rx(f"queue show {QUEUE}")
        assert await _presence(maria) == (Presence.READY, "")

        await live.harness.call("2100001", CALLER, patience=30)
        [call] = await live.call_ended("2100001")
        assert call.outcome is CallOutcome.ANSWERED
        assert call.answered_by == INTERFACE  # the member we added took the call
        called = [e for e in live.harness.events if e.get("Event") == "AgentCalled"]
        assert [(e.get("Interface"), e.get("MemberName")) for e in called] == [(INTERFACE, "Maria")]

        await live.restart_pbx(signal.SIGTERM)
        assert "No Members" in await live.pbx.rx(f"queue show {QUEUE}")
        assert await _presence(maria) == (Presence.SIGNED_OUT, "")  # read from QueueStatus

        await _say(live, "/signin", tr("en", SIGNED_IN, agent="Maria"))
        assert f"Maria ({INTERFACE}" in await live.pbx.rx(f"queue show {QUEUE}")


async def test_persistent_members_come_back_paused_after_a_restart(tmp_path: Path) -> None:
    configure = _no_static_members(persistent=True)
    async with live_stack(tmp_path, mailboxes=(), configure=configure) as live:
        maria = await _maria(live)
        await _say(live, "/signin", tr("en", SIGNED_IN, agent="Maria"))
        await _say(live, "/pause lunch", tr("en", PAUSED, agent="Maria", reason="Lunch"))
        await live.harness.wait_event(
            lambda e: e.get("Event") == "QueueMemberPause" and e.get("Paused") == "1"
        )

        await live.restart_pbx(signal.SIGTERM)
        shown = await live.pbx.rx(f"queue show {QUEUE}")
        assert f"Maria ({INTERFACE}" in shown and "paused" in shown
        assert await _presence(maria) == (Presence.PAUSED, "lunch")
