"""Voicemail: messages found in Asterisk's spool, transcribed, told to the subscriber once.

Asterisk writes `<spool>/<context>/<box>/INBOX/msgNNNN.wav` and `msgNNNN.txt` (INI:
callerid, origtime, duration, msg_id, exten...). The spool is the source of truth: it is
scanned at start (messages left while we were down), on AMI MessageWaiting (at once,
that mailbox only) and every `voicemail.scan_interval`. A message counts as taken only
when its Voicemail row and its notification are written together, after transcription;
a crash before that means the next scan takes it again, and its unique key (Asterisk's
msg_id) means never twice.

A message shorter than `voicemail.min_seconds` (the caller hung up at the beep; Asterisk
keeps such a message and says VMSTATUS=SUCCESS unless voicemail.conf has `minsecs`) is no
voicemail: it is recorded and archived like one, but the subscriber is told of a missed
call, under the router's key `missed_call:<linkedid>` when the message can be tied to its
call. So the two never both tell it, whether the call's end or the scan comes first; the
router ends a call told so as abandoned, and so does the desk if the call has ended.
"""

from __future__ import annotations

import asyncio
import configparser
import logging
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from gateway.calls.router import missed_call_key, missed_call_notice
from gateway.delivery.attachments import WAV, stored
from gateway.delivery.notices import NewNotification, Notices
from gateway.media.audio import AudioError, wav_info
from gateway.voicemail.render import VoicemailPayload
from gateway.voicemail.transcription import Transcriber, Transcript
from models.db import Call, Contact, Ddi, Subscriber, Urgency, Voicemail
from models.events import CallOutcome, CallStatus
from models.phone import caller_e164
from models.settings import VoicemailSettings
from models.vocab import Kind, Language

log = logging.getLogger(__name__)

_CALLERID = re.compile(r'^\s*(?:"?(?P<name>[^"<]*?)"?\s*)?<(?P<num>[^>]*)>\s*$')
SMS_CHARS_PER_PART = 67  # UCS-2, the worst case for el/ru/zh


@dataclass(frozen=True)
class SpoolMessage:
    key: str
    context: str
    box: str
    wav: Path
    caller_name: str
    caller_number: str
    left_at: datetime
    duration: float

    @property
    def mailbox(self) -> str:
        return f"{self.box}@{self.context}"


def parse_callerid(value: str) -> tuple[str, str]:
    """'"Μαρία" <+302101234567>' -> ("Μαρία", "+302101234567"); a bare number is kept."""
    match = _CALLERID.match(value)
    if match:
        return (match["name"] or "").strip(), match["num"].strip()
    value = value.strip().strip('"')
    return ("", value) if value.lstrip("+").isdigit() else (value, "")


def read_message(txt: Path, context: str, box: str) -> SpoolMessage | None:
    """One msgNNNN.txt and its WAV; None while Asterisk is still writing it (no WAV yet)."""
    wav = txt.with_suffix(".wav")
    if not wav.exists():
        return None
    ini = configparser.ConfigParser(interpolation=None, strict=False)
    ini.read_string(txt.read_text("utf-8", errors="replace"))
    meta = ini["message"] if ini.has_section("message") else {}
    origtime = int(meta.get("origtime", "0") or 0) or int(wav.stat().st_mtime)
    name, number = parse_callerid(meta.get("callerid", ""))
    key = meta.get("msg_id") or f"{context}/{box}/{origtime}/{txt.stem}"
    return SpoolMessage(
        key=key,
        context=context,
        box=box,
        wav=wav,
        caller_name="" if name == number else name,
        caller_number=number,
        left_at=datetime.fromtimestamp(origtime, UTC),
        duration=float(meta.get("duration", "0") or 0),
    )


def read_spool(root: Path, only: tuple[str, str] | None = None) -> list[SpoolMessage]:
    """Every message in every INBOX (or in one (context, box)); blocking, run in a thread."""
    found = []
    inboxes = [root / only[0] / only[1] / "INBOX"] if only else sorted(root.glob("*/*/INBOX"))
    for inbox in inboxes:
        if not inbox.is_dir():
            continue
        context, box = inbox.parent.parent.name, inbox.parent.name
        for txt in sorted(inbox.glob("msg*.txt")):
            try:
                message = read_message(txt, context, box)
            except (OSError, ValueError, configparser.Error) as exc:
                log.warning("voicemail %s unreadable, skipped: %s", txt, exc)
                continue
            if message is not None:
                found.append(message)
    return found


class VoicemailDesk:
    def __init__(
        self,
        settings: VoicemailSettings,
        notices: Notices,
        transcriber: Transcriber,
        region: str = "GR",
    ) -> None:
        self.settings = settings
        self._notices = notices
        self._transcriber = transcriber
        self._region = region
        self._busy: set[str] = set()  # keys being taken right now (scans can overlap)
        self._tasks: set[asyncio.Task[int]] = set()
        self.taken = 0

    @property
    def enabled(self) -> bool:
        return bool(self.settings.spool)

    def poke(self, mailbox: str) -> None:
        """AMI said a mailbox changed ("1001@default"): scan it now, in the background."""
        box, _, context = mailbox.partition("@")
        if not self.enabled or not box:
            return
        task = asyncio.ensure_future(self.scan((context or "default", box)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        while True:
            try:
                await self.scan()
            except Exception:
                log.exception("voicemail scan failed; the next one retries")
            await asyncio.sleep(self.settings.scan_interval)

    async def scan(self, only: tuple[str, str] | None = None) -> int:
        """Take every message not yet taken; returns how many were."""
        root = Path(self.settings.spool)
        messages = await asyncio.to_thread(read_spool, root, only)
        if not messages:
            return 0
        keys = [m.key for m in messages]
        known = set(await Voicemail.filter(key__in=keys).values_list("key", flat=True))
        fresh = [m for m in messages if m.key not in known and m.key not in self._busy]
        results = await asyncio.gather(*(self._take(m) for m in fresh))
        return sum(results)

    async def _take(self, message: SpoolMessage) -> int:
        self._busy.add(message.key)
        try:
            line = await self._line(message)
            subscriber = line.subscriber if line else None
            lang = subscriber.language if subscriber else Language.EN
            archived = await asyncio.to_thread(self._archive, message)
            duration = await self._duration(archived, message)
            if duration < self.settings.min_seconds:
                # Nothing worth hearing: no transcription, a missed call instead.
                log.info("voicemail %s: %.2f s, told as a missed call", message.key, duration)
                silent = Transcript("", False, lang, "shorter than voicemail.min_seconds")
                return await self._record(message, line, archived, silent, duration, missed=True)
            transcript = await self._transcriber.transcribe(archived, lang)
            return await self._record(message, line, archived, transcript, duration)
        finally:
            self._busy.discard(message.key)

    def _archive(self, message: SpoolMessage) -> Path:
        # Our own copy: the subscriber may delete the mailbox original before every
        # channel (and every retry) has the audio.
        folder = Path(self.settings.archive) / message.context / message.box
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{_safe(message.key)}.wav"
        shutil.copy2(message.wav, target)
        return target

    @staticmethod
    async def _duration(archived: Path, message: SpoolMessage) -> float:
        try:
            info = await asyncio.to_thread(lambda: wav_info(archived.read_bytes()))
            return info.duration
        except (AudioError, OSError) as exc:
            log.warning("voicemail %s: cannot read its audio (%s)", message.key, exc)
            return message.duration

    @staticmethod
    async def _line(message: SpoolMessage) -> Ddi | None:
        """The DDI that uses this mailbox (AstDB mailbox/<ddi>, else the DDI), with its
        subscriber: the mailbox's owner."""
        ddis = Ddi.filter(mailbox__in=[message.mailbox, message.box])
        ddi = await ddis.select_related("subscriber").first()
        if ddi is None and message.context == "default":
            ddi = await Ddi.filter(number=message.box).select_related("subscriber").first()
        return ddi

    async def _record(
        self,
        message: SpoolMessage,
        line: Ddi | None,
        archived: Path,
        transcript: Transcript,
        duration: float,
        missed: bool = False,
    ) -> int:
        subscriber = line.subscriber if line else None
        number = caller_e164(message.caller_number, self._region) or message.caller_number
        call = await self._call(subscriber, number, message.left_at) if subscriber else None
        try:
            async with in_transaction():
                await Voicemail.create(
                    key=message.key,
                    mailbox=message.mailbox,
                    subscriber=subscriber,
                    call=call,
                    caller_number=number,
                    caller_name=message.caller_name,
                    left_at=message.left_at,
                    duration=duration,
                    audio_path=str(archived),
                    transcript=transcript.text,
                    transcript_ok=transcript.ok,
                    transcript_error=transcript.error[:255],
                )
                if line is not None and missed:
                    await self._tell_missed(message, line, call, number)
                elif subscriber is not None:
                    notice = await self._notification(
                        message, subscriber, call, number, archived, transcript, duration
                    )
                    await self._notices.create([notice])
        except IntegrityError:
            return 0  # another scan recorded it first
        if subscriber is None:
            await self._notices.alert_admins(
                f"{Kind.VOICEMAIL}:{message.key}",
                f"voicemail in mailbox {message.mailbox}, which no subscriber's DDI uses; "
                f"kept at {archived}",
            )
        self.taken += 1
        return 1

    async def _tell_missed(
        self, message: SpoolMessage, line: Ddi, call: Call | None, number: str
    ) -> None:
        """One missed-call notification, keyed as the router keys it when the call is
        known (so only one of the two is ever written), and the call ends missed."""
        await self._notices.create(
            [
                missed_call_notice(
                    missed_call_key(call.linkedid) if call else _message_missed_key(message),
                    line.subscriber,
                    ddi=call.ddi if call and call.ddi else line.number,
                    number=number,
                    caller_name=message.caller_name,
                    contact_name=await _contact_name(line.subscriber, number),
                    at=call.started_at if call else message.left_at,
                    call_id=call.id if call else None,
                )
            ]
        )
        if call is not None:
            # Only once the router wrote its end (as voicemail); a call still going is
            # ended abandoned by the router, which sees this notification.
            await Call.filter(id=call.id, outcome=CallOutcome.VOICEMAIL).update(
                outcome=CallOutcome.ABANDONED, status=CallStatus.LOST
            )

    async def _notification(
        self,
        message: SpoolMessage,
        subscriber: Subscriber,
        call: Call | None,
        number: str,
        archived: Path,
        transcript: Transcript,
        duration: float,
    ) -> NewNotification:
        payload = VoicemailPayload(
            subscriber=subscriber.name,
            caller_number=number,
            caller_name=message.caller_name,
            contact_name=await _contact_name(subscriber, number),
            at=message.left_at,
            timezone=subscriber.timezone,
            duration=duration,
            transcript=transcript.text,
            transcript_ok=transcript.ok,
            sms_chars=self.settings.sms_parts * SMS_CHARS_PER_PART,
            attachments=(stored(archived, WAV, "voicemail.wav"),),
            call_id=call.id if call is not None else None,
        )
        return NewNotification(
            dedupe_key=f"{Kind.VOICEMAIL}:{message.key}",
            subscriber=subscriber,
            kind=Kind.VOICEMAIL,
            urgency=Urgency.NORMAL,
            payload=payload.to_json(),
            call_id=call.id if call else None,
        )

    @staticmethod
    async def _call(subscriber: Subscriber, number: str, left_at: datetime) -> Call | None:
        """The call that left it: same subscriber and caller, started shortly before, and
        not answered (an answered call left no message)."""
        return (
            await Call.filter(
                Q(outcome__isnull=True)
                | Q(outcome__not_in=[CallOutcome.ANSWERED, CallOutcome.FORWARDED]),
                subscriber=subscriber,
                caller_number=number,
                started_at__gte=left_at - timedelta(hours=1),
                started_at__lte=left_at + timedelta(minutes=1),
            )
            .order_by("-started_at")
            .first()
        )

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", key)


def _message_missed_key(message: SpoolMessage) -> str:
    # No call to tie it to (the gateway was down, or the caller is unknown): the message
    # itself is the missed call, once.
    return missed_call_key(f"{Kind.VOICEMAIL}:{message.key}")


async def _contact_name(subscriber: Subscriber, number: str) -> str | None:
    contact = await Contact.get_or_none(subscriber=subscriber, number=number) if number else None
    return contact.name if contact else None
