"""What an end customer's reply to a reminder says: confirm, cancel or nothing we know.

Loose on form (case, accents, punctuation, spaces: "Όχι!", " YES ", "да."), strict on
content: the whole reply must be one of the words, so that any other text goes on to be
handled as any SMS from that number is.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum


class Answer(StrEnum):
    CONFIRM = "confirm"
    CANCEL = "cancel"


# Compared after _fold (no accents, case-folded): "όχι" is "οχι", "ΝΑΙ" is "ναι".
_WORDS: dict[str, Answer] = {
    **dict.fromkeys(("1", "yes", "y", "ναι", "nai", "да", "da", "是", "是的"), Answer.CONFIRM),
    **dict.fromkeys(
        ("2", "no", "n", "οχι", "oxi", "ochi", "нет", "net", "否", "不"), Answer.CANCEL
    ),
}


def _fold(text: str) -> str:
    """Without accents, punctuation, symbols or spaces, case-folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if unicodedata.category(c)[0] not in "MPSZC").casefold()


def read_answer(text: str) -> Answer | None:
    """The answer a reply gives, or None when it is not one."""
    return _WORDS.get(_fold(text))
