"""The "message" kind: a text taken for the subscriber (by an agent or the operator, CLI
`message`), and the generic notice the gateway itself sends (the SMS-lock notice).

It lives in delivery, below the features, because several of them send it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from gateway.delivery.render import Draft, caller_label, from_lines, local_time, register
from locales import tr
from models.vocab import Kind


@dataclass(frozen=True, kw_only=True)
class MessagePayload:
    subscriber: str
    at: datetime
    timezone: str
    text: str
    caller_number: str = ""  # empty: "a withheld number" (and the gateway's own notices)
    caller_name: str = ""
    contact_name: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "subscriber": self.subscriber,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "contact_name": self.contact_name,
            "at": self.at.isoformat(),
            "timezone": self.timezone,
            "text": self.text,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            subscriber=data["subscriber"],
            at=datetime.fromisoformat(data["at"]),
            timezone=data["timezone"],
            text=data.get("text", ""),
            caller_number=data.get("caller_number", ""),
            caller_name=data.get("caller_name", ""),
            contact_name=data.get("contact_name"),
        )


def render_message(lang: str, p: MessagePayload) -> Draft:
    caller = caller_label(lang, p.caller_number, p.caller_name, p.contact_name)
    return from_lines(
        tr(lang, "Message for {subscriber}", subscriber=p.subscriber),
        tr(lang, "From: {caller}", caller=caller),
        tr(lang, "Taken at: {time}", time=local_time(lang, p.timezone, p.at)),
        "",
        p.text,
    )


register(Kind.MESSAGE, MessagePayload, render_message)
