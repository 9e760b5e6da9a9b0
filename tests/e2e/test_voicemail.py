"""Voicemail from Asterisk's spool to the subscriber: found, transcribed, delivered once.

The running service (Runtime) against the sandbox Bot API and SMTP sink, with a spool
laid out as Asterisk lays it out. Transcription itself is tested in test_transcription.py;
the engine here is chosen per test.
"""

from __future__ import annotations

import io
import math
import shutil
import struct
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import av

from bot.runtime import Runtime
from gateway.control import admin
from gateway.voicemail.spool import parse_callerid, read_spool
from models.database import migrate
from models.db import Urgency
from models.settings import Settings, with_section
from sandbox.ami_server import AmiServer, encode_frame
from sandbox.smtp_sink import SmtpSink
from sandbox.telegram_api import BotApiServer, Call
from tests.stack import sandbox_settings

TOKEN = "123456:VOICEMAIL-token"
CHAT = 6060
DDI = "2100070"
EMAIL = "dr@example.org"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "voicemail"
WAIT = 60.0  # the first transcription loads a model in a worker process


def tone_wav(seconds: float = 1.5) -> bytes:
    """8 kHz mono 16-bit, as Asterisk records."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        samples = (
            int(8000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(int(8000 * seconds))
        )
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return out.getvalue()


def leave_message(
    spool: Path,
    box: str,
    n: int,
    wav: bytes,
    callerid: str,
    msg_id: str,
    context: str = "default",
    *,
    duration: int = 2,
    origtime: int = 1795350000,
) -> Path:
    """msgNNNN.txt and .wav as app_voicemail writes them (`duration`: whole seconds)."""
    inbox = spool / context / box / "INBOX"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / f"msg{n:04d}.txt").write_text(
        "[message]\n"
        f"origmailbox={box}\ncontext=frontdesk-vm\nexten={box}\n"
        f"callerid={callerid}\norigtime={origtime}\nduration={duration}\nmsg_id={msg_id}\n",
        "utf-8",
    )
    (inbox / f"msg{n:04d}.wav").write_bytes(wav)
    return inbox


@asynccontextmanager
async def service(
    tmp: Path, ami: AmiServer, bot: BotApiServer, smtp: SmtpSink, engine: str
) -> AsyncIterator[Runtime]:
    s = sandbox_settings(tmp / "vm.sqlite3", ami, bot, TOKEN)
    s = with_section(s, "smtp", host=smtp.host, port=smtp.port, security="none")
    s = with_section(s, "routing", default_channels="telegram,email")
    s = with_section(s, "voicemail", spool=str(tmp / "spool"), archive=str(tmp / "archive"))
    s = with_section(s, "transcription", engine=engine)
    await migrate(s.database.url)
    runtime = Runtime(s)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def subscriber_with_chat(bot: BotApiServer, settings: Settings) -> int:
    created = await admin.add_subscriber(
        name="Ιατρείο", ddis=[DDI], language="el", timezone="Europe/Athens"
    )
    await admin.set_contact_points(created.subscriber.id, email=EMAIL)
    await admin.set_route(
        created.subscriber.id, "voicemail", Urgency.NORMAL, ["telegram+email", "sms"]
    )
    bot.inject_message(CHAT, f"/start {created.link_code}", language_code="el")
    await bot.wait_for(lambda c: c.method == "sendMessage", timeout=WAIT)
    return created.subscriber.id


def is_voice(call: Call) -> bool:
    return call.method == "sendVoice" and call.ok


def ogg_opus_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        assert container.format.name == "ogg" and stream.codec_context.name == "opus"
        return float(container.duration or 0) / av.time_base


async def test_a_spool_message_reaches_telegram_and_email_once_across_restarts(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool"
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot, SmtpSink() as smtp:
        async with service(tmp_path, ami, bot, smtp, engine="none") as runtime:
            await subscriber_with_chat(bot, runtime.settings)
            leave_message(spool, DDI, 0, tone_wav(), '"Μαρία" <2101234567>', "1795350000-00000001")
            # Asterisk tells AMI a message is waiting: the gateway looks at once.
            await ami.push_raw(
                encode_frame(
                    {
                        "Event": "MessageWaiting",
                        "Mailbox": f"{DDI}@default",
                        "Waiting": "1",
                        "New": "1",
                        "Old": "0",
                    }
                )
            )
            voice = await bot.wait_for(is_voice, timeout=WAIT)
            [email] = await smtp.wait_messages(1, timeout=WAIT)
        # Delivered: a valid voice note with the text as its caption, an MP3 by email.
        ogg = voice.files["voice"][2]
        assert 1.3 < ogg_opus_seconds(ogg) < 1.7
        caption = voice.params["caption"]
        assert caption.startswith("Φωνητικό μήνυμα για Ιατρείο")
        assert "Μαρία (+302101234567)" in caption
        assert "δεν μεταγράφηκε" in caption  # engine "none": it says so, the audio still goes
        [mp3] = [p for p in email.message.iter_attachments()]
        assert mp3.get_content_type() == "audio/mpeg" and len(mp3.get_content()) > 1000

        # A restart (and its start-up scan) sends nothing again.
        async with service(tmp_path, ami, bot, smtp, engine="none") as runtime:
            assert await runtime.gateway.voicemail.scan() == 0
        assert len([c for c in bot.requests if is_voice(c)]) == 1
        assert len(smtp.messages) == 1


async def test_a_message_left_while_the_gateway_was_down_is_delivered_at_start(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool"
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot, SmtpSink() as smtp:
        async with service(tmp_path, ami, bot, smtp, engine="none") as runtime:
            await subscriber_with_chat(bot, runtime.settings)
        # Down: a caller leaves a message. Asterisk's MessageWaiting goes to nobody.
        leave_message(spool, DDI, 0, tone_wav(), "<6944111222>", "1795350100-00000002")
        async with service(tmp_path, ami, bot, smtp, engine="none"):
            voice = await bot.wait_for(is_voice, timeout=WAIT)
            await smtp.wait_messages(1, timeout=WAIT)
        assert "+306944111222" in voice.params["caption"]


def test_caller_ids_as_asterisk_writes_them() -> None:
    assert parse_callerid('"Μαρία Π." <+302101234567>') == ("Μαρία Π.", "+302101234567")
    assert parse_callerid("<2101234567>") == ("", "2101234567")
    assert parse_callerid("2101234567") == ("", "2101234567")
    assert parse_callerid('"Unknown" <>') == ("Unknown", "")


def test_the_spool_reader_skips_what_is_not_ready_or_not_readable(tmp_path: Path) -> None:
    inbox = leave_message(tmp_path, "1001", 0, tone_wav(0.2), '"A" <1>', "id-0")
    leave_message(tmp_path, "1001", 1, tone_wav(0.2), '"B" <2>', "id-1")
    (inbox / "msg0001.wav").unlink()  # Asterisk still writing: the .txt came first
    (inbox / "msg0002.txt").write_bytes(b"\xff\xfe not an ini file [[[")
    (inbox / "msg0002.wav").write_bytes(tone_wav(0.2))
    found = read_spool(tmp_path)
    assert [m.key for m in found] == ["id-0"]
    assert (found[0].mailbox, found[0].caller_name, found[0].caller_number) == (
        "1001@default",
        "A",
        "1",
    )


async def test_a_real_message_arrives_transcribed(tmp_path: Path) -> None:
    inbox = tmp_path / "spool" / "default" / DDI / "INBOX"
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot, SmtpSink() as smtp:
        async with service(tmp_path, ami, bot, smtp, engine="whisper") as runtime:
            await subscriber_with_chat(bot, runtime.settings)
            inbox.mkdir(parents=True)
            for name in ("msg0000.wav", "msg0000.txt"):  # human speech, as Asterisk stores it
                shutil.copy(FIXTURES / name, inbox / name)
            assert await runtime.gateway.voicemail.scan() == 1  # as the periodic scan would
            voice = await bot.wait_for(is_voice, timeout=WAIT)
            [email] = await smtp.wait_messages(1, timeout=WAIT)
    caption = voice.params["caption"].lower()
    assert "ill-disposed young man" in caption and "amiable" in caption
    assert "Μαρία Παπαδοπούλου (+302101234567)" in voice.params["caption"]
    assert 6.5 < ogg_opus_seconds(voice.files["voice"][2]) < 7.5
    assert "amiable" in email.message.get_body(("plain",)).get_content().lower()
