"""The "missed_call" kind: its payload (as stored in Notification.payload), its text and
the buttons about the call ("Call back", "Forward calls to me", "Book a time")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from gateway.control import callbacks
from gateway.delivery.render import Draft, caller_label, from_lines, local_time, register
from locales import tr
from models.vocab import Kind
from notifiers.base import Button


@dataclass(frozen=True, kw_only=True)
class MissedCallPayload:
    subscriber: str
    caller_number: str  # E.164, or empty when withheld
    caller_name: str
    contact_name: str | None
    at: datetime
    timezone: str
    ddi: str
    call_id: int | None = None  # None: no call could be tied (no call buttons)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "subscriber": self.subscriber,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "contact_name": self.contact_name,
            "at": self.at.isoformat(),
            "timezone": self.timezone,
            "ddi": self.ddi,
        }
        if self.call_id is not None:
            data["call_id"] = self.call_id
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            subscriber=data["subscriber"],
            caller_number=data.get("caller_number", ""),
            caller_name=data.get("caller_name", ""),
            contact_name=data.get("contact_name"),
            at=datetime.fromisoformat(data["at"]),
            timezone=data["timezone"],
            ddi=data.get("ddi", ""),
            call_id=data.get("call_id"),
        )


def call_buttons(lang: str, call_id: int | None, can_call_back: bool) -> list[list[Button]]:
    """What the subscriber can do about a call from the message (none without a call)."""
    if call_id is None:
        return []
    row = [Button(tr(lang, "Forward calls to me"), callbacks.forward_to_me(call_id))]
    if can_call_back:
        row.insert(0, Button(tr(lang, "Call back"), callbacks.call_back(call_id)))
    return [row, [Button(tr(lang, "Book a time"), callbacks.book(call_id))]]


def render_missed_call(lang: str, p: MissedCallPayload) -> Draft:
    caller = caller_label(lang, p.caller_number, p.caller_name, p.contact_name)
    when = local_time(lang, p.timezone, p.at)
    return from_lines(
        tr(lang, "Missed call for {subscriber}", subscriber=p.subscriber),
        tr(lang, "From: {caller}", caller=caller),
        tr(lang, "At: {time} (line {ddi})", time=when, ddi=p.ddi),
        buttons=call_buttons(lang, p.call_id, bool(p.caller_number)),
    )


register(Kind.MISSED_CALL, MissedCallPayload, render_missed_call)
