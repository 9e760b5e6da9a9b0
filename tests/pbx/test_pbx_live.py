"""The shipped dialplan and the gateway against a real Asterisk 22 (marker `pbx`).

Each test starts its own private Asterisk with the include unchanged, the real gateway and
bot connected over AMI, and the sandbox Bot API for Telegram. Calls are placed as a
carrier would deliver them (Local channels stand in for SIP); agents and outside numbers
answer, ring out or reject as each test sets them. Ring times are the dialplan's
minimum (5 s) so the suite stays short; everything else is real time on a real PBX.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from models.db import Call as CallRow
from models.db import Subscriber
from models.events import CallOutcome
from models.vocab import Scenario
from sandbox.ami_harness import Frame, received
from sandbox.telegram_api import Call as BotCall
from tests.pbx_stack import Line, LiveStack, live_stack

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
    [end] = await live.heard("FrontdeskCallEnd", "2100001")
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
    [end] = await live.heard("FrontdeskCallEnd", "2100002")
    assert end["DialStatus"] == "CANCEL"
    assert len(await live.notices("missed_call", line)) == 1
    alert = await live.bot.wait_for(lambda c: c in live.missed_alerts(502), timeout=30)
    assert "Иван Петров" in alert.params["text"]
    assert len(live.missed_alerts(502)) == 1


async def test_no_answer_goes_to_voicemail_and_the_spoken_message_is_transcribed(
    tmp_path: Path,
) -> None:
    async with live_stack(tmp_path, mailboxes=("2100004",), engine="whisper") as live:
        line = await live.line("2100004", chat=504)
        await live.astdb("ringtime/2100004", str(RING))

        await live.harness.call(
            "2100004", MARIA, patience=60, wait=live.greeting("2100004") + 0.5, say="test-speech"
        )
        [call] = await live.call_ended("2100004")
        assert call.outcome is CallOutcome.VOICEMAIL
        [fallback] = await live.heard("FrontdeskFallback", "2100004")
        assert fallback["DialStatus"] == "NOANSWER"

        voice = await live.bot.wait_for(lambda c: c in live.voice_notes(504), timeout=120)
        caption = voice.params["caption"].lower()
        assert "ill" in caption and "amiable" in caption  # what the caller said
        assert await live.notices("missed_call", line) == []


async def test_hanging_up_during_the_greeting_is_one_missed_call(live: LiveStack) -> None:
    line = await live.line("2100001", chat=501)
    await live.astdb("scenario/2100001", "voicemail")

    await live.harness.call("2100001", MARIA, patience=30, wait=1.0)
    [call] = await live.call_ended("2100001")

    [end] = await live.heard("FrontdeskCallEnd", "2100001")
    assert end["VMStatus"] != "SUCCESS"
    assert call.outcome is CallOutcome.ABANDONED
    assert len(await live.notices("missed_call", line)) == 1
    assert await live.notices("voicemail", line) == []


async def test_a_silent_message_is_one_missed_call_and_no_voicemail(live: LiveStack) -> None:
    line = await live.line("2100001", chat=501)
    await live.astdb("scenario/2100001", "voicemail")

    # Hangs up right after the beep: app_voicemail (minsecs=0) keeps a 0-second message.
    await live.harness.call("2100001", MARIA, patience=30, wait=live.greeting("2100001") + 0.2)
    await live.call_ended("2100001")
    [end] = await live.heard("FrontdeskCallEnd", "2100001")
    assert end["VMStatus"] == "SUCCESS"

    alert = await live.bot.wait_for(lambda c: c in live.missed_alerts(501), timeout=30)
    assert "+302101234567" in alert.params["text"]
    await live.runtime.gateway.voicemail.scan()  # the spool holds nothing more to tell
    assert len(await live.notices("missed_call", line)) == 1
    assert await live.notices("voicemail", line) == []
    assert live.voice_notes(501) == []


async def test_forward_answered_by_the_mobile(live: LiveStack) -> None:
    line = await live.line("2100001", chat=501, mobile="+306900000001")
    await live.astdb("ringtime/2100001", str(RING))
    await live.astdb("scenario/2100001", "forward")
    await live.astdb("forward/2100001", "+306900000001")

    await live.harness.call("2100001", LI, patience=30)
    [call] = await live.call_ended("2100001")

    assert call.outcome is CallOutcome.FORWARDED
    assert call.answered_by == "+306900000001"
    assert call.caller_name == "李小龙"
    [end] = await live.heard("FrontdeskCallEnd", "2100001")
    assert (end["Answered"], end["AnsweredBy"]) == ("forward", "+306900000001")
    assert live.user_events("FrontdeskFallback", "2100001") == []
    assert await live.notices("missed_call", line) == []


async def test_forward_unanswered_rings_the_agents_for_the_ring_time_then_voicemail(
    live: LiveStack,
) -> None:
    line = await live.line("2100001", chat=501, mobile="+306900000002")
    await live.astdb("ringtime/2100001", str(RING))
    await live.astdb("scenario/2100001", "forward")
    await live.number("+306900000002", "ring")

    await live.harness.call("2100001", MARIA, patience=60, wait=1.0)
    [call] = await live.call_ended("2100001")

    forward, agents = await live.heard("FrontdeskFallback", "2100001")
    assert forward["DialStatus"] == agents["DialStatus"] == "NOANSWER"
    # The mobile rang its ring time; then the agents rang theirs (RINGTIME, which Dial
    # overwrites, would have made it 0 s or endless).
    rang = received(agents) - received(forward)
    assert RING - 0.5 <= rang <= RING + 2.5, rang
    agent_legs = [
        e
        for e in live.harness.events
        if e.get("Event") == "DialBegin" and "@test-agents" in e.get("DestChannel", "")
    ]
    assert agent_legs and all(received(forward) <= received(e) for e in agent_legs)
    voicemail = await live.harness.wait_event(
        lambda e: e.get("Event") == "Newexten" and e.get("Application") == "VoiceMail"
    )
    assert received(voicemail) >= received(agents)
    assert call.outcome is CallOutcome.ABANDONED  # hung up in the greeting: a missed call
    assert len(await live.notices("missed_call", line)) == 1


async def test_forward_rejected_falls_back_to_the_agents_at_once(live: LiveStack) -> None:
    line = await live.line("2100001", chat=501, mobile="+306900000003")
    await live.astdb("ringtime/2100001", str(RING))
    await live.astdb("scenario/2100001", "forward")
    await live.number("+306900000003", "reject")
    await live.agents(agent1="answer")

    await live.harness.call("2100001", IVAN, patience=60)
    [call] = await live.call_ended("2100001")

    [first] = await live.heard("FrontdeskFallback", "2100001")
    assert first["DialStatus"] == "BUSY"
    [start] = await live.heard("FrontdeskCall", "2100001")
    assert received(first) - received(start) < 2.0  # no ringing out a busy mobile
    assert call.outcome is CallOutcome.ANSWERED
    assert call.answered_by == "Local/agent1@test-agents"
    assert await live.notices("missed_call", line) == []


async def test_closed_with_a_message_delivers_the_voicemail(live: LiveStack) -> None:
    line = await live.line("2100001", chat=501)
    await live.astdb("scenario/2100001", "closed")
    await live.harness.call(
        "2100001", IVAN, patience=30, wait=live.closed_greeting() + 0.5, say="test-speech"
    )
    [call] = await live.call_ended("2100001")

    assert call.outcome is CallOutcome.VOICEMAIL
    [end] = await live.heard("FrontdeskCallEnd", "2100001")
    assert (end["Scenario"], end["VMStatus"]) == ("closed", "SUCCESS")
    await live.bot.wait_for(lambda c: c in live.voice_notes(501), timeout=60)
    assert len(await live.notices("voicemail", line)) == 1
    assert await live.notices("missed_call", line) == []


async def test_closed_without_a_message_is_one_missed_call(live: LiveStack) -> None:
    line = await live.line("2100001", chat=501)
    await live.astdb("scenario/2100001", "closed")

    await live.harness.call("2100001", IVAN, patience=30, wait=1.0)
    [call] = await live.call_ended("2100001")

    assert call.outcome is CallOutcome.ABANDONED
    assert len(await live.notices("missed_call", line)) == 1
    assert await live.notices("voicemail", line) == []


async def test_a_scenario_switched_from_the_bot_is_what_the_next_call_gets(
    live: LiveStack,
) -> None:
    await live.line("2100001", chat=501)
    live.bot.inject_message(501, "voicemail")
    await live.bot.wait_for(lambda c: c in live.bot.messages_to(501)[1:], timeout=30)
    assert await live.pbx.db_get("frontdesk", "scenario/2100001") == "voicemail"

    await live.harness.call("2100001", MARIA, patience=30, wait=1.0)
    routed = await live.user_event("FrontdeskCall", "2100001")
    assert routed["Scenario"] == "voicemail"
    [call] = await live.call_ended("2100001")
    assert call.scenario == "voicemail" and call.legs_rung == 0  # no agent rang


async def test_call_back_rings_the_mobile_then_bridges_the_caller(live: LiveStack) -> None:
    await live.line("2100001", chat=501, mobile="+306900000001")
    await live.harness.call("2100001", MARIA, patience=2)
    alert = await live.bot.wait_for(lambda c: c in live.missed_alerts(501), timeout=30)
    await live.pbx.db_put("test", "talk", "4")

    data = _button(alert, "callback:")
    live.bot.inject_callback(501, alert.result["message_id"], data)

    def bridged() -> bool:
        members: dict[str, set[str]] = {}
        for e in live.harness.events:
            if e.get("Event") == "BridgeEnter":
                members.setdefault(e["BridgeUniqueid"], set()).add(e["Channel"])
        return any(
            any("+306900000001@" in c for c in chans) and any("+302101234567@" in c for c in chans)
            for chans in members.values()
        )

    await live.harness.wait_until(bridged, timeout=30)


async def test_forward_calls_to_me_moves_the_ringing_call_to_the_mobile(live: LiveStack) -> None:
    line = await live.line("2100001", chat=501, mobile="+306900000001")
    await live.harness.call("2100001", MARIA, patience=2)  # a missed call: its alert has the button
    alert = await live.bot.wait_for(lambda c: c in live.missed_alerts(501), timeout=30)
    await live.astdb("ringtime/2100001", "60")

    await live.harness.call("2100001", IVAN, patience=60)
    await live.harness.wait_event(lambda e: _rings_agent(e, "+74951234567"))
    live.bot.inject_callback(501, alert.result["message_id"], _button(alert, "fwdme:"))

    _, second = await live.call_ended("2100001", count=2)
    assert second.caller_number == "+74951234567"
    assert second.outcome is CallOutcome.FORWARDED
    assert second.answered_by == "+306900000001"
    end = (await live.heard("FrontdeskCallEnd", "2100001", ends=2))[-1]
    assert (end["DialStatus"], end["Answered"]) == ("ANSWER", "forward")
    assert await live.pbx.db_get("frontdesk", "scenario/2100001") == "forward"
    assert len(await live.notices("missed_call", line)) == 1  # the first call only


def _button(message: BotCall, prefix: str) -> str:
    rows = message.params["reply_markup"]["inline_keyboard"]
    return next(
        b["callback_data"] for row in rows for b in row if b["callback_data"].startswith(prefix)
    )


def _rings_agent(event: Frame, caller: str) -> bool:
    return (
        event.get("Event") == "DialBegin"
        and "@test-agents" in event.get("DestChannel", "")
        and event.get("CallerIDNum") == caller
    )


async def _ringing_and_talking(live: LiveStack) -> tuple[Line, Line]:
    """Line A's caller talks to agent1; line B's caller waits while agent2 rings."""
    a = await live.line("2100001", chat=501)
    b = await live.line("2100002", chat=502, mobile="+306900000002")
    await live.astdb("ringtime/2100001", "60")
    await live.astdb("ringtime/2100002", "60")
    await live.pbx.db_put("test", "talk", "120")
    await live.agents(agent1="answer", agent2="ring")
    await live.harness.call("2100001", MARIA, patience=60, wait=120)
    await live.harness.wait_event(lambda e: e.get("Event") == "AgentConnect")
    await live.harness.call("2100002", IVAN, patience=120)
    await live.harness.wait_event(lambda e: _rings_agent(e, "+74951234567"))
    assert len(live.runtime.gateway.tracker.calls) == 2
    return a, b


@pytest.mark.parametrize("crash", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_asterisk_dies_mid_call_and_comes_back(
    live: LiveStack, crash: signal.Signals
) -> None:
    a, b = await _ringing_and_talking(live)

    async def operator_closes_line_a() -> None:
        # While the PBX is down: the next login must tell Asterisk.
        await Subscriber.filter(id=a.subscriber_id).update(scenario=Scenario.CLOSED)

    await live.restart_pbx(crash, while_down=operator_closes_line_a)

    # No stale call: both ended. The one an agent answered stays answered; the one that
    # was ringing cannot be known (the caller may have been cut off or given up).
    [talked] = await live.call_ended("2100001")
    [waited] = await live.call_ended("2100002")
    assert talked.outcome is CallOutcome.ANSWERED
    assert talked.answered_by == "Local/agent1@test-agents"
    assert waited.outcome in {CallOutcome.UNKNOWN, CallOutcome.ABANDONED}
    health = await live.runtime.gateway.health()
    assert health["calls_in_progress"] == 0 and health["ami_connected"]
    # No false alert: nothing for the answered call; for the ringing one at most the
    # single alert its own hangup report justifies, never a second.
    assert await live.notices("missed_call", a) == []
    expected = 1 if waited.outcome is CallOutcome.ABANDONED else 0
    assert len(await live.notices("missed_call", b)) == expected
    # AstDB re-asserted from the database on the new login.
    assert await live.pbx.db_get("frontdesk", "scenario/2100001") == "closed"

    # Nothing lost after it: the next call is tracked and alerted as usual.
    await live.agents(agent1="ring")
    await live.harness.call("2100002", LI, patience=2)
    calls = await live.call_ended("2100002", count=2)
    assert calls[1].outcome is CallOutcome.ABANDONED
    assert len(await live.notices("missed_call", b)) == expected + 1


async def test_after_a_crash_a_reused_channel_name_is_never_moved_for_another_line(
    live: LiveStack,
) -> None:
    a = await live.line("2100001", chat=501, mobile="+306900000001")
    b = await live.line("2100002", chat=502, mobile="+306900000002")
    await live.astdb("ringtime/2100001", "60")
    await live.astdb("ringtime/2100002", "60")
    await live.harness.call("2100001", MARIA, patience=120)  # the PBX's first call
    # One whole ring attempt (4 s) first: Asterisk's Uniqueids are <epoch s>.<counter>, and
    # the counter restarts too, so a new call within the same second would also reuse
    # the dead call's Linkedid; that is not what this test is about.
    await live.harness.wait_event(
        lambda e: (
            e.get("Event") == "DialEnd"
            and e.get("DialStatus") == "NOANSWER"
            and e.get("CallerIDNum") == "+302101234567"
        )
    )
    [dead] = [c for c in live.runtime.gateway.tracker.calls.values()]
    await live.restart_pbx(signal.SIGKILL)

    # After the restart Asterisk numbers channels from 0 again: B's caller gets the name
    # A's dead call had.
    await live.harness.call("2100002", IVAN, patience=8)
    routed = await live.user_event("FrontdeskCall", "2100002")
    assert routed["Channel"] == dead.caller_channel
    await live.harness.wait_event(lambda e: _rings_agent(e, "+74951234567"))

    # A asks for its calls on its mobile: B's caller must stay where it is.
    row = await CallRow.get(linkedid=dead.linkedid)
    live.bot.inject_callback(501, 1, f"fwdme:{row.id}")
    await live.bot.wait_for(lambda c: c.method == "answerCallbackQuery", timeout=30)
    [b_call] = await live.call_ended("2100002")
    assert b_call.outcome is CallOutcome.ABANDONED and not b_call.moved_to
    moved = [e for e in live.harness.events if e.get("Context") == "frontdesk-moved"]
    assert moved == []
    assert len(await live.notices("missed_call", b)) == 1
    assert await live.notices("missed_call", a) == []


async def test_a_burst_of_twenty_concurrent_calls_each_gets_its_outcome(live: LiveStack) -> None:
    forwarded = await live.line("2100001", chat=501, mobile="+306900000001")
    missed = await live.line("2100002", chat=502)
    messages = await live.line("2100003", chat=503)
    await live.astdb("scenario/2100001", "forward")
    await live.astdb("ringtime/2100002", "60")
    await live.astdb("scenario/2100003", "voicemail")
    speak = live.greeting("2100003") + 0.5

    await asyncio.gather(
        *(live.harness.call("2100001", LI, patience=30) for _ in range(7)),
        *(live.harness.call("2100002", IVAN, patience=4) for _ in range(7)),
        *(
            live.harness.call("2100003", MARIA, patience=30, wait=speak, say="test-speech")
            for _ in range(6)
        ),
    )
    ends = {
        ddi: await live.call_ended(ddi, count=n, timeout=90)
        for ddi, n in (("2100001", 7), ("2100002", 7), ("2100003", 6))
    }
    assert {c.outcome for c in ends["2100001"]} == {CallOutcome.FORWARDED}
    assert {c.outcome for c in ends["2100002"]} == {CallOutcome.ABANDONED}
    assert {c.outcome for c in ends["2100003"]} == {CallOutcome.VOICEMAIL}
    assert len({c.linkedid for calls in ends.values() for c in calls}) == 20
    assert await live.notices("missed_call", forwarded) == []
    assert len(await live.notices("missed_call", missed)) == 7
    assert await live.notices("missed_call", messages) == []
    await live.bot.wait_until(lambda: len(live.voice_notes(503)) == 6, timeout=90)
    assert len(await live.notices("voicemail", messages)) == 6
