"""Stored attachments, made ready for one channel at send time (off the event loop).

Deliveries keep references to our archived files; each channel gets them in its form:
a voicemail WAV becomes an OGG/Opus voice note on Telegram and an MP3 by email and MMS;
SMS carries none. A file that is gone or will not convert is logged and left out: the
text still goes (it says what the message was), nothing blocks the outbox.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path
from typing import Any

from gateway.media.audio import AudioError, to_mp3, to_ogg_opus
from models.vocab import Channel
from notifiers.base import Attachment

log = logging.getLogger(__name__)

WAV = "audio/wav"


def stored(path: Path, content_type: str, filename: str) -> dict[str, str]:
    """The JSON a Delivery keeps for one attachment."""
    return {"path": str(path), "content_type": content_type, "filename": filename}


def inline(filename: str, content_type: str, data: bytes) -> dict[str, str]:
    """A small generated file (an .ics invite) kept in the row itself."""
    encoded = base64.b64encode(data).decode()
    return {"data_b64": encoded, "content_type": content_type, "filename": filename}


async def for_channel(channel: str, items: list[dict[str, Any]]) -> tuple[Attachment, ...]:
    if channel == Channel.SMS or not items:
        return ()
    return tuple(await asyncio.to_thread(_prepare_all, channel, items))


def _prepare_all(channel: str, items: list[dict[str, Any]]) -> list[Attachment]:
    ready = []
    for item in items:
        try:
            ready.append(_prepare(channel, item))
        except (OSError, AudioError) as exc:
            log.error("attachment %s left out for %s: %s", item.get("path"), channel, exc)
    return ready


def _prepare(channel: str, item: dict[str, Any]) -> Attachment:
    if "data_b64" in item:
        data = base64.b64decode(item["data_b64"])
    else:
        data = Path(item["path"]).read_bytes()
    name, content_type = item["filename"], item["content_type"]
    if content_type == WAV:
        stem = Path(name).stem
        if channel == Channel.TELEGRAM:
            return Attachment(f"{stem}.ogg", "audio/ogg", to_ogg_opus(data))
        return Attachment(f"{stem}.mp3", "audio/mpeg", to_mp3(data))
    return Attachment(name, content_type, data)
