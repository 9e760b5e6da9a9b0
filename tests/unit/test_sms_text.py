"""Text to SMS parts and back: alphabets, sizes, concatenation headers, cutting."""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, datetime

import pytest
from babel.dates import format_datetime
from hypothesis import given, settings
from hypothesis import strategies as st

from notifiers.sms import text as sms_text
from notifiers.sms.text import GSM, UCS2, Concat, Reassembler, ReferencePool

GREEK = "Καλησπέρα σας, σας καλεί η Μαρία Παπαδοπούλου για το ραντεβού της Τρίτης. "
EMOJI = "😀"  # outside the BMP: a surrogate pair in UTF-16


def texts(parts: list[sms_text.SmsPart]) -> str:
    return sms_text.join(parts[0].data_coding, [p.payload for p in parts])


# -- alphabet ------------------------------------------------------------------------------


# 3GPP TS 23.038 section 6.2.1 (Unicode's GSM0338.TXT): the default alphabet's septets
# whose character is not the ASCII character of the same value, as Unicode code points...
SPEC_BASIC = {
    0x00: 0x0040, 0x01: 0x00A3, 0x02: 0x0024, 0x03: 0x00A5, 0x04: 0x00E8, 0x05: 0x00E9,
    0x06: 0x00F9, 0x07: 0x00EC, 0x08: 0x00F2, 0x09: 0x00C7, 0x0A: 0x000A, 0x0B: 0x00D8,
    0x0C: 0x00F8, 0x0D: 0x000D, 0x0E: 0x00C5, 0x0F: 0x00E5, 0x10: 0x0394, 0x11: 0x005F,
    0x12: 0x03A6, 0x13: 0x0393, 0x14: 0x039B, 0x15: 0x03A9, 0x16: 0x03A0, 0x17: 0x03A8,
    0x18: 0x03A3, 0x19: 0x0398, 0x1A: 0x039E, 0x1C: 0x00C6, 0x1D: 0x00E6, 0x1E: 0x00DF,
    0x1F: 0x00C9, 0x24: 0x00A4, 0x40: 0x00A1, 0x5B: 0x00C4, 0x5C: 0x00D6, 0x5D: 0x00D1,
    0x5E: 0x00DC, 0x5F: 0x00A7, 0x60: 0x00BF, 0x7B: 0x00E4, 0x7C: 0x00F6, 0x7D: 0x00F1,
    0x7E: 0x00FC, 0x7F: 0x00E0,
}  # fmt: skip
# ... the rest is ASCII (space to ?, except $ and ¤; A-Z; a-z); 0x1B is the escape ...
SPEC_ASCII = [*range(0x20, 0x24), *range(0x25, 0x40), *range(0x41, 0x5B), *range(0x61, 0x7B)]
# ... and the extension table behind it (section 6.2.1.1).
SPEC_EXTENSION = {
    0x0A: 0x000C, 0x14: 0x005E, 0x28: 0x007B, 0x29: 0x007D, 0x2F: 0x005C, 0x3C: 0x005B,
    0x3D: 0x007E, 0x3E: 0x005D, 0x40: 0x007C, 0x65: 0x20AC,
}  # fmt: skip


def test_the_spec_tables_cover_every_septet() -> None:
    assert sorted([*SPEC_BASIC, *SPEC_ASCII, 0x1B]) == list(range(128))


@pytest.mark.parametrize(
    ("septet", "char"),
    [(code, chr(point)) for code, point in SPEC_BASIC.items()]
    + [(code, chr(code)) for code in SPEC_ASCII],
)
def test_each_character_has_its_gsm_03_38_septet(septet: int, char: str) -> None:
    assert sms_text.encode_gsm(char) == bytes([septet])
    assert sms_text.decode_gsm(bytes([septet])) == char
    assert sms_text.units(char, GSM) == 1


@pytest.mark.parametrize(
    ("septet", "char"), [(code, chr(point)) for code, point in SPEC_EXTENSION.items()]
)
def test_each_extension_character_is_the_escape_and_its_septet(septet: int, char: str) -> None:
    assert sms_text.encode_gsm(char) == bytes([0x1B, septet])
    assert sms_text.decode_gsm(bytes([0x1B, septet])) == char
    assert sms_text.units(char, GSM) == 2


def test_the_alphabet_is_exactly_the_spec_tables() -> None:
    spec = {chr(p) for p in SPEC_BASIC.values()} | set(map(chr, SPEC_ASCII))
    spec |= {chr(p) for p in SPEC_EXTENSION.values()}
    assert {
        c for c in map(chr, range(0x3000)) if sms_text.is_gsm(c) and c == sms_text.as_sent(c)
    } == spec
    alphabet = "".join(sorted(spec))
    assert sms_text.decode_gsm(sms_text.encode_gsm(alphabet)) == alphabet


def test_extension_characters_cost_two_septets() -> None:
    assert sms_text.encode_gsm("€") == b"\x1b\x65"
    assert sms_text.units("a€[", GSM) == 5
    assert sms_text.units("α" + EMOJI, UCS2) == 3


def test_characters_outside_the_alphabet_choose_ucs2() -> None:
    assert sms_text.data_coding_for("Hello @ £5, 10€ {ok}") == GSM
    assert sms_text.data_coding_for("Καλησπέρα") == UCS2  # lower-case Greek is not GSM
    assert sms_text.data_coding_for("ΔΦΓΛΩΠΨΣΘΞ") == GSM  # these capitals are
    assert sms_text.data_coding_for("✓") == UCS2
    assert sms_text.data_coding_for("\x1b") == UCS2  # the escape itself is no character
    with pytest.raises(ValueError):
        sms_text.encode_gsm("ω")


def test_decoding_is_lenient() -> None:
    assert sms_text.decode_gsm(b"a\x1b") == "a"  # a dangling escape
    assert sms_text.decode_gsm(b"\x1b\x1b") == " "  # a national table we do not know
    assert sms_text.decode_gsm(b"\x80") == "\ufffd"
    assert sms_text.decode(0x03, "café".encode("latin-1")) == "café"
    assert sms_text.decode(0x01, b"plain") == "plain"
    assert sms_text.decode(UCS2, b"\x00a\x00") == "a\ufffd"  # odd length
    assert sms_text.decode(0xF0, sms_text.encode_gsm("€")) == "€"  # GSM DCS, class 0


@pytest.mark.parametrize(
    ("typographic", "sent"),
    [
        ("3:04\u202fPM", "3:04 PM"),  # Babel's English times
        ("10\u00a0000\u2009m", "10 000 m"),
        ("it\u2019s \u201cfine\u201d", 'it\'s "fine"'),
        ("\u00abYes\u00bb", '"Yes"'),
        ("9\u201317 \u2014 \u22121", "9-17 - -1"),
        ("wait\u2026", "wait..."),
        ("a\tb", "a b"),
    ],
)
def test_typographic_characters_go_as_their_gsm_spelling(typographic: str, sent: str) -> None:
    assert sms_text.data_coding_for(typographic) == GSM
    assert sms_text.units(typographic, GSM) == len(sent)
    assert sms_text.decode_gsm(sms_text.encode_gsm(typographic)) == sent
    assert sms_text.as_sent(typographic) == sent


def test_every_gsm_spelling_is_in_the_basic_alphabet() -> None:
    spellings = "".join(sms_text.GSM_EQUIVALENTS.values())
    assert set(spellings) <= set(sms_text.GSM_BASIC) - {"\x1b"}
    assert not set(sms_text.GSM_EQUIVALENTS) & set(sms_text.GSM_BASIC)


def test_a_ucs2_text_keeps_its_typographic_characters() -> None:
    text = "Καλησπέρα\u202f\u00abναι\u00bb\u2026"
    [part] = sms_text.split(text)
    assert part.data_coding == UCS2 and texts([part]) == text == sms_text.as_sent(text)


# -- sizes ---------------------------------------------------------------------------------


def test_160_gsm_characters_are_one_part_161_are_two() -> None:
    [single] = sms_text.split("a" * 160)
    assert (single.data_coding, single.concat, single.esm_class) == (GSM, None, 0)
    assert single.short_message == b"a" * 160  # unpacked: one septet per octet
    assert single.air_octets == 140
    parts = sms_text.split("a" * 161, reference=7)
    assert [len(p.payload) for p in parts] == [153, 8]
    assert sms_text.count_parts("a" * 161) == 2


def test_an_english_time_leaves_160_characters_in_one_gsm_part() -> None:
    when = format_datetime(datetime(2025, 3, 4, 15, 4, tzinfo=UTC), format="short", locale="en")
    assert "\u202f" in when  # what Babel writes, not in GSM 03.38
    text = f"Missed call at {when}. " + "x" * 140
    text = text[:160]
    [single] = sms_text.split(text)
    assert (single.data_coding, single.concat, len(single.payload)) == (GSM, None, 160)


def test_70_ucs2_characters_are_one_part_71_are_two() -> None:
    assert sms_text.count_parts("α" * 70) == 1
    assert sms_text.count_parts("α" * 71) == 2
    assert [len(p.payload) for p in sms_text.split("α" * 71, 1)] == [134, 8]


def test_300_greek_characters_are_five_ucs2_parts_that_decode_back() -> None:
    text = (GREEK * 5)[:300]
    parts = sms_text.split(text, reference=42)
    assert len(parts) == math.ceil(300 / 67) == 5
    assert {p.data_coding for p in parts} == {UCS2}
    assert all(len(p.short_message) <= 140 for p in parts)
    assert texts(parts) == text


def test_concatenated_parts_carry_a_udh_with_ie_0x00() -> None:
    parts = sms_text.split("α" * 100, reference=0xAB)
    assert [p.udh for p in parts] == [b"\x05\x00\x03\xab\x02\x01", b"\x05\x00\x03\xab\x02\x02"]
    assert {p.esm_class for p in parts} == {sms_text.UDHI}
    assert parts[0].short_message.startswith(parts[0].udh)


def test_sixteen_bit_references_use_ie_0x08() -> None:
    header = Concat(0x1234, 3, 2).header()
    assert header == b"\x06\x08\x04\x12\x34\x03\x02"
    assert sms_text.parse_user_data(header + b"xy", sms_text.UDHI) == (Concat(0x1234, 3, 2), b"xy")


def test_an_escape_pair_is_never_split_across_parts() -> None:
    text = "a" * 152 + "€" + "b" * 10
    parts = sms_text.split(text, reference=1)
    assert [len(p.payload) for p in parts] == [152, 12]  # 153 would end on a bare escape
    assert not parts[0].payload.endswith(b"\x1b")
    assert texts(parts) == text


def test_a_surrogate_pair_is_never_split_across_parts() -> None:
    text = "α" * 66 + EMOJI + "β" * 10
    parts = sms_text.split(text, reference=1)
    assert [len(p.payload) // 2 for p in parts] == [66, 12]
    assert texts(parts) == text


def test_several_parts_need_a_reference() -> None:
    with pytest.raises(ValueError, match="reference"):
        sms_text.split("a" * 161)


def test_an_empty_text_is_one_empty_part() -> None:
    assert sms_text.split("") == [sms_text.SmsPart(GSM, b"")]


def test_a_lone_surrogate_is_replaced_not_fatal() -> None:
    [part] = sms_text.split("caf\udce9")  # "café" decoded with surrogateescape
    assert texts([part]) == "caf\ufffd"


# -- user data headers ---------------------------------------------------------------------


def test_user_data_without_udhi_is_all_payload() -> None:
    assert sms_text.parse_user_data(b"\x05\x00\x03\x01\x02\x01ab", 0) == (
        None,
        b"\x05\x00\x03\x01\x02\x01ab",
    )


def test_other_information_elements_are_skipped() -> None:
    # A port-addressing IE (0x05) before the concatenation IE.
    udh = b"\x0b\x05\x04\x0b\x84\x23\xf0\x00\x03\x09\x02\x01"
    assert sms_text.parse_user_data(udh + b"hi", sms_text.UDHI) == (Concat(9, 2, 1), b"hi")


@pytest.mark.parametrize(
    "udh",
    [
        b"\x05\x00\x03\x01\x00\x01",  # zero parts
        b"\x05\x00\x03\x01\x02\x03",  # part 3 of 2
        b"\x05\x00\x05\x01\x02\x01",  # IE longer than the header
        b"\x09\x00\x03\x01\x02\x01",  # header longer than the message
    ],
)
def test_a_malformed_concatenation_header_is_ignored(udh: bytes) -> None:
    concat, _ = sms_text.parse_user_data(udh, sms_text.UDHI)
    assert concat is None


# -- cutting -------------------------------------------------------------------------------


def test_a_text_that_fits_is_not_cut() -> None:
    text = "a" * 153 * 3
    assert sms_text.cut(text, 3) == text


def test_a_long_gsm_text_is_cut_on_a_word_with_three_dots() -> None:
    text = " ".join(f"word{i}" for i in range(400))
    cut = sms_text.cut(text, 2)
    assert cut.endswith("...") and not cut.endswith(" ...")
    assert sms_text.is_gsm(cut)  # "…" would have made it UCS-2 and halved it
    assert sms_text.count_parts(cut) == 2
    head = cut.removesuffix("...")
    assert text.startswith(head) and text[len(head)] == " "  # a whole word
    assert len(cut) > 2 * 153 - 15  # and not much shorter than the room


def test_a_long_greek_text_is_cut_with_an_ellipsis() -> None:
    text = GREEK * 20
    cut = sms_text.cut(text, 3)
    assert cut.endswith("…")
    assert sms_text.count_parts(cut) == 3
    assert text.startswith(cut.removesuffix("…"))


def test_text_without_spaces_is_cut_at_the_limit() -> None:
    text = "電話" * 200
    cut = sms_text.cut(text, 1)
    assert cut == text[:69] + "…"


def test_cutting_keeps_emoji_and_combining_marks_whole() -> None:
    family = "👨\u200d👩\u200d👧"
    text = "α" * 60 + family * 10
    cut = sms_text.cut(text, 1)
    assert sms_text.count_parts(cut) == 1
    assert not cut.removesuffix("…").endswith("\u200d")
    accented = "q\u0301" * 100  # q + combining acute: no composed form
    assert not sms_text.cut(accented, 1).removesuffix("…").endswith("q")


def test_decomposed_accents_are_composed_for_gsm() -> None:
    assert sms_text.cut("Cafe\u0301", 1) == "Café"
    assert sms_text.data_coding_for(sms_text.cut("Cafe\u0301", 1)) == GSM


def test_six_parts_of_english_with_typography_hold_918_characters() -> None:
    text = "Call back at 3:04\u202fPM \u2013 \u201curgent\u201d\u2026 " * 60
    cut = sms_text.cut(text, 6)
    assert sms_text.data_coding_for(cut) == GSM and sms_text.count_parts(cut) == 6
    assert sms_text.units(cut, GSM) > 6 * 153 - sms_text.WORD_WINDOW  # UCS-2: 402 at most


def test_trailing_blanks_do_not_count_against_the_room() -> None:
    assert sms_text.cut("a" * 150 + " " * 20, 1) == "a" * 150 + "..."


def test_a_gsm_head_of_a_ucs2_text_gets_three_dots() -> None:
    text = "a" * 300 + "ω"  # the only non-GSM character is past the cut
    cut = sms_text.cut(text, 1)
    assert cut == "a" * 157 + "..."


# -- references and reassembly -------------------------------------------------------------


def test_a_reference_is_not_reused_while_in_use() -> None:
    pool = ReferencePool(size=4)
    taken = [pool.acquire() for _ in range(4)]
    assert sorted(taken) == [0, 1, 2, 3]
    with pytest.raises(LookupError):
        pool.acquire()
    pool.release(2)
    assert pool.acquire() == 2
    assert pool.in_use == 4


def test_free_references_go_least_recently_used_first() -> None:
    pool = ReferencePool(size=3, start=1)
    assert pool.acquire() == 1
    pool.release(1)
    assert [pool.acquire(), pool.acquire(), pool.acquire()] == [2, 0, 1]


def test_parts_reassemble_in_any_order_once() -> None:
    parts = sms_text.split(GREEK * 3, reference=5)
    reassembler = Reassembler()
    results = []
    for part in [parts[2], parts[0], parts[0], parts[1], parts[3]]:
        assert part.concat is not None
        results.append(reassembler.add("k", part.concat, part.data_coding, part.payload, 0.0))
    assert results[:-1] == [None, None, None, None]
    assert results[-1] == GREEK * 3
    assert len(reassembler) == 0


def test_incomplete_messages_expire() -> None:
    reassembler = Reassembler(max_age=10)
    assert reassembler.add("k", Concat(1, 2, 1), GSM, b"a", now=0.0) is None
    assert reassembler.add("other", Concat(1, 2, 1), GSM, b"b", now=11.0) is None
    assert len(reassembler) == 1  # the first one is gone
    assert reassembler.add("k", Concat(1, 2, 2), GSM, b"c", now=12.0) is None


def test_joining_bytes_first_mends_pairs_split_by_other_senders() -> None:
    # smpplib.gsm.make_parts and some handsets split UTF-16 by octets.
    encoded = ("α" * 66 + EMOJI).encode("utf-16-be")
    assert sms_text.join(UCS2, [encoded[:134], encoded[134:]]) == "α" * 66 + EMOJI
    assert sms_text.join(GSM, [b"a\x1b", b"\x65"]) == "a€"


# -- properties ----------------------------------------------------------------------------

any_text = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=["Cs"]),  # lone surrogates: see the test above
        st.sampled_from("€[]{}~^|\\\f@£$èΔ ωже電😀👍🏽\u200d\u202f\u00a0…«»–’\t"),
        st.sampled_from("abc def"),
    ),
    max_size=700,
)


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_any_text_round_trips_within_the_limits(text: str) -> None:
    parts = sms_text.split(text, reference=200)
    assert len(parts) == sms_text.count_parts(text)
    assert texts(parts) == sms_text.as_sent(text)
    for part in parts:
        assert part.air_octets <= sms_text.AIR_OCTETS
        if part.data_coding == UCS2:
            assert len(part.short_message) <= 140
        else:
            assert len(part.short_message) <= 160  # septets unpacked, as SMPP carries them
        assert not part.payload.endswith(b"\x1b") or part.data_coding == UCS2
        concat, payload = sms_text.parse_user_data(part.short_message, part.esm_class)
        assert (concat, payload) == (part.concat, part.payload)


@settings(max_examples=200, deadline=None)
@given(any_text, st.integers(min_value=1, max_value=4))
def test_any_cut_fits_and_is_a_head_of_the_text(text: str, max_parts: int) -> None:
    cut = sms_text.cut(text, max_parts)
    assert sms_text.count_parts(cut) <= max_parts
    text = unicodedata.normalize("NFC", text)
    if sms_text.count_parts(text) <= max_parts:
        assert cut == text
    else:
        head = cut.removesuffix("...") if cut.endswith("...") else cut.removesuffix("…")
        assert text.startswith(head) and head != cut
