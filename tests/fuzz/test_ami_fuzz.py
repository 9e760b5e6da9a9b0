"""The AMI adapter under arbitrary input: bytes into pbx/wire.FrameParser, frames with our
event names and random fields through pbx/translate.AmiTranslator into calls/tracker, as
Gateway.on_frame chains them. Nothing raises; malformed frames are counted, not fatal; the
parser finds the next frame after garbage; a call ends (and alerts) at most once."""

from __future__ import annotations

from collections import Counter

from hypothesis import example, given
from hypothesis import strategies as st

from gateway.calls.tracker import CallTracker
from gateway.pbx.translate import AmiTranslator, live_calls, queue_members
from gateway.pbx.wire import TERMINATOR, Frame, FrameParser
from models.events import CallSnapshot, LiveChannel
from tests.fuzz.budget import budget

TRANSLATOR = AmiTranslator("Frontdesk")
EVENTS = sorted(TRANSLATOR.event_names)
USER_EVENTS = ["FrontdeskCall", "FrontdeskCall", "FrontdeskFallback", "FrontdeskCallEnd", "", "x"]
# A call's life, more often than the rest, so that calls start, ring and end.
CALL_EVENTS = ["Newchannel", "DialBegin", "DialEnd", "Hangup", "UserEvent"]
BANNER = b"Asterisk Call Manager/7.0.3\r\n"
# The fields the translator reads, and a few it does not.
FIELDS = [
    *("Linkedid", "DestLinkedid", "Uniqueid", "DestUniqueid", "Channel", "DestChannel"),
    *("Exten", "Context", "CallerIDNum", "CallerIDName", "DialString", "DialStatus"),
    *("Cause", "Mailbox", "Waiting", "New", "Old", "DDI", "Scenario", "ForwardTo"),
    *("VMStatus", "Answered", "AnsweredBy", "Queue", "Interface", "Location", "MemberName"),
    *("Name", "Paused", "PausedReason", "Membership", "ActionID", "Response", "X-Other"),
]
# A few ids, so that random events meet the same calls and channels.
IDS = st.sampled_from(["1.1", "1.2", "2.1", "2.2", ""])
VALUES = st.one_of(
    IDS,
    st.sampled_from(["ANSWER", "NOANSWER", "SUCCESS", "agent", "forward", "1", "0", "yes"]),
    st.sampled_from(["9" * 5000, "-1", "²", "Local/agent7@agents-0000001a;1", "1001@default"]),
    st.text(max_size=30),
)


# Garbage, often longer than a frame may be (the parser then skips to its terminator).
GARBAGE = st.tuples(st.binary(max_size=200), st.integers(1, 20)).map(lambda t: t[0] * t[1])


def header_text(max_size: int) -> st.SearchStrategy[str]:
    """What can stand in an AMI header line (no CR or LF)."""
    return st.text(
        st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"),
        max_size=max_size,
    )


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    name = draw(st.sampled_from([*EVENTS, *CALL_EVENTS, *CALL_EVENTS, "VarSet"]))
    frame: Frame = {"Event": name}
    if name == "UserEvent":
        frame["UserEvent"] = draw(st.sampled_from(USER_EVENTS))
    if draw(st.integers(0, 9)):  # mostly of a few calls and channels, so that they meet
        frame["Linkedid"], frame["Uniqueid"] = draw(IDS), draw(IDS)
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=12, unique=True)):
        frame[key] = draw(VALUES if draw(st.booleans()) else header_text(20))
    return frame


LIVES = st.sampled_from(
    [
        {"Event": "UserEvent", "UserEvent": "FrontdeskCall"},
        {"Event": "UserEvent", "UserEvent": "FrontdeskCallEnd"},
        {"Event": "UserEvent", "UserEvent": "FrontdeskFallback"},
        *({"Event": name} for name in ("Newchannel", "DialBegin", "DialEnd", "Hangup")),
        *({"Event": name} for name in ("NewCallerid", "MessageWaiting")),
    ]
)


@st.composite
def call_frames(draw: st.DrawFn) -> Frame:
    """A frame of one of two calls' lives (the ids the tracker keys on), with random fields."""
    frame = {**draw(LIVES), "Linkedid": draw(st.sampled_from(["1.1", "2.1"]))}
    frame["Uniqueid"] = draw(st.sampled_from(["1.1", "1.2", "2.1"]))
    frame["DestUniqueid"] = draw(st.sampled_from(["1.2", "2.2"]))
    for key in draw(st.lists(st.sampled_from(FIELDS[6:]), max_size=4, unique=True)):
        frame[key] = draw(VALUES)
    return frame


def encode(frame: Frame) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in frame.items()).encode() + b"\r\n"


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    chunks, pos = [], 0
    for cut in cuts:
        chunks.append(data[pos : pos + cut])
        pos += cut
    return [*chunks, data[pos:]]


class Adapter:
    """Gateway.on_frame's chain without the gateway: parser, translator, tracker."""

    def __init__(self, max_frame_bytes: int = 65536) -> None:
        self.parser = FrameParser(max_frame_bytes, TRANSLATOR.event_names)
        self.snapshots: list[CallSnapshot] = []
        self.clock = 1_000.0
        self.tracker = CallTracker(self.snapshots.append, clock=lambda: self.clock)
        self.frames: list[Frame] = []

    def feed(self, data: bytes) -> None:
        for frame in self.parser.feed(data):
            assert "Event" in frame or "Response" in frame
            self.frames.append(frame)
            self.on_frame(frame)

    def on_frame(self, frame: Frame) -> None:
        self.clock += 1.0
        event = TRANSLATOR.translate(frame)
        if event is None:
            TRANSLATOR.member_event(frame)
            return
        self.tracker.handle(event)

    def check(self) -> None:
        """What must hold whatever came in: each call ended once, no ended call tracked."""
        ended = Counter(s.linkedid for s in self.snapshots if s.outcome is not None)
        assert all(n == 1 for n in ended.values()), ended
        assert not set(ended) & set(self.tracker.calls)
        for snap in self.snapshots:
            assert snap.linkedid


@budget(150)
@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(1, 600), max_size=10),
    banner=st.booleans(),
    small=st.booleans(),
)
@example(data=b"Event: Hangup\r\n" + b"x" * 300, cuts=[100], banner=True, small=True)
def test_arbitrary_bytes_never_raise_and_are_counted(
    data: bytes, cuts: list[int], banner: bool, small: bool
) -> None:
    adapter = Adapter(max_frame_bytes=256 if small else 65536)
    for chunk in chunked((BANNER if banner else b"") + data, cuts):
        adapter.feed(chunk)
    adapter.check()
    stats = adapter.parser.stats
    # Every terminated frame is either yielded or counted as dropped.
    assert stats.frames >= len(adapter.frames)
    assert stats.frames == len(adapter.frames) + stats.dropped_noise + stats.malformed
    assert len(adapter.parser._buf) <= adapter.parser.max_frame_bytes


@budget(150)
@given(
    garbage=GARBAGE,
    cuts=st.lists(st.integers(1, 500), max_size=8),
    frame=frames(),
    small=st.booleans(),
)
@example(garbage=b"Asterisk Call Manager/", cuts=[], frame={"Event": "Hangup"}, small=False)
@example(garbage=b"\r\n\r", cuts=[3], frame={"Event": "Hangup"}, small=True)
@example(garbage=b"x" * 600, cuts=[200, 200], frame={"Event": "Hangup"}, small=True)
def test_a_valid_frame_after_garbage_is_still_parsed(
    garbage: bytes, cuts: list[int], frame: Frame, small: bool
) -> None:
    """Resynchronisation: whatever came before, a terminator and then a frame we want gives
    that very frame (over-long garbage is skipped whole, up to its terminator)."""
    frame = {k: v for k, v in frame.items() if k != "ActionID"}
    frame["Event"] = "Hangup"
    wanted = encode(frame)
    adapter = Adapter(max_frame_bytes=256 if small else 65536)
    if len(wanted) > adapter.parser.max_frame_bytes:
        frame, wanted = {"Event": "Hangup"}, encode({"Event": "Hangup"})
    for chunk in chunked(BANNER + garbage + TERMINATOR + wanted, cuts):
        adapter.feed(chunk)
    assert adapter.frames and adapter.frames[-1] == frame
    adapter.check()


@budget(100)
@given(
    stream=st.lists(frames() | call_frames() | call_frames(), min_size=8, max_size=60),
    cuts=st.lists(st.integers(1, 400), max_size=10),
    expire=st.booleans(),
)
def test_random_frames_with_our_event_names_never_raise(
    stream: list[Frame], cuts: list[int], expire: bool
) -> None:
    adapter = Adapter()
    data = BANNER + b"".join(encode(f) for f in stream)
    for chunk in chunked(data, cuts):
        adapter.feed(chunk)
    adapter.check()
    if expire:
        adapter.clock += 10_000
        adapter.tracker.expire(3600)
        assert adapter.tracker.calls == {}
        adapter.check()


@budget(60)
@given(
    stream=st.lists(frames() | call_frames() | call_frames(), min_size=4, max_size=40),
    rows=st.lists(frames(), max_size=10),
    listed=st.lists(st.tuples(IDS, IDS), max_size=6),
)
def test_reconciling_with_any_listing_never_raises(
    stream: list[Frame], rows: list[Frame], listed: list[tuple[str, str]]
) -> None:
    """After a login the PBX's listings (CoreShowChannel, QueueStatus rows) may say
    anything; reconcile takes what they say and ends each call at most once."""
    adapter = Adapter()
    for frame in stream:
        adapter.on_frame(frame)
    before = adapter.tracker.channel_view()
    for frame in rows[: len(rows) // 2]:
        adapter.on_frame(frame)
    live = live_calls(
        [*rows, *({"Event": "CoreShowChannel", "Linkedid": a, "Uniqueid": b} for a, b in listed)]
    )
    assert all(isinstance(c, LiveChannel) for cs in live.values() for c in cs)
    queue_members(rows)
    adapter.tracker.reconcile(live, before)
    adapter.tracker.reconcile({})
    assert adapter.tracker.calls == {}
    adapter.check()
    adapter.tracker.unrouted()
