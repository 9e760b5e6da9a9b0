"""The shipped dialplan and the gateway against a real Asterisk 22 (marker `pbx`).

Each test starts its own private Asterisk with the include unchanged, the real gateway and
bot connected over AMI, and the sandbox Bot API for Telegram. Calls are placed as a
carrier would deliver them (Local channels stand in for SIP); agents and outside numbers
answer, ring out or reject as each test sets them. Ring times are the dialplan's
minimum (5 s) so the suite stays short; everything else is real time on a real PBX.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from models.events import CallOutcome
from tests.pbx_stack import LiveStack, live_stack

pytestmark = pytest.mark.pbx

MARIA = '"Μαρία Νίκου" <+302101234567>'
IVAN = '"Иван Петров" <+74951234567>'
LI = '"李小龙" <+8613800138000>'
RING = 5  # seconds: ringtime/<ddi> for every line here, the dialplan's minimum


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveStack]:
    async with live_stack(tmp_path, mailboxes=("2100001", "2100002", "2100003")) as stack:
        yield stack


async def test_an_agent_answers_and_nobody_is_alerted(live: LiveStack) -> None:
    line = await live.line("2100001", chat=501)
    await live.astdb("ringtime/2100001", str(RING))
    await live.agents(agent1="answer", agent2="ring")

    await live.harness.call("2100001", MARIA, patience=30)
    [call] = await live.call_ended("2100001")

    assert call.outcome is CallOutcome.ANSWERED
    assert call.answered_by == "Local/agent1@test-agents"  # who, not a Uniqueid
    assert (call.caller_name, call.caller_number) == ("Μαρία Νίκου", "+302101234567")
    [end] = live.user_events("FrontdeskCallEnd", "2100001")
    assert (end["DialStatus"], end["Answered"]) == ("ANSWER", "agent")
    assert await live.notices("missed_call", line) == []
    row = await live.call_row(call.linkedid)
    assert row.answered_by == "Local/agent1@test-agents"


async def test_a_caller_giving_up_while_two_agents_ring_gives_one_alert(live: LiveStack) -> None:
    line = await live.line("2100002", chat=502, language="ru")
    await live.astdb("ringtime/2100002", "30")

    await live.harness.call("2100002", IVAN, patience=3)
    [call] = await live.call_ended("2100002")

    assert call.outcome is CallOutcome.ABANDONED
    assert call.legs_rung >= 2  # both agents rang
    [end] = live.user_events("FrontdeskCallEnd", "2100002")
    assert end["DialStatus"] == "CANCEL"
    [notice] = await live.notices("missed_call", line)
    alert = await live.bot.wait_for(lambda c: c in live.missed_alerts(502), timeout=30)
    assert "Иван Петров" in alert.params["text"]
    assert len(live.missed_alerts(502)) == 1
