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
from locales import N_, tr
from models.vocab import Kind

# What an agent can file a message under (the key is stored, the label said in the
# reader's language). Keys never change: stored messages keep rendering.
CATEGORIES: dict[str, str] = {
    "callback": N_("Please call back"),
    "appointment": N_("Appointment"),
    "results": N_("Results or documents"),
    "billing": N_("Billing"),
    "complaint": N_("Complaint"),
    "other": N_("Other"),
}
# What an agent took: a message (the default), a request (service ticket), an appointment.
_TITLES = {
    "": N_("Message for {subscriber}"),
    "message": N_("Message for {subscriber}"),
    "request": N_("Request for {subscriber}"),
    "appointment": N_("Appointment for {subscriber}"),
}


@dataclass(frozen=True, kw_only=True)
class MessagePayload:
    subscriber: str
    at: datetime
    timezone: str
    text: str
    caller_number: str = ""  # empty: "a withheld number" (and the gateway's own notices)
    caller_name: str = ""
    contact_name: str | None = None
    # Taken by an agent at the desk (gateway/staff); empty for the others, which then
    # render and store exactly as before.
    taken: str = ""  # "message", "request" or "appointment"
    category: str = ""  # a CATEGORIES key
    nature: str = ""  # a request: nature of the call, handling, resolved, cause
    handling: str = ""
    resolved: bool | None = None
    cause: str = ""
    appointment_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "subscriber": self.subscriber,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "contact_name": self.contact_name,
            "at": self.at.isoformat(),
            "timezone": self.timezone,
            "text": self.text,
        }
        extra = {
            "taken": self.taken,
            "category": self.category,
            "nature": self.nature,
            "handling": self.handling,
            "resolved": self.resolved,
            "cause": self.cause,
            "appointment_at": self.appointment_at.isoformat() if self.appointment_at else None,
        }
        return data | {k: v for k, v in extra.items() if v not in ("", None)}

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
            taken=data.get("taken", ""),
            category=data.get("category", ""),
            nature=data.get("nature", ""),
            handling=data.get("handling", ""),
            resolved=data.get("resolved"),
            cause=data.get("cause", ""),
            appointment_at=(
                datetime.fromisoformat(data["appointment_at"])
                if data.get("appointment_at")
                else None
            ),
        )


def _details(lang: str, p: MessagePayload) -> list[str]:
    """The lines a desk-taken message adds (none for the others)."""
    lines = []
    if p.appointment_at is not None:
        when = local_time(lang, p.timezone, p.appointment_at)
        lines.append(tr(lang, "Appointment: {time}", time=when))
    if p.category:
        label = tr(lang, CATEGORIES[p.category]) if p.category in CATEGORIES else p.category
        lines.append(tr(lang, "Category: {category}", category=label))
    if p.nature:
        lines.append(tr(lang, "Nature of the call: {text}", text=p.nature))
    if p.handling:
        lines.append(tr(lang, "Handling: {text}", text=p.handling))
    if p.resolved is not None:
        lines.append(tr(lang, "Resolved: yes") if p.resolved else tr(lang, "Resolved: no"))
    if p.cause:
        lines.append(tr(lang, "Cause: {text}", text=p.cause))
    return lines


def render_message(lang: str, p: MessagePayload) -> Draft:
    caller = caller_label(lang, p.caller_number, p.caller_name, p.contact_name)
    return from_lines(
        tr(lang, _TITLES.get(p.taken, _TITLES[""]), subscriber=p.subscriber),
        tr(lang, "From: {caller}", caller=caller),
        tr(lang, "Taken at: {time}", time=local_time(lang, p.timezone, p.at)),
        *_details(lang, p),
        "",
        p.text,
    )


register(Kind.MESSAGE, MessagePayload, render_message)
