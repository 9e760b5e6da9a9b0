"""Statistics and usage through the running service (gateway and bot as `main.py run`
composes them) against the sandbox Bot API, AMI and SMTP sink over loopback: /usage sends
a director the month's CSV as a document, /stats answers with the figures, a supervisor is
refused, and on the 1st (a controlled clock) last month's CSV is emailed once to the
operator's reports address. The command line writes the same CSV and a PDF."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from bot.runtime import Runtime
from gateway.admin import report_desk, stats, usage
from gateway.staff import people
from gateway.staff.replies import NOT_YOURS
from locales import tr
from models.database import close_db, migrate, open_db
from models.db import Delivery
from models.settings import with_section
from sandbox.ami_server import AmiServer
from sandbox.smtp_sink import SmtpSink
from sandbox.telegram_api import BotApiServer, Call
from tests.report_seed import MONTH, TZ, seed
from tests.stack import environment, run_main, sandbox_config, sandbox_settings

TOKEN = "123456:TEST-reports"
DIRECTOR_CHAT, SUPERVISOR_CHAT = 6101, 6102
REPORTS_TO = "billing@example.org"
FIRST_OF_DECEMBER = datetime(2026, 11, 30, 22, 0, 5, tzinfo=UTC)  # 00:00:05 in Athens
WAIT = 10.0


@dataclass
class Service:
    bot: BotApiServer
    sink: SmtpSink
    runtime: Runtime
    database: Path

    async def say(self, chat: int, text: str, match: Callable[[Call], bool]) -> Call:
        before = {id(c) for c in self.bot.requests}
        self.bot.inject_message(chat, text)
        return await self.bot.wait_for(
            lambda c: id(c) not in before and c.params.get("chat_id") == chat and match(c),
            timeout=WAIT,
        )


def text_starts(words: str) -> Callable[[Call], bool]:
    return lambda c: c.method == "sendMessage" and c.params.get("text", "").startswith(words)


def linked(chat: int) -> Callable[[Call], bool]:
    return lambda c: (
        c.params.get("chat_id") == chat
        and c.params.get("text", "").startswith("Linked to the desk as")
    )


def document(c: Call) -> bool:
    return c.method == "sendDocument" and c.ok


def sent_file(c: Call) -> dict[str, Any]:
    """The document a sendDocument delivered (its file_id, file_name), and its caption."""
    assert c.result is not None
    return {**c.result["document"], "caption": c.result.get("caption")}


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    database = tmp_path / "reports.sqlite3"
    async with (
        AmiServer(secret="s") as ami,
        BotApiServer(TOKEN) as bot,
        SmtpSink() as sink,
    ):
        settings = sandbox_settings(database, ami, bot, TOKEN)
        settings = with_section(settings, "locale", default_timezone=TZ)
        settings = with_section(
            settings, "smtp", host=sink.host, port=sink.port, security="none", timeout=5.0
        )
        settings = with_section(settings, "reports", email=REPORTS_TO)
        await migrate(settings.database.url)
        await open_db(settings.database.url)
        await seed(calls=1500)  # November 2026, before the service looks at the calendar
        # The seeded outbox rows are history: only the usage email is for the outbox now.
        await Delivery.filter(status__in=("pending", "sending")).update(status="dead")
        await close_db()
        runtime = Runtime(settings)
        runtime.gateway.reports.clock = lambda: FIRST_OF_DECEMBER
        runtime.reports.clock = lambda: FIRST_OF_DECEMBER
        await runtime.start()
        try:
            director = await people.add_staff(name="Irini", role="director")
            supervisor = await people.add_staff(name="Sofia", role="supervisor")
            for chat, made in ((DIRECTOR_CHAT, director), (SUPERVISOR_CHAT, supervisor)):
                bot.inject_message(chat, f"/start {made.link_code}")
                await bot.wait_for(linked(chat), timeout=WAIT)
            yield Service(bot, sink, runtime, database)
        finally:
            await runtime.stop()


async def test_usage_in_the_bot_is_the_months_csv(service: Service) -> None:
    sent = await service.say(DIRECTOR_CHAT, f"/usage {MONTH}", document)
    doc = sent_file(sent)
    assert doc["file_name"] == "usage-2026-11.csv"
    data = service.bot.file_bytes(doc["file_id"])
    assert data == usage.to_csv(await usage.usage(MONTH, TZ))
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert len(rows) == 6 and sum(int(r["calls_inbound"]) for r in rows) > 500
    assert doc["caption"] == tr("en", report_desk.USAGE_CAPTION, month=MONTH, count=6)

    one = await service.say(DIRECTOR_CHAT, f"/usage {MONTH} {rows[0]['subscriber_id']}", document)
    assert service.bot.file_bytes(sent_file(one)["file_id"]).decode().count("\n") == 2

    pdf = await service.say(DIRECTOR_CHAT, f"/report {MONTH} {rows[0]['subscriber_id']}", document)
    reader = PdfReader(io.BytesIO(service.bot.file_bytes(sent_file(pdf)["file_id"])))
    assert f"Inbound calls {rows[0]['calls_inbound']}" in reader.pages[0].extract_text()

    # Supervisors do not see the operator's figures: refused, nothing sent.
    await service.say(SUPERVISOR_CHAT, f"/usage {MONTH}", text_starts(tr("en", NOT_YOURS)))
    await service.say(SUPERVISOR_CHAT, "/stats", text_starts(tr("en", NOT_YOURS)))
    assert not [c for c in service.bot.messages_to(SUPERVISOR_CHAT) if c.method == "sendDocument"]


async def test_stats_in_the_bot(service: Service) -> None:
    head = tr("en", report_desk.STATS_HEAD, period=MONTH)
    answer = await service.say(DIRECTOR_CHAT, f"/stats {MONTH}", text_starts(head))
    text = answer.params["text"]
    total = (await stats.call_figures(stats.month_period(MONTH, TZ)))[None]
    assert f"Calls: {total.inbound} in, {total.outbound} out" in text
    assert tr("en", report_desk.BY_AGENT) in text and "Agent 1" in text
    await service.say(DIRECTOR_CHAT, "/stats someday", text_starts("I did not understand"))


async def test_the_1st_of_the_month_emails_last_months_csv_once(service: Service) -> None:
    [mail] = await service.sink.wait_messages(1, timeout=WAIT)
    assert mail.rcpt_tos == (REPORTS_TO,)
    assert mail.message["Subject"] == tr("en", usage.SUBJECT, month=MONTH)
    [attached] = list(mail.message.iter_attachments())
    assert attached.get_filename() == "usage-2026-11.csv"
    assert attached.get_content().encode() == usage.to_csv(await usage.usage(MONTH, TZ))
    # Later rounds that day (and a restart) find it sent: nothing more is queued.
    assert await service.runtime.gateway.reports.due() == 0
    assert await Delivery.filter(kind="usage_report").count() == 1
    assert len(service.sink.messages) == 1


async def test_command_line_usage_and_report(tmp_path: Path) -> None:
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot:
        database = tmp_path / "cli.sqlite3"
        config = sandbox_config(tmp_path, ami, bot, database)
        settings = sandbox_settings(database, ami, bot, TOKEN)
        await migrate(settings.database.url)
        await open_db(settings.database.url)
        seeded = await seed(calls=400)
        expected = usage.to_csv(await usage.usage(MONTH, TZ))
        await close_db()
        env = environment(FRONTDESK__LOCALE__DEFAULT_TIMEZONE=TZ)
        out_csv, out_pdf = tmp_path / "usage.csv", tmp_path / "report.pdf"
        await run_main("usage", "-c", str(config), "--month", MONTH, "--csv", str(out_csv), env=env)
        assert out_csv.read_bytes() == expected
        sub = seeded.subscribers[0]
        await run_main(
            "report", "-c", str(config), "--month", MONTH, "--subscriber", str(sub.id),
            "--pdf", str(out_pdf), env=env,
        )  # fmt: skip
        text = PdfReader(out_pdf).pages[0].extract_text()
        row = next(csv.DictReader(io.StringIO(expected.decode())))
        assert f"Fax pages {row['fax_pages']}" in text
