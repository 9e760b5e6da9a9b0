"""The demo's voicemail and fax: a caller leaves the Russian subscriber a spoken message
(real speech, transcribed by the default engine), and a three-page fax reaches the Chinese
subscriber through the real HylaFAX hook script.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from gateway.app import Gateway
from gateway.control import admin
from gateway.fax.render import FaxPayload
from models.db import Notification, Subscriber, Urgency, Voicemail
from models.settings import Settings, with_section
from models.vocab import Channel, Kind

ROOT = Path(__file__).resolve().parent.parent
HOOK = ROOT / "deploy" / "hylafax" / "faxrcvd-frontdesk"
VOICE = ROOT / "tests" / "fixtures" / "voicemail" / "ru.wav"  # human speech, CC BY 3.0
FAX = ROOT / "tests" / "fixtures" / "fax" / "g4-3pages.tif"
FAX_SECRET = "demo-fax-secret"
VOICEMAIL_CALLER = '"Сергей Павлов" <+79035550101>'
FAX_CALLER = "+861065550123"


def media_settings(s: Settings, workdir: Path) -> Settings:
    s = with_section(
        s, "voicemail", spool=str(workdir / "spool"), archive=str(workdir / "voicemail")
    )
    return with_section(s, "fax", secret=FAX_SECRET, archive=str(workdir / "fax"))


async def set_routes(people: list[Any]) -> None:
    """Voice notes and faxes go to Telegram and email at once."""
    for person in people:
        subscriber = await Subscriber.get(name=person.name)
        for kind in (Kind.VOICEMAIL, Kind.FAX):
            both = f"{Channel.TELEGRAM}+{Channel.EMAIL}"
            await admin.set_route(subscriber.id, kind, Urgency.NORMAL, [both])


def leave_voicemail(spool: Path, ddi: str) -> None:
    """What Asterisk's VoiceMail() writes: msg0000.wav and its metadata in the INBOX."""
    inbox = spool / "default" / ddi / "INBOX"
    inbox.mkdir(parents=True, exist_ok=True)
    shutil.copy(VOICE, inbox / "msg0000.wav")
    (inbox / "msg0000.txt").write_text(
        "[message]\n"
        f"origmailbox={ddi}\ncontext=frontdesk-vm\nexten={ddi}\n"
        f"callerid={VOICEMAIL_CALLER}\norigtime=1795350000\nduration=8\n"
        "msg_id=1795350000-00000042\n",
        "utf-8",
    )


async def voicemail_day(gateway: Gateway, ddi: str) -> None:
    await asyncio.to_thread(leave_voicemail, Path(gateway.settings.voicemail.spool), ddi)
    # What Asterisk's MessageWaiting for that mailbox makes the gateway do, awaited here.
    await asyncio.wait_for(gateway.voicemail.scan(("default", ddi)), 120)


async def fax_day(gateway: Gateway, ddi: str, workdir: Path) -> int:
    """HylaFAX received a fax: it runs the hook in its spool. Returns the hook's exit code."""
    recvq = workdir / "hylafax" / "recvq"
    await asyncio.to_thread(recvq.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(shutil.copy, FAX, recvq / "fax000000077.tif")
    env = {
        **os.environ,
        "FRONTDESK_FAX_URL": f"http://127.0.0.1:{gateway.http_port}",
        "FRONTDESK_FAX_SECRET": FAX_SECRET,
        "FRONTDESK_FAX_CONF": str(workdir / "no-such.conf"),
    }
    args = ["recvq/fax000000077.tif", "ttyIAX0", "000000077", "", FAX_CALLER, ddi]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HOOK), *args, cwd=recvq.parent, env=env
    )
    return await proc.wait()


def pdf_pages(path: str) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", Path(path).read_bytes()))


async def media_report() -> dict[str, Any]:
    voicemails = await Voicemail.all().prefetch_related("subscriber")
    faxes = await Notification.filter(kind=Kind.FAX).prefetch_related("subscriber")
    return {
        "faxes": [
            {
                "subscriber": n.subscriber.name,
                "caller": fax.caller_number,
                "pages": fax.pages,
                "complete": fax.complete,
                # Counted in the PDF file itself, not taken from the notification.
                "pdf_pages": sum([await asyncio.to_thread(pdf_pages, p) for p in _paths(fax)]),
            }
            for n in faxes
            for fax in [FaxPayload.from_json(n.payload)]
        ],
        "voicemails": [
            {
                "subscriber": v.subscriber.name if v.subscriber else None,
                "mailbox": v.mailbox,
                "caller": v.caller_number,
                "caller_name": v.caller_name,
                "duration": round(v.duration, 1),
                "transcript": v.transcript,
                "transcript_ok": v.transcript_ok,
            }
            for v in voicemails
        ],
    }


def _paths(fax: FaxPayload) -> list[str]:
    return [a["path"] for a in fax.attachments]


def check_media(report: dict[str, Any]) -> list[str]:
    problems = []
    [voicemail] = report["voicemails"] or [None]
    if not voicemail or not voicemail["transcript_ok"] or not voicemail["transcript"]:
        problems.append("voicemail: no transcript")
    for kind in (Kind.VOICEMAIL, Kind.FAX):
        got = sorted(d["channel"] for d in report["deliveries"] if d["kind"] == kind)
        if got != [Channel.EMAIL, Channel.TELEGRAM] or any(
            d["status"] != "sent" for d in report["deliveries"] if d["kind"] == kind
        ):
            problems.append(f"{kind}: expected one sent on telegram and one on email, got {got}")
    faxes = report.get("faxes", [])
    if [(f["pages"], f["pdf_pages"]) for f in faxes] != [(3, 3)]:
        problems.append(f"fax: expected one PDF of 3 pages, got {faxes}")
    return problems
