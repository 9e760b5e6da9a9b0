"""A call exists only once our dialplan's FrontdeskCall is seen: floods of malformed AMI
frames and the gateway's own call-back Originate never become calls in progress."""

from __future__ import annotations

import random

from gateway.calls.tracker import PENDING_MAX, PENDING_TTL, CallTracker
from gateway.pbx.translate import AmiTranslator
from models.events import CallRouted, CallSnapshot, ChannelClosed, ChannelOpened

Frame = dict[str, str]
EVENTS = ("Newchannel", "DialBegin", "DialEnd", "Hangup", "NewCallerid", "Newstate")


class Clock:
    def __init__(self) -> None:
        self.now = 1_795_339_700.0

    def __call__(self) -> float:
        return self.now


def _random_frame(rng: random.Random) -> Frame:
    """A frame of a channel event with random (often missing or junk) headers."""
    linkedid = f"{rng.randrange(10**9)}.{rng.randrange(1000)}"
    frame: Frame = {"Event": rng.choice(EVENTS)}
    fields = {
        "Linkedid": linkedid,
        "Uniqueid": rng.choice([linkedid, f"{linkedid}1", ""]),
        "Channel": rng.choice(["PJSIP/trunk-0001", "", "\x00garbage", "Local/x@y;1"]),
        "CallerIDNum": rng.choice(["+302101234567", "", "<unknown>"]),
        "CallerIDName": rng.choice(["Μαρία", "", "\ufffd" * 40]),
        "Exten": rng.choice(["2100001", "s", ""]),
        "Context": rng.choice(["from-pstn", "frontdesk-callback", ""]),
        "DestUniqueid": f"{linkedid}2",
        "DialStatus": rng.choice(["ANSWER", "CANCEL", ""]),
    }
    for key, value in fields.items():
        if rng.random() < 0.85:  # malformed: headers missing at random
            frame[key] = value
    return frame


def _tracker() -> tuple[CallTracker, list[CallSnapshot], Clock]:
    seen: list[CallSnapshot] = []
    clock = Clock()
    return CallTracker(seen.append, clock=clock), seen, clock


def test_a_flood_of_frames_without_frontdeskcall_makes_no_call() -> None:
    tracker, seen, clock = _tracker()
    translator = AmiTranslator()
    rng = random.Random(18)
    for _ in range(5_000):
        event = translator.translate(_random_frame(rng))
        if event is not None:
            tracker.handle(event)
        clock.now += 0.01
    assert tracker.calls == {}  # /healthz calls_in_progress counts these: 0
    assert seen == []  # nothing was reported as a call either
    assert len(tracker.pending) <= PENDING_MAX  # bounded memory
    clock.now += PENDING_TTL + 1
    tracker.pending.take("any")  # expiry runs on use
    assert len(tracker.pending) == 0


def test_the_call_back_originate_is_not_a_call() -> None:
    """Our own Originate into frontdesk-callback: channels, a dial, hangups, no FrontdeskCall."""
    tracker, seen, _ = _tracker()
    lid = "1795339700.40"
    first, second = "Local/+306944000001@frontdesk-callback-00000001;1", "PJSIP/trunk-00000009"
    tracker.handle(ChannelOpened(lid, lid, first, "+306944000001", "frontdesk-callback", "", ""))
    tracker.handle(ChannelOpened(lid, f"{lid}1", second, "+306944000001", "from-internal", "", ""))
    tracker.handle(ChannelClosed(lid, f"{lid}1", "16"))
    tracker.handle(ChannelClosed(lid, lid, "16"))
    assert tracker.calls == {} and seen == []
    assert len(tracker.pending) == 0  # all its channels closed: forgotten at once


def test_a_real_call_keeps_what_came_before_its_frontdeskcall() -> None:
    tracker, seen, clock = _tracker()
    lid, leg = "1795339700.7", "1795339700.8"
    opened_at = clock.now
    tracker.handle(ChannelOpened(lid, lid, "PJSIP/trunk-0001", "s", "from-pstn", "+3021", "Μαρία"))
    tracker.handle(ChannelOpened(lid, leg, "Local/x@y;1", "s", "from-pstn", "", ""))
    assert tracker.calls == {}  # not a call yet, not in progress
    clock.now += 1
    tracker.handle(CallRouted(lid, "2100001", "agent", "1001@default", "", "+3021", "<unknown>"))
    call = tracker.calls[lid]
    assert (call.caller_name, call.caller_number, call.ddi) == ("Μαρία", "+3021", "2100001")
    assert call.channels == {lid, leg} and call.started_at == opened_at
    assert seen[-1].caller_name == "Μαρία"
    tracker.handle(ChannelClosed(lid, leg, "16"))
    tracker.handle(ChannelClosed(lid, lid, "16"))  # both channels known: the call ends
    assert tracker.calls == {} and seen[-1].ended


def test_the_pending_table_forgets_the_least_recent() -> None:
    tracker, _, _ = _tracker()
    for n in range(PENDING_MAX + 10):
        lid = f"1.{n}"
        tracker.handle(ChannelOpened(lid, lid, "PJSIP/x", "s", "c", "", ""))
    assert len(tracker.pending) == PENDING_MAX
    assert tracker.pending.take("1.0") is None
    assert tracker.pending.take(f"1.{PENDING_MAX + 9}") is not None
