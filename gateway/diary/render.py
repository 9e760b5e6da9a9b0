"""The "appointment" kind: the confirmation of a booking (with its .ics invite), its
payload (as stored in Notification.payload) and its text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from gateway.delivery.render import Draft, from_lines, local_time, register
from locales import tr
from models.vocab import Kind


@dataclass(frozen=True, kw_only=True)
class AppointmentPayload:
    subscriber: str
    at: datetime  # when the appointment starts
    timezone: str
    text: str  # who and what: "<name> — <note>"
    attachments: tuple[dict[str, str], ...] = ()  # the .ics invite (delivery.attachments.inline)

    def to_json(self) -> dict[str, Any]:
        return {
            "subscriber": self.subscriber,
            "at": self.at.isoformat(),
            "timezone": self.timezone,
            "text": self.text,
            "attachments": list(self.attachments),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            subscriber=data["subscriber"],
            at=datetime.fromisoformat(data["at"]),
            timezone=data["timezone"],
            text=data.get("text", ""),
            attachments=tuple(data.get("attachments", [])),
        )


def render_appointment(lang: str, p: AppointmentPayload) -> Draft:
    return from_lines(
        tr(lang, "Appointment for {subscriber}", subscriber=p.subscriber),
        tr(lang, "When: {time}", time=local_time(lang, p.timezone, p.at)),
        p.text,
    )


register(Kind.APPOINTMENT, AppointmentPayload, render_appointment)
