"""The whole-text scans of notifiers/sms/text.py (sets and translate tables, for speed)
agree with the character-by-character rules they replace."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifiers.sms import text as sms_text
from notifiers.sms.text import GSM, UCS2

ALPHABET = sms_text.GSM_BASIC.replace("\x1b", "") + "".join(sms_text.GSM_EXTENSION)
texts = st.text(
    st.one_of(
        st.sampled_from(ALPHABET + "".join(sms_text.GSM_EQUIVALENTS)),
        st.characters(exclude_categories=("Cs",)),
        st.sampled_from("😀\U0001f3fb\x1b"),
    ),
    max_size=400,
)


def septets_by_hand(ch: str) -> list[int]:
    """23.038 by the table: the basic code, escape + extension code, or the spelling's."""
    if ch in sms_text.GSM_EXTENSION:
        return [sms_text.ESCAPE, sms_text.GSM_EXTENSION[ch]]
    if ch in sms_text.GSM_EQUIVALENTS:
        return [sms_text.GSM_BASIC.index(c) for c in sms_text.GSM_EQUIVALENTS[ch]]
    return [sms_text.GSM_BASIC.index(ch)]


@settings(max_examples=500, deadline=None)
@given(text=texts)
def test_scans_agree_with_the_rules_character_by_character(text: str) -> None:
    gsm = all(sms_text.gsm_septets(ch) for ch in text)
    assert sms_text.is_gsm(text) == gsm
    assert sms_text.units(text, UCS2) == len(text.encode("utf-16-be")) // 2
    if gsm:
        assert sms_text.units(text, GSM) == sum(map(sms_text.gsm_septets, text))
        assert sms_text.encode_gsm(text) == bytes(s for ch in text for s in septets_by_hand(ch))
    else:
        with pytest.raises(ValueError, match=r"not in the GSM 03\.38 alphabet"):
            sms_text.encode_gsm(text)


def test_the_escape_septet_alone_is_not_a_character() -> None:
    assert not sms_text.is_gsm("a\x1b") and sms_text.units("", UCS2) == 0
    with pytest.raises(ValueError, match=r"'\\x1b'"):
        sms_text.encode_gsm("a\x1b")
