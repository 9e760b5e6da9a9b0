"""A fax from the HylaFAX hook to the subscriber, through the running service.

The real hook script (deploy/hylafax/faxrcvd-frontdesk) runs as HylaFAX would start it,
in a spool directory, against Runtime's /hooks/fax; the PDF reaches the sandbox Bot API
as a document and the SMTP sink as an attachment.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bot.runtime import Runtime
from gateway.control import admin
from models.database import migrate
from models.db import Role, Urgency, User
from models.settings import with_section
from sandbox.ami_server import AmiServer
from sandbox.smtp_sink import SmtpSink
from sandbox.telegram_api import BotApiServer
from tests.e2e.test_fax import hook, signed_request
from tests.stack import sandbox_settings

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "deploy" / "hylafax" / "faxrcvd-frontdesk"
FAXES = Path(__file__).parents[1] / "fixtures" / "fax"
TOKEN = "123456:FAX-token"
SECRET = "fax-shared-secret-for-tests"
CHAT, ADMIN_CHAT = 7070, 9090
DDI = "2100080"
WAIT = 20.0


@dataclass
class Office:
    bot: BotApiServer
    smtp: SmtpSink
    runtime: Runtime
    spool: Path

    async def receive(self, fixture: str, commid: str, error: str = "") -> int:
        """HylaFAX received a fax: it runs the hook in its spool; returns the exit code."""
        recvq = self.spool / "recvq"
        recvq.mkdir(parents=True, exist_ok=True)
        shutil.copy(FAXES / fixture, recvq / f"fax{commid}.tif")
        env = {
            **os.environ,
            "FRONTDESK_FAX_URL": f"http://127.0.0.1:{self.runtime.gateway.http_port}",
            "FRONTDESK_FAX_SECRET": SECRET,
            "FRONTDESK_FAX_CONF": str(self.spool / "none.conf"),
            "FRONTDESK_FAX_RETRIES": "0",
        }
        args = [f"recvq/fax{commid}.tif", "ttyIAX0", commid, error, "+302101234567", DDI]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(HOOK), *args, cwd=self.spool, env=env
        )
        return await proc.wait()


def tiffs_in(archive: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(archive.rglob("*.tif"))]


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", pdf))


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[Office]:
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot, SmtpSink() as smtp:
        s = sandbox_settings(tmp_path / "fax.sqlite3", ami, bot, TOKEN)
        s = with_section(s, "smtp", host=smtp.host, port=smtp.port, security="none")
        s = with_section(s, "fax", secret=SECRET, archive=str(tmp_path / "archive"))
        await migrate(s.database.url)
        runtime = Runtime(s)
        await runtime.start()
        try:
            created = await admin.add_subscriber(
                name="Λογιστήριο", ddis=[DDI], language="el", timezone="Europe/Athens"
            )
            sid = created.subscriber.id
            await admin.set_contact_points(sid, email="acc@example.org")
            await admin.set_route(sid, "fax", Urgency.NORMAL, ["email", "telegram"])
            await User.create(name="Ops", role=Role.ADMIN, telegram_chat_id=ADMIN_CHAT)
            bot.inject_message(CHAT, f"/start {created.link_code}", language_code="el")
            await bot.wait_for(lambda c: c.method == "sendMessage", timeout=WAIT)
            yield Office(bot, smtp, runtime, tmp_path / "spool")
        finally:
            await runtime.stop()


async def test_a_three_page_fax_reaches_the_subscriber_as_a_pdf(office: Office) -> None:
    assert await office.receive("g4-3pages.tif", "000000123") == 0
    [email] = await office.smtp.wait_messages(1, timeout=WAIT)
    [pdf] = list(email.message.iter_attachments())
    assert pdf.get_content_type() == "application/pdf"
    data = pdf.get_content()
    assert data.startswith(b"%PDF") and page_count(data) == 3
    body = email.message.get_body(("plain",)).get_content()
    assert "Φαξ για Λογιστήριο" in body and "3 σελίδες" in body and "+302101234567" in body


async def test_a_second_hook_call_for_the_same_fax_tells_nobody_twice(office: Office) -> None:
    assert await office.receive("g4-3pages.tif", "000000124") == 0
    assert await office.receive("g4-3pages.tif", "000000124") == 0  # a retried hook
    await office.smtp.wait_messages(1, timeout=WAIT)
    await office.runtime.gateway.outbox.claim()  # nothing else is due
    assert len(office.smtp.messages) == 1


async def test_a_corrupt_fax_is_kept_reported_and_the_admins_told(office: Office) -> None:
    # The hook's job is done once the gateway archived it: exit 0 (with a warning).
    assert await office.receive("corrupt.tif", "000000125") == 0
    alert = await office.bot.wait_for(
        lambda c: c.method == "sendMessage" and c.params["chat_id"] == ADMIN_CHAT, timeout=WAIT
    )
    assert "000000125" in alert.params["text"] and "fax-000000125" in alert.params["text"]
    [email] = await office.smtp.wait_messages(1, timeout=WAIT)
    assert "δεν ήταν αναγνώσιμο" in email.message.get_body(("plain",)).get_content()
    archive = Path(office.runtime.settings.fax.archive)
    assert await asyncio.to_thread(tiffs_in, archive) == [(FAXES / "corrupt.tif").read_bytes()]


async def test_bad_metadata_is_kept_delivered_and_the_admins_told(office: Office) -> None:
    # A hook on a fax server whose clock ran wild: the gateway archives the fax first, then
    # refuses the field (422, so the hook stops), delivers it and tells the admins.
    tiff = (FAXES / "g4-3pages.tif").read_bytes()
    fields = {"commid": "000000126", "caller": "+302101234567", "called": DDI}
    body, content_type = hook.build_body(
        {**fields, "received_at": "0001-01-01T00:00:00+14:00"}, "fax000000126.tif", tiff
    )
    url = f"http://127.0.0.1:{office.runtime.gateway.http_port}/hooks/fax"
    headers = {**signed_request(body, secret=SECRET), "Content-Type": content_type}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as r,
    ):
        assert r.status == 422
        assert (await r.json())["bad_metadata"].startswith("received_at")
    alert = await office.bot.wait_for(
        lambda c: c.method == "sendMessage" and c.params["chat_id"] == ADMIN_CHAT, timeout=WAIT
    )
    assert "000000126" in alert.params["text"] and "bad metadata" in alert.params["text"]
    [email] = await office.smtp.wait_messages(1, timeout=WAIT)
    [pdf] = list(email.message.iter_attachments())
    assert page_count(pdf.get_content()) == 3
    archive = Path(office.runtime.settings.fax.archive)
    assert await asyncio.to_thread(tiffs_in, archive) == [tiff]
