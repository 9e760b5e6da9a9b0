"""What subscribers read: localised text and buttons for each kind of notification."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from locales import tr
from notifiers.base import Button


def caller_label(lang: str, number: str, cli_name: str, contact_name: str | None) -> str:
    if contact_name:
        return f"{contact_name} ({number})"
    if not number:
        return tr(lang, "a withheld number")
    return f"{cli_name} ({number})" if cli_name else number


def local_time(lang: str, timezone: str, at: datetime) -> str:
    return format_datetime(at, format="short", tzinfo=ZoneInfo(timezone), locale=lang)


def missed_call(*, lang: str, subscriber: str, caller: str, when: str, ddi: str) -> str:
    return "\n".join(
        [
            tr(lang, "Missed call for {subscriber}", subscriber=subscriber),
            tr(lang, "From: {caller}", caller=caller),
            tr(lang, "At: {time} (line {ddi})", time=when, ddi=ddi),
        ]
    )


def call_buttons(lang: str, call_id: int, can_call_back: bool) -> list[list[Button]]:
    row = [Button(tr(lang, "Forward calls to me"), f"fwdme:{call_id}")]
    if can_call_back:
        row.insert(0, Button(tr(lang, "Call back"), f"callback:{call_id}"))
    return [row]
