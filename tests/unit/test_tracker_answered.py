"""Who answered: the agent's queue member interface or the forward number, and the
dialplan's CallEnd (Answered, AnsweredBy) as the last word on it."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from gateway.calls.tracker import CallTracker
from gateway.pbx.translate import AmiTranslator, member_interface
from models.events import CallFinished, CallOutcome, CallSnapshot, CallStatus
from sandbox.call_scripts import CallFactory

Frame = dict[str, str]
MOBILE = "+306944000001"


class Replay:
    """Call-script frames through the translator into a tracker; keeps every snapshot."""

    def __init__(self) -> None:
        self.translator = AmiTranslator()
        self.seen: list[CallSnapshot] = []
        self.tracker = CallTracker(self.seen.append)

    def play(self, frames: Iterable[Frame]) -> None:
        for frame in frames:
            event = self.translator.translate(frame)
            if event is not None:
                self.tracker.handle(event)

    def final(self, linkedid: str) -> CallSnapshot:
        [end] = [s for s in self.seen if s.linkedid == linkedid and s.ended]
        return end


def without_call_end_fields(frames: list[Frame]) -> list[Frame]:
    """The same call as a dialplan older than Answered/AnsweredBy reports it."""
    return [
        {k: v for k, v in f.items() if k not in ("Answered", "AnsweredBy")}
        if f.get("UserEvent") == "FrontdeskCallEnd"
        else f
        for f in frames
    ]


@pytest.mark.parametrize(
    ("channel", "interface"),
    [
        ("Local/agent7@agents-0000001a;1", "Local/agent7@agents"),
        ("Local/agent1@test-agents-00000003;2", "Local/agent1@test-agents"),
        ("PJSIP/207-0000000a", "PJSIP/207"),
        ("PJSIP/agent-101-0000000b", "PJSIP/agent-101"),
        ("PJSIP/207", "PJSIP/207"),
        ("", ""),
    ],
)
def test_member_interface_strips_the_channel_sequence(channel: str, interface: str) -> None:
    assert member_interface(channel) == interface


@pytest.mark.parametrize("fields", [True, False], ids=["callend-fields", "older-dialplan"])
def test_an_agent_answer_names_the_member_interface(fields: bool) -> None:
    frames = CallFactory(answered_fields=fields).agent_answered(
        "2100001", "+302101234567", "Μαρία", agents=["101", "102"], answered_by_index=1
    )
    replay = Replay()
    replay.play(frames)
    call = replay.final(frames[0]["Linkedid"])
    assert (call.outcome, call.answered_via, call.answered_by) == (
        CallOutcome.ANSWERED,
        "agent",
        "PJSIP/agent102",  # not a Uniqueid
    )
    in_progress = [s for s in replay.seen if s.status is CallStatus.IN_PROGRESS]
    assert in_progress and in_progress[0].answered_by == "PJSIP/agent102"


@pytest.mark.parametrize("fields", [True, False], ids=["callend-fields", "older-dialplan"])
def test_a_forward_answer_names_the_number(fields: bool) -> None:
    frames = CallFactory(answered_fields=fields).forward_answered(
        "2100001", "+302101234567", "Μαρία", forward_to=MOBILE
    )
    replay = Replay()
    replay.play(frames)
    call = replay.final(frames[0]["Linkedid"])
    assert (call.outcome, call.status, call.answered_by) == (
        CallOutcome.FORWARDED,
        CallStatus.FORWARDED,
        MOBILE,
    )


def _call_end(frames: list[Frame], **fields: str) -> list[Frame]:
    """The frames with the CallEnd's fields replaced (what another dialplan would say)."""
    return [{**f, **fields} if f.get("UserEvent") == "FrontdeskCallEnd" else f for f in frames]


def test_callend_answered_forward_wins_over_an_agent_leg() -> None:
    """A leg we read as an agent's (the move not known to the tracker) answered; the
    dialplan says it was the forward: the outcome is forwarded, by the number it names."""
    ringing, after = CallFactory().moved_answered("2100001", "+302101234567", "Ρ", mobile=MOBILE)
    replay = Replay()
    replay.play(ringing + after)  # nobody told the tracker of the move
    call = replay.final(ringing[0]["Linkedid"])
    assert (call.outcome, call.status) == (CallOutcome.FORWARDED, CallStatus.FORWARDED)
    assert (call.answered_via, call.answered_by) == ("forward", MOBILE)
    talking = [s for s in replay.seen if s.answered_at is not None and not s.ended]
    assert talking[0].answered_via == "agent"  # what the legs alone said


def test_an_older_dialplan_keeps_the_leg_reading() -> None:
    ringing, after = CallFactory(answered_fields=False).moved_answered(
        "2100001", "+302101234567", "Ρ", mobile=MOBILE
    )
    replay = Replay()
    replay.play(ringing + after)
    call = replay.final(ringing[0]["Linkedid"])
    assert (call.outcome, call.answered_by) == (CallOutcome.ANSWERED, "PJSIP/pstn")


def test_callend_answered_by_overrides_and_empty_keeps_ours() -> None:
    frames = CallFactory().agent_answered("2100001", "+302101234567", "Μαρία")
    replay = Replay()
    replay.play(_call_end(frames, AnsweredBy="Local/agent9@agents"))
    assert replay.final(frames[0]["Linkedid"]).answered_by == "Local/agent9@agents"

    frames = CallFactory(start_epoch=1795400000).agent_answered("2100001", "+3021", "Μ")
    replay.play(_call_end(frames, AnsweredBy=""))
    assert replay.final(frames[0]["Linkedid"]).answered_by == "PJSIP/agent101"


def test_callend_saying_nobody_answered_is_authoritative() -> None:
    frames = CallFactory().agent_answered("2100001", "+302101234567", "Μαρία")
    replay = Replay()
    replay.play(_call_end(frames, Answered="", AnsweredBy="", DialStatus="CANCEL"))
    call = replay.final(frames[0]["Linkedid"])
    assert (call.outcome, call.answered_at, call.answered_by) == (CallOutcome.ABANDONED, None, "")


def test_an_unknown_answered_value_keeps_the_leg_reading() -> None:
    frames = CallFactory().agent_answered("2100001", "+302101234567", "Μαρία")
    replay = Replay()
    replay.play(_call_end(frames, Answered="robot", AnsweredBy="x"))
    call = replay.final(frames[0]["Linkedid"])
    assert (call.outcome, call.answered_by) == (CallOutcome.ANSWERED, "PJSIP/agent101")


def test_callend_answer_without_any_dialend_seen() -> None:
    """The DialEnd was lost in a reconnect: the CallEnd alone says who answered."""
    replay = Replay()
    frames = CallFactory().agent_answered("2100001", "+302101234567", "Μαρία")
    replay.play(f for f in frames if f["Event"] != "DialEnd")
    call = replay.final(frames[0]["Linkedid"])
    assert (call.outcome, call.answered_by) == (CallOutcome.ANSWERED, "PJSIP/agent101")
    assert call.answered_at is not None


def test_an_older_dialplan_without_dialend_seen_still_tells_a_forward() -> None:
    replay = Replay()
    factory = CallFactory(answered_fields=False)
    frames = factory.forward_answered("2100001", "+302101234567", "Μαρία", forward_to=MOBILE)
    replay.play(f for f in frames if f["Event"] != "DialEnd")
    call = replay.final(frames[0]["Linkedid"])
    assert (call.outcome, call.answered_by) == (CallOutcome.FORWARDED, MOBILE)

    fell_back = factory.forward_no_answer("2100001", "+3021", "Νίκος", forward_to=MOBILE)
    frames = [  # the agents took it after the mobile rang out
        {**f, "DialStatus": "ANSWER"} if f.get("UserEvent") == "FrontdeskCallEnd" else f
        for f in fell_back
    ]
    replay.play(frames)
    assert replay.final(frames[0]["Linkedid"]).outcome is CallOutcome.ANSWERED


def test_translator_reads_the_new_fields_and_their_absence() -> None:
    translator = AmiTranslator()
    end = {
        "Event": "UserEvent",
        "UserEvent": "FrontdeskCallEnd",
        "Linkedid": "1.1",
        "DDI": "2100001",
        "DialStatus": "ANSWER",
    }
    new = translator.translate({**end, "Answered": "forward", "AnsweredBy": MOBILE})
    old = translator.translate(end)
    assert isinstance(new, CallFinished) and isinstance(old, CallFinished)
    assert (new.answered, new.answered_by) == ("forward", MOBILE)
    assert (old.answered, old.answered_by) == (None, "")


# -- "Forward calls to me": the tracker told of the move ---------------------------------


def test_a_moved_call_answered_on_the_mobile_is_forwarded_live_and_at_the_end() -> None:
    ringing, after = CallFactory(answered_fields=False).moved_answered(
        "2100001", "+302101234567", "Ρ", mobile=MOBILE
    )
    replay = Replay()
    replay.play(ringing)
    linkedid = ringing[0]["Linkedid"]
    replay.tracker.moved(linkedid, MOBILE)
    assert replay.seen[-1].status is CallStatus.FORWARDED and replay.seen[-1].moved_to == MOBILE
    replay.play(after)
    answered = next(s for s in replay.seen if s.answered_at is not None)
    assert (answered.status, answered.answered_by) == (CallStatus.FORWARDED, MOBILE)
    call = replay.final(linkedid)
    assert (call.outcome, call.answered_by) == (CallOutcome.FORWARDED, MOBILE)


def test_a_move_told_after_the_mobile_leg_began_still_counts() -> None:
    """The Redirect's answer may be read after the DialBegin it caused."""
    ringing, after = CallFactory(answered_fields=False).moved_answered(
        "2100001", "+302101234567", "Ρ", mobile=MOBILE
    )
    answer = next(i for i, f in enumerate(after) if f.get("DialStatus") == "ANSWER")
    replay = Replay()
    linkedid = ringing[0]["Linkedid"]
    replay.play(ringing + after[: answer + 1])  # the mobile already answered, as an "agent"
    replay.tracker.moved(linkedid, MOBILE)
    assert (replay.seen[-1].answered_via, replay.seen[-1].status) == (
        "forward",
        CallStatus.FORWARDED,
    )
    replay.play(after[answer + 1 :])
    assert replay.final(linkedid).outcome is CallOutcome.FORWARDED
