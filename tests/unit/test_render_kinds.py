"""Each kind's payload and renderer, owned by its feature and found through one registry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.calls.render import MissedCallPayload
from gateway.delivery.message_render import MessagePayload
from gateway.delivery.render import Draft, Renderers
from gateway.diary.render import AppointmentPayload
from gateway.fax.render import FaxPayload
from gateway.renderers import RENDERERS
from gateway.voicemail.render import VoicemailPayload
from models.vocab import KINDS, Channel, Kind

AT = "2026-11-23T13:05:00+00:00"
BASE = {"subscriber": "Dr Papadopoulos", "at": AT, "timezone": "Europe/Athens"}
CALLER = {"caller_number": "+302101234567", "caller_name": "NIKOLAOU", "contact_name": None}
WAV = {"path": "/archive/vm.wav", "content_type": "audio/wav", "filename": "voicemail.wav"}

# What the creators stored before the payloads had types: same keys, same order.
STORED: list[tuple[Kind, type[Any], dict[str, Any]]] = [
    (
        Kind.MISSED_CALL,
        MissedCallPayload,
        {
            "subscriber": BASE["subscriber"],
            **CALLER,
            "at": AT,
            "timezone": BASE["timezone"],
            "ddi": "2100001",
            "call_id": 7,
        },
    ),
    (
        Kind.VOICEMAIL,
        VoicemailPayload,
        {
            "subscriber": BASE["subscriber"],
            **CALLER,
            "at": AT,
            "timezone": BASE["timezone"],
            "duration": 12.4,
            "transcript": "Please call me back",
            "transcript_ok": True,
            "sms_chars": 306,
            "attachments": [WAV],
        },
    ),
    (
        Kind.FAX,
        FaxPayload,
        {
            "subscriber": BASE["subscriber"],
            **CALLER,
            "at": AT,
            "timezone": BASE["timezone"],
            "pages": 3,
            "complete": False,
            "error": "carrier lost",
            "unreadable": False,
            "attachments": [],
        },
    ),
    (
        Kind.MESSAGE,
        MessagePayload,
        {
            "subscriber": BASE["subscriber"],
            **CALLER,
            "at": AT,
            "timezone": BASE["timezone"],
            "text": "Call the lab.",
        },
    ),
    (
        Kind.APPOINTMENT,
        AppointmentPayload,
        {**BASE, "text": "Smith — check", "attachments": []},
    ),
]


def test_every_kind_has_its_renderer() -> None:
    assert RENDERERS.kinds() == set(KINDS)


@pytest.mark.parametrize(("kind", "payload_type", "stored"), STORED)
def test_a_payload_is_stored_with_the_keys_it_always_had(
    kind: Kind, payload_type: type[Any], stored: dict[str, Any]
) -> None:
    assert RENDERERS.lookup(kind).payload_type is payload_type
    payload = payload_type.from_json(stored)
    assert isinstance(payload.at, datetime)
    assert list(payload.to_json().items()) == list(stored.items())


def test_without_a_call_there_is_no_call_id_key_and_no_buttons() -> None:
    stored = dict(STORED[0][2])
    del stored["call_id"]
    assert MissedCallPayload.from_json(stored).to_json() == stored
    rendered = RENDERERS.render(
        Kind.MISSED_CALL, Channel.TELEGRAM, "en", stored, urgent=False, ref=1
    )
    assert rendered.buttons == []


def test_old_rows_with_fewer_keys_still_render() -> None:
    # The SMS-lock notice stored no caller; a fax row without the newer keys.
    notice = RENDERERS.render(
        Kind.MESSAGE, Channel.EMAIL, "en", {**BASE, "text": "Locked."}, urgent=True, ref=3
    )
    assert notice.subject == "Urgent: Message for Dr Papadopoulos"
    assert "From: a withheld number" in notice.text
    fax = RENDERERS.render(Kind.FAX, Channel.SMS, "en", dict(BASE), urgent=False, ref=4)
    assert fax.text.startswith("Fax for Dr Papadopoulos / From: a withheld number / Received:")


def test_the_channel_frames_what_the_kind_says() -> None:
    stored = STORED[1][2] | {"call_id": 9}
    telegram = RENDERERS.render(Kind.VOICEMAIL, Channel.TELEGRAM, "en", stored, urgent=True, ref=5)
    assert telegram.text.startswith("Urgent: Voicemail for Dr Papadopoulos\nFrom: NIKOLAOU")
    assert [[b.data for b in row] for row in telegram.buttons] == [
        ["callback:9", "fwdme:9"],
        ["book:9"],
        ["ack:5"],
    ]
    email = RENDERERS.render(Kind.VOICEMAIL, Channel.EMAIL, "en", stored, urgent=False, ref=5)
    assert email.subject == "Voicemail for Dr Papadopoulos"
    assert "<p>«Please call me back»</p>" in email.html
    assert email.buttons == []
    short = stored | {"sms_chars": 40}
    sms = RENDERERS.render(Kind.VOICEMAIL, Channel.SMS, "en", short, urgent=False, ref=5)
    assert sms.text == "Voicemail for Dr Papadopoulos / From:…"


def test_a_transcript_that_failed_says_to_listen() -> None:
    stored = STORED[1][2] | {"transcript": "", "transcript_ok": False}
    text = RENDERERS.render(Kind.VOICEMAIL, Channel.MMS, "en", stored, urgent=False, ref=1).text
    assert text.endswith("(The message could not be transcribed; listen to the recording.)")


def test_an_unknown_kind_or_a_second_payload_type_is_refused() -> None:
    with pytest.raises(LookupError, match="reply"):
        RENDERERS.render("reply", Channel.TELEGRAM, "en", dict(BASE), urgent=False, ref=1)
    registry = Renderers()
    registry.register(Kind.FAX, FaxPayload, lambda lang, p: Draft(p.subscriber, p.subscriber))
    with pytest.raises(ValueError, match="already renders"):
        registry.register(Kind.FAX, MessagePayload, lambda lang, p: Draft("", ""))


def test_a_created_payload_keeps_its_time() -> None:
    at = datetime(2026, 11, 23, 13, 5, tzinfo=UTC)
    payload = AppointmentPayload(subscriber="A", at=at, timezone="UTC", text="x")
    assert payload.to_json()["at"] == AT
    assert AppointmentPayload.from_json(payload.to_json()) == payload
