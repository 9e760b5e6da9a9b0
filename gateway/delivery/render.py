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

from gateway.control import callbacks
from locales import tr
from models.vocab import Kind
from notifiers.base import Button

MISSED_CALL = Kind.MISSED_CALL
MESSAGE = Kind.MESSAGE
VOICEMAIL = Kind.VOICEMAIL
FAX = Kind.FAX
APPOINTMENT = Kind.APPOINTMENT


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
    row = [Button(tr(lang, "Forward calls to me"), callbacks.forward_to_me(call_id))]
    if can_call_back:
        row.insert(0, Button(tr(lang, "Call back"), callbacks.call_back(call_id)))
    return [row, [Button(tr(lang, "Book a time"), callbacks.book(call_id))]]


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
    elif kind == VOICEMAIL:
        subject, body = _voicemail(lang, subscriber, caller, when, payload)
    elif kind == FAX:
        subject, body = _fax(lang, subscriber, caller, when, payload)
    elif kind == APPOINTMENT:
        subject = tr(lang, "Appointment for {subscriber}", subscriber=subscriber)
        body = "\n".join([subject, tr(lang, "When: {time}", time=when), payload.get("text", "")])
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
        text = " / ".join(line for line in body.splitlines() if line)
        return Rendered(text=_cut(text, payload.get("sms_chars")))
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
            buttons.append([Button(tr(lang, "Got it"), callbacks.ack(ref))])
        return Rendered(text=body, buttons=buttons)
    return Rendered(text=body, subject=subject)  # mms


def _voicemail(
    lang: str, subscriber: str, caller: str, when: str, payload: dict[str, Any]
) -> tuple[str, str]:
    subject = tr(lang, "Voicemail for {subscriber}", subscriber=subscriber)
    if not payload.get("transcript_ok"):
        said = tr(lang, "(The message could not be transcribed; listen to the recording.)")
    elif not payload.get("transcript"):
        said = tr(lang, "(No words could be recognised; listen to the recording.)")
    else:
        said = f"«{payload['transcript']}»"
    seconds = round(float(payload.get("duration", 0)))
    lines = [
        subject,
        tr(lang, "From: {caller}", caller=caller),
        tr(lang, "Left at: {time} ({seconds} s)", time=when, seconds=seconds),
        "",
        said,
    ]
    return subject, "\n".join(lines)


def _fax(
    lang: str, subscriber: str, caller: str, when: str, payload: dict[str, Any]
) -> tuple[str, str]:
    subject = tr(lang, "Fax for {subscriber}", subscriber=subscriber)
    lines = [
        subject,
        tr(lang, "From: {caller}", caller=caller),
        tr(lang, "Received: {time}, {pages} pages", time=when, pages=payload.get("pages", 0)),
    ]
    if payload.get("unreadable"):
        lines += ["", tr(lang, "The fax could not be read; the operator keeps the original.")]
    elif not payload.get("complete", True):
        lines += [
            "",
            tr(
                lang,
                "The fax stopped part-way ({reason}); here is what arrived.",
                reason=payload.get("error") or "?",
            ),
        ]
    return subject, "\n".join(lines)


def _cut(text: str, limit: int | None) -> str:
    """Cut on a word boundary with an ellipsis (the SMS channel cuts again by parts)."""
    if not limit or len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip() + "…"
