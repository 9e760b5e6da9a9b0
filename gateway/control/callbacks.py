"""The data of inline buttons (Telegram's callback_data): written and read here only.

We write it (`ack:<id>`, `callback:<id>`, `fwdme:<id>`, `book:<id>`, `bk:<id>:<epoch>`,
`scn:<scenario>`), but it comes back from the client, so anything may arrive: these
parsers never raise, and give None for whatever we would not have written.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# Our ids are INTEGER columns: 32-bit signed in PostgreSQL (SQLite allows 64).
MAX_ID = 2**31 - 1
# A slot offered by "Book a time" lies ahead; one pressed late is at most this old, and
# none is offered this far ahead.
SLOT_PAST = timedelta(days=366)
SLOT_AHEAD = timedelta(days=2 * 366)
_ID = re.compile(r"[1-9][0-9]{0,9}")  # ASCII only: str.isdigit() also takes "²" and "٣"
_EPOCH = re.compile(r"[1-9][0-9]{0,11}")


def parse_id(text: str) -> int | None:
    """A database id, or None."""
    if not _ID.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def parse_slot(text: str, now: datetime) -> datetime | None:
    """A slot's start from its Unix time, or None when it is no sane slot (checked as a
    number first: far-off values overflow datetime)."""
    if not _EPOCH.fullmatch(text):
        return None
    value = int(text)
    if not (now - SLOT_PAST).timestamp() <= value <= (now + SLOT_AHEAD).timestamp():
        return None
    return datetime.fromtimestamp(value, UTC)


# -- packing: the only place callback data is written ------------------------------------------
# Telegram allows 64 bytes; every string below holds DB ids and short words, so it survives
# a restart (nothing lives in memory) and stays far below the limit.

ACK = "ack"  # ack:<notification id>          "Got it" on an urgent notification
CALL_BACK = "callback"  # callback:<call id>   ring the subscriber's mobile, then the caller
FORWARD_TO_ME = "fwdme"  # fwdme:<call id>     forward now and move the ringing call
BOOK = "book"  # book:<call id>                show the nearest free slots
BOOK_SLOT = "bk"  # bk:<call id>:<unix time>   book the caller into that slot
SCENARIO = "scn"  # scn:<scenario>              the /scenario keyboard
PREFIXES = (ACK, CALL_BACK, FORWARD_TO_ME, BOOK, BOOK_SLOT, SCENARIO)


def pattern(prefix: str) -> str:
    """The regular expression a handler for `prefix` is registered with."""
    return rf"^{prefix}:"


def ack(notification_id: int) -> str:
    return f"{ACK}:{notification_id}"


def call_back(call_id: int) -> str:
    return f"{CALL_BACK}:{call_id}"


def forward_to_me(call_id: int) -> str:
    return f"{FORWARD_TO_ME}:{call_id}"


def book(call_id: int) -> str:
    return f"{BOOK}:{call_id}"


def book_slot(call_id: int, start: datetime) -> str:
    return f"{BOOK_SLOT}:{call_id}:{int(start.timestamp())}"


def scenario(value: str) -> str:
    return f"{SCENARIO}:{value}"
