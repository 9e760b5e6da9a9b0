"""What subscribers read: localised text, subject and buttons per kind and channel.

Notifications store a channel-neutral payload; rendering happens when a Delivery for a
channel is created (first try, fallback or escalation), in the recipient's language.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from locales import tr
from notifiers.base import Button

MISSED_CALL = "missed_call"
MESSAGE = "message"  # a message taken for the subscriber (by an agent or the operator)
KINDS = (MISSED_CALL, MESSAGE, "voicemail", "fax", "appointment")


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str = ""
    html: str = ""
    buttons: list[list[Button]] = field(default_factory=list)


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


def render(
    kind: str, channel: str, lang: str, payload: dict[str, Any], *, urgent: bool, ref: int
) -> Rendered:
    """The message for one channel. `ref` is the notification id (the "Got it" button)."""
    caller = caller_label(
        lang,
        payload.get("caller_number", ""),
        payload.get("caller_name", ""),
        payload.get("contact_name"),
    )
    when = local_time(lang, payload["timezone"], datetime.fromisoformat(payload["at"]))
    subscriber = payload["subscriber"]
    if kind == MISSED_CALL:
        subject = tr(lang, "Missed call for {subscriber}", subscriber=subscriber)
        body = missed_call(
            lang=lang, subscriber=subscriber, caller=caller, when=when, ddi=payload["ddi"]
        )
    else:
        subject = tr(lang, "Message for {subscriber}", subscriber=subscriber)
        body = "\n".join(
            [
                subject,
                tr(lang, "From: {caller}", caller=caller),
                tr(lang, "Taken at: {time}", time=when),
                "",
                payload.get("text", ""),
            ]
        )
    if urgent:
        subject = tr(lang, "Urgent: {subject}", subject=subject)
        body = tr(lang, "Urgent: {subject}", subject=body)
    if channel == "sms":  # one screen: no blank lines, the subject line is implied
        return Rendered(text=" / ".join(line for line in body.splitlines() if line))
    if channel == "email":
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n\n"))
        return Rendered(
            text=body,
            subject=subject,
            html=f'<html><body lang="{lang}">{paragraphs.replace(chr(10), "<br>")}</body></html>',
        )
    if channel == "telegram":
        buttons: list[list[Button]] = []
        call_id = payload.get("call_id")
        if call_id is not None:
            buttons = call_buttons(lang, call_id, bool(payload.get("caller_number")))
        if urgent:
            buttons.append([Button(tr(lang, "Got it"), f"ack:{ref}")])
        return Rendered(text=body, buttons=buttons)
    return Rendered(text=body, subject=subject)  # mms
