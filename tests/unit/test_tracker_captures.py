"""The three real Asterisk 22 captures, replayed through parser, translator and tracker."""

from __future__ import annotations

import pytest

from gateway.calls.tracker import CallTracker
from gateway.pbx.translate import AmiTranslator
from gateway.pbx.wire import FrameParser
from models.events import CallOutcome, CallSnapshot, CallStatus


def replay(data: bytes, chunk: int | None = None) -> list[CallSnapshot]:
    # The captures come from a test dialplan whose UserEvents were named Gateway*.
    translator = AmiTranslator(userevent_prefix="Gateway")
    parser = FrameParser(wanted_events=translator.event_names)
    seen: list[CallSnapshot] = []
    tracker = CallTracker(seen.append)
    step = chunk or len(data)
    for i in range(0, len(data), step):
        for frame in parser.feed(data[i : i + step]):
            event = translator.translate(frame)
            if event is not None:
                tracker.handle(event)
    assert not tracker.calls, "every call in a capture ends"
    return seen


EXPECTED = {
    "agent": (CallStatus.ANSWERED, CallOutcome.ANSWERED, "John Smith", "+15555551234"),
    "voicemail": (CallStatus.NOT_ANSWERED, CallOutcome.VOICEMAIL, "John Smith", "+15555551234"),
    "forward": (CallStatus.NOT_ANSWERED, CallOutcome.VOICEMAIL, "Jane Doe", "+442079460000"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("chunk", [None, 1, 7, 1500])
def test_capture_gives_status_and_outcome(
    capture_bytes: dict[str, bytes], name: str, chunk: int | None
) -> None:
    snapshots = replay(capture_bytes[name], chunk)
    final = [s for s in snapshots if s.ended]
    assert len(final) == 1, "one outcome per call, however many legs"
    status, outcome, caller_name, caller_number = EXPECTED[name]
    call = final[0]
    assert (call.status, call.outcome) == (status, outcome)
    assert (call.ddi, call.caller_name, call.caller_number) == (
        "2100001",
        caller_name,
        caller_number,
    )


def test_agent_capture_passes_through_live_statuses(capture_bytes: dict[str, bytes]) -> None:
    statuses = [s.status for s in replay(capture_bytes["agent"])]
    assert statuses[0] in (CallStatus.NOT_STARTED, CallStatus.WAITING)
    assert CallStatus.IN_PROGRESS in statuses
    assert statuses[-1] is CallStatus.ANSWERED


def test_forward_capture_shows_forwarded_then_fallback(capture_bytes: dict[str, bytes]) -> None:
    snapshots = replay(capture_bytes["forward"])
    statuses = [s.status for s in snapshots]
    assert CallStatus.FORWARDED in statuses
    assert snapshots[-1].fell_back and snapshots[-1].forward_to == "+447700900123"
