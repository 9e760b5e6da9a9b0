"""The "fax" kind: its payload (as stored in Notification.payload) and its text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from gateway.delivery.render import Draft, caller_label, from_lines, local_time, register
from locales import tr
from models.vocab import Kind


@dataclass(frozen=True, kw_only=True)
class FaxPayload:
    subscriber: str
    caller_number: str
    caller_name: str
    contact_name: str | None
    at: datetime
    timezone: str
    pages: int
    complete: bool  # False: the transmission stopped part-way (`error` says why)
    error: str
    unreadable: bool  # no PDF could be made; the operator keeps the original
    attachments: tuple[dict[str, str], ...]  # the PDF (delivery.attachments.stored)

    def to_json(self) -> dict[str, Any]:
        return {
            "subscriber": self.subscriber,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "contact_name": self.contact_name,
            "at": self.at.isoformat(),
            "timezone": self.timezone,
            "pages": self.pages,
            "complete": self.complete,
            "error": self.error,
            "unreadable": self.unreadable,
            "attachments": list(self.attachments),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            subscriber=data["subscriber"],
            caller_number=data.get("caller_number", ""),
            caller_name=data.get("caller_name", ""),
            contact_name=data.get("contact_name"),
            at=datetime.fromisoformat(data["at"]),
            timezone=data["timezone"],
            pages=data.get("pages", 0),
            complete=data.get("complete", True),
            error=data.get("error") or "",
            unreadable=bool(data.get("unreadable")),
            attachments=tuple(data.get("attachments", [])),
        )


def render_fax(lang: str, p: FaxPayload) -> Draft:
    caller = caller_label(lang, p.caller_number, p.caller_name, p.contact_name)
    when = local_time(lang, p.timezone, p.at)
    lines = [
        tr(lang, "From: {caller}", caller=caller),
        tr(lang, "Received: {time}, {pages} pages", time=when, pages=p.pages),
    ]
    if p.unreadable:
        lines += ["", tr(lang, "The fax could not be read; the operator keeps the original.")]
    elif not p.complete:
        lines += [
            "",
            tr(
                lang,
                "The fax stopped part-way ({reason}); here is what arrived.",
                reason=p.error or "?",
            ),
        ]
    return from_lines(tr(lang, "Fax for {subscriber}", subscriber=p.subscriber), *lines)


register(Kind.FAX, FaxPayload, render_fax)
