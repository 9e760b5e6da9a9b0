"""What the browser tests find on a subscriber's desk: calls (missed ones too), a voicemail
with a real WAV and its transcript, a fax with a real PDF, a contact and an appointment
tomorrow. Rows are written straight to the database (no notices go out); the files are
generated here, small and valid, so the browser really decodes them."""

from __future__ import annotations

import io
import math
import struct
import wave
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fpdf import FPDF

from gateway.control import admin
from gateway.fax.render import FaxPayload
from models.db import Appointment, Call, Contact, Notification, Subscriber, Urgency, Voicemail
from models.events import CallOutcome, CallStatus
from models.vocab import Kind

RATE = 8000  # Hz: what Asterisk records voicemail at


def wav_bytes(seconds: float = 1.0, pitch: float = 440.0) -> bytes:
    """A mono 16-bit PCM tone: long enough for an <audio> element to start playing."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * pitch * i / RATE)))
        for i in range(int(RATE * seconds))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(frames)
    return out.getvalue()


def pdf_bytes(text: str) -> bytes:
    """A one-page PDF saying `text` (latin-1: fpdf2's core fonts)."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.cell(text=text)
    return bytes(pdf.output())


def media_files(folder: Path, tag: str) -> tuple[Path, Path]:
    """The voicemail's WAV and the fax's PDF, written under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    audio, pdf = folder / f"{tag}-msg0001.wav", folder / f"{tag}-fax.pdf"
    audio.write_bytes(wav_bytes())
    pdf.write_bytes(pdf_bytes(f"Fax for {tag}"))
    return audio, pdf


@dataclass(frozen=True)
class Seeded:
    """One subscriber's rows the tests look for."""

    subscriber: Subscriber
    ddi: str
    link_code: str
    voicemail: Voicemail
    fax: Notification
    fax_pdf: bytes
    transcript: str
    missed_caller: str
    appointment: Appointment


def next_workday(after: date) -> date:
    """The first Tuesday-to-Friday after `after`: a day any office-hours rule keeps open
    (never a weekend, nor the Monday after a holiday weekend)."""
    day = after + timedelta(days=1)
    while day.weekday() not in (1, 2, 3, 4):
        day += timedelta(days=1)
    return day


async def subscriber(
    folder: Path, *, name: str, ddi: str, mobile: str, language: str, tag: str
) -> Seeded:
    """A subscriber with a day's incomings. `tag` makes its texts and callers its own, so a
    page showing another subscriber's data is visible at once."""
    audio, pdf = media_files(folder, tag)
    created = await admin.add_subscriber(
        name=name, ddis=[ddi], language=language, timezone="Europe/Athens", mobile=mobile
    )
    sub = created.subscriber
    sub.email = f"{tag}@example.test"
    await sub.save(update_fields=["email"])
    now = datetime.now(UTC).replace(microsecond=0)
    missed = f"+30210555{tag_digits(tag)}01"
    zone = ZoneInfo(sub.timezone)
    midnight = datetime.combine(now.astimezone(zone).date(), time(0), tzinfo=zone)
    rows = [
        # (caller, name, minutes ago, status, outcome)
        (missed, f"Missed {tag}", 5, CallStatus.LOST, CallOutcome.ABANDONED),
        (f"+30210555{tag_digits(tag)}02", f"Answered {tag}", 15, CallStatus.ANSWERED,
         CallOutcome.ANSWERED),
        (f"+30210555{tag_digits(tag)}03", f"Voicemail {tag}", 25, CallStatus.NOT_ANSWERED,
         CallOutcome.VOICEMAIL),
        (f"+30210555{tag_digits(tag)}04", f"Missed again {tag}", 60 * 26, CallStatus.LOST,
         CallOutcome.ABANDONED),
    ]  # fmt: skip
    calls = []
    for i, (number, caller, ago, status, outcome) in enumerate(rows):
        started = now - timedelta(minutes=ago)
        if ago < 60:  # "today's" calls stay today even just after local midnight
            started = max(started, midnight)
        calls.append(
            await Call.create(
                linkedid=f"{tag}-{i}.1",
                ddi=ddi,
                subscriber=sub,
                caller_number=number,
                caller_name=caller,
                scenario="agent",
                status=status,
                outcome=outcome,
                started_at=started,
                answered_at=started + timedelta(seconds=10) if status == "answered" else None,
                ended_at=started + timedelta(minutes=1),
            )
        )
    await Contact.create(subscriber=sub, name=f"Contact {tag}", number=missed)

    transcript = f"Please call me back about the {tag} order, thank you"
    voicemail = await Voicemail.create(
        key=f"{tag}/INBOX/msg0001",
        mailbox=f"{ddi}@default",
        subscriber=sub,
        call=calls[2],
        caller_number=calls[2].caller_number,
        caller_name=calls[2].caller_name,
        left_at=calls[2].started_at + timedelta(seconds=30),
        duration=1.0,
        audio_path=str(audio),
        transcript=transcript,
        transcript_ok=True,
    )

    payload = FaxPayload(
        subscriber=sub.name,
        caller_number=f"+30210555{tag_digits(tag)}05",
        caller_name=f"Fax sender {tag}",
        contact_name=None,
        at=now - timedelta(minutes=40),
        timezone=sub.timezone,
        pages=1,
        complete=True,
        error="",
        unreadable=False,
        attachments=(
            {"path": str(pdf), "content_type": "application/pdf", "filename": f"{tag}.pdf"},
        ),
    )
    fax = await Notification.create(
        dedupe_key=f"{Kind.FAX}:{tag}-1",
        subscriber=sub,
        kind=Kind.FAX,
        urgency=Urgency.NORMAL,
        payload=payload.to_json(),
        route=[],
    )

    tomorrow = datetime.now(zone).date() + timedelta(days=1)
    starts = datetime.combine(tomorrow, time(11, 0), tzinfo=zone).astimezone(UTC)
    appointment = await Appointment.create(
        subscriber=sub,
        starts_at=starts,
        ends_at=starts + timedelta(minutes=30),
        name=f"Seeded visit {tag}",
        uid=f"seeded-{tag}@frontdesk",
    )
    return Seeded(
        subscriber=sub,
        ddi=ddi,
        link_code=created.link_code,
        voicemail=voicemail,
        fax=fax,
        fax_pdf=pdf.read_bytes(),
        transcript=transcript,
        missed_caller=missed,
        appointment=appointment,
    )


def tag_digits(tag: str) -> str:
    """Two digits of a tag, to keep each subscriber's caller numbers apart."""
    return f"{sum(map(ord, tag)) % 100:02d}"
