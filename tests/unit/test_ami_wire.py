"""AMI framing: malformed input is skipped and counted; multibyte names survive any split."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.pbx.wire import FrameParser

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def frame(**headers: str) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"


def feed_all(parser: FrameParser, chunks: list[bytes]) -> list[dict[str, str]]:
    return [f for chunk in chunks for f in parser.feed(chunk)]


def test_banner_then_frames() -> None:
    p = FrameParser()
    out = feed_all(p, [BANNER + frame(Response="Success", ActionID="1") + frame(Event="Hangup")])
    assert p.banner == "Asterisk Call Manager/11.0.0"
    assert [f.get("Event") or f.get("Response") for f in out] == ["Success", "Hangup"]


def test_empty_values_and_colons_in_values() -> None:
    p = FrameParser()
    out = feed_all(p, [b'Event: Cdr\r\nUserField:\r\nCallerID: "A: B" <1>\r\n\r\n'])
    assert out == [{"Event": "Cdr", "UserField": "", "CallerID": '"A: B" <1>'}]


def test_a_header_without_the_space_splits_at_its_first_colon() -> None:
    """The fast path splits at ": "; a line without it keeps the first-colon rule."""
    p = FrameParser()
    out = feed_all(p, [b"Event: Cdr\r\nKey:value: x\r\nBare:v\r\nEmpty: \r\n\r\n"])
    assert out == [{"Event": "Cdr", "Key": "value: x", "Bare": "v", "Empty": ""}]


def test_garbage_and_frames_without_event_are_skipped() -> None:
    p = FrameParser()
    out = feed_all(p, [BANNER, b"\x00\xffgarbage\r\n\r\n", frame(Foo="bar"), frame(Event="Hangup")])
    assert out == [{"Event": "Hangup"}]
    assert p.stats.malformed == 2


def test_megabyte_header_is_skipped_and_stream_continues() -> None:
    p = FrameParser(max_frame_bytes=65536)
    huge = b"Event: Newchannel\r\nCallerIDName: " + b"A" * 1_000_000 + b"\r\n\r\n"
    chunks = [BANNER] + [huge[i : i + 8192] for i in range(0, len(huge), 8192)]
    out = feed_all(p, [*chunks, frame(Event="Hangup", Uniqueid="1.1")])
    assert out == [{"Event": "Hangup", "Uniqueid": "1.1"}]
    assert p.stats.oversized == 1
    assert len(p._buf) < 65536


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    p = FrameParser()
    out = feed_all(p, [b"Event: Newchannel\r\nCallerIDName: \xce\x9c\xff\xfe\r\n\r\n"])
    assert out[0]["CallerIDName"].startswith("Μ") and "\ufffd" in out[0]["CallerIDName"]
    assert p.stats.bad_utf8 == 1


def test_noise_is_dropped_before_decoding() -> None:
    p = FrameParser(wanted_events={"Hangup"})
    out = feed_all(
        p, [frame(Event="VarSet", Value="x"), frame(Event="Hangup"), frame(Response="Success")]
    )
    assert [f.get("Event", f.get("Response")) for f in out] == ["Hangup", "Success"]
    assert p.stats.dropped_noise == 1


NAMES = ["Μαρία Κωνσταντίνου", "Дмитрий Иванов", "王芳", "Zoë 🙂"]


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=40))
def test_multibyte_names_survive_any_chunking(cuts: list[int]) -> None:
    stream = BANNER + b"".join(frame(Event="Newchannel", CallerIDName=n) for n in NAMES)
    chunks, pos = [], 0
    for cut in cuts:
        chunks.append(stream[pos : pos + cut])
        pos += cut
    chunks.append(stream[pos:])
    assert [f["CallerIDName"] for f in feed_all(FrameParser(), chunks)] == NAMES


def test_every_single_byte_split() -> None:
    stream = BANNER + b"".join(frame(Event="Newchannel", CallerIDName=n) for n in NAMES)
    for cut in range(1, len(stream)):
        p = FrameParser()
        names = [f["CallerIDName"] for f in feed_all(p, [stream[:cut], stream[cut:]])]
        assert names == NAMES, cut
