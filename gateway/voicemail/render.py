"""The "voicemail" kind: its payload (as stored in Notification.payload) and its text.

A voicemail left on a call we tracked offers that call's buttons, as a missed call does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from gateway.calls.render import call_buttons
from gateway.delivery.render import Draft, caller_label, from_lines, local_time, register
from locales import tr
from models.vocab import Kind


@dataclass(frozen=True, kw_only=True)
class VoicemailPayload:
    subscriber: str
    caller_number: str
    caller_name: str
    contact_name: str | None
    at: datetime  # when the caller began recording
    timezone: str
    duration: float  # seconds
    transcript: str
    transcript_ok: bool  # False: not transcribed (failed, or nothing heard): listen instead
    sms_chars: int | None  # the SMS text is cut to this (voicemail.sms_parts)
    attachments: tuple[dict[str, str], ...]  # the archived WAV (delivery.attachments.stored)
    call_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "subscriber": self.subscriber,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "contact_name": self.contact_name,
            "at": self.at.isoformat(),
            "timezone": self.timezone,
            "duration": self.duration,
            "transcript": self.transcript,
            "transcript_ok": self.transcript_ok,
            "sms_chars": self.sms_chars,
            "attachments": list(self.attachments),
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
            duration=float(data.get("duration", 0)),
            transcript=data.get("transcript", ""),
            transcript_ok=bool(data.get("transcript_ok")),
            sms_chars=data.get("sms_chars"),
            attachments=tuple(data.get("attachments", [])),
            call_id=data.get("call_id"),
        )


def render_voicemail(lang: str, p: VoicemailPayload) -> Draft:
    caller = caller_label(lang, p.caller_number, p.caller_name, p.contact_name)
    when = local_time(lang, p.timezone, p.at)
    if p.transcript_ok and p.transcript:  # the transcriber reports ok only with words
        said = f"«{p.transcript}»"
    else:
        said = tr(lang, "(The message could not be transcribed; listen to the recording.)")
    return from_lines(
        tr(lang, "Voicemail for {subscriber}", subscriber=p.subscriber),
        tr(lang, "From: {caller}", caller=caller),
        tr(lang, "Left at: {time} ({seconds} s)", time=when, seconds=round(p.duration)),
        "",
        said,
        buttons=call_buttons(lang, p.call_id, bool(p.caller_number)),
        sms_chars=p.sms_chars,
    )


register(Kind.VOICEMAIL, VoicemailPayload, render_voicemail)
