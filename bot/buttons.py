"""Reading the data of inline buttons (Telegram's callback_data).

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
