"""The monthly usage (gateway/admin/usage.py): the CSV of a seeded month against counts
written here in plain SQL, the PDF report (opened with pypdf) with the same totals, and
the 1st-of-month email on a controlled clock."""

from __future__ import annotations

import base64
import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pypdf import PdfReader
from tortoise import connections

from gateway.admin import report_pdf, usage
from gateway.admin.usage import COLUMNS, MonthlyUsage
from locales import tr
from models.db import Delivery
from tests.plain_sql import json_int, secs
from tests.report_seed import END_SQL, MONTH, START_SQL, TZ, seed

IN_MONTH = f"started_at >= '{START_SQL}' AND started_at < '{END_SQL}'"


async def one(sql: str) -> Any:
    rows = await connections.get("default").execute_query_dict(sql)
    return next(iter(rows[0].values()))


async def expected_row(sub_id: int, name: str) -> dict[str, str]:
    """One subscriber's usage, counted here: each figure its own query."""
    calls = f'SELECT COUNT(*) FROM "call" WHERE {IN_MONTH} AND subscriber_id = {sub_id}'
    inbound = f"{calls} AND direction = 'inbound'"
    length = secs("ended_at", "started_at")  # whole seconds seeded

    async def seconds_and_minutes(direction: str) -> tuple[int, int]:
        rows = await connections.get("default").execute_query_dict(
            f'SELECT {length} AS s FROM "call" WHERE {IN_MONTH} AND subscriber_id = {sub_id} '
            f"AND direction = '{direction}' AND ended_at IS NOT NULL"
        )
        seconds = [int(r["s"]) for r in rows]
        return sum(seconds), sum(-(-s // 60) for s in seconds)  # by the started minute

    sec_in, min_in = await seconds_and_minutes("inbound")
    sec_out, min_out = await seconds_and_minutes("outbound")
    sent = "COALESCE(d.sent_at, d.created_at)"
    parts = (
        "SELECT COUNT(*) FROM delivery_part p JOIN delivery d ON d.id = p.delivery_id "
        f"WHERE d.subscriber_id = {sub_id} AND {sent} >= '{START_SQL}' AND {sent} < '{END_SQL}'"
    )
    fax = (
        f"FROM notification WHERE kind = 'fax' AND subscriber_id = {sub_id} "
        f"AND created_at >= '{START_SQL}' AND created_at < '{END_SQL}'"
    )
    figures = {
        "subscriber_id": sub_id,
        "subscriber": name,
        "month": MONTH,
        "calls_inbound": await one(inbound),
        "calls_outbound": await one(f"{calls} AND direction = 'outbound'"),
        "calls_internal": await one(f"{calls} AND direction = 'internal'"),
        "answered": await one(f"{inbound} AND outcome = 'answered'"),
        "forwarded": await one(f"{inbound} AND outcome = 'forwarded'"),
        "voicemail_calls": await one(f"{inbound} AND outcome = 'voicemail'"),
        "missed": await one(f"{inbound} AND outcome = 'abandoned'"),
        "seconds_inbound": sec_in,
        "minutes_inbound": min_in,
        "seconds_outbound": sec_out,
        "minutes_outbound": min_out,
        "voicemails": await one(
            f"SELECT COUNT(*) FROM voicemail WHERE subscriber_id = {sub_id} "
            f"AND left_at >= '{START_SQL}' AND left_at < '{END_SQL}'"
        ),
        "messages_taken": await one(
            f"SELECT COUNT(*) FROM taken_message WHERE subscriber_id = {sub_id} "
            f"AND taken_at >= '{START_SQL}' AND taken_at < '{END_SQL}'"
        ),
        "faxes": await one(f"SELECT COUNT(*) {fax}"),
        "fax_pages": await one(f"SELECT COALESCE(SUM({json_int('payload', 'pages')}), 0) {fax}"),
        "sms_parts": await one(f"{parts} AND p.channel = 'sms'"),
        "mms": await one(f"{parts} AND p.channel = 'mms'"),
    }
    return {key: str(value) for key, value in figures.items()}


async def test_usage_csv_equals_plain_sql_counts(db: str) -> None:
    seeded = await seed()
    data = usage.to_csv(await usage.usage(MONTH, TZ))
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == len(seeded.subscribers) + 1  # the idle office has its row of zeros
    by_id = {int(r["subscriber_id"]): r for r in rows}
    for sub in seeded.subscribers:
        assert by_id[sub.id] == await expected_row(sub.id, sub.name)
    assert sum(int(r["calls_inbound"]) for r in rows) > 2000
    idle = rows[-1]
    assert idle["subscriber"] == "Idle office"
    assert {idle[c] for c in COLUMNS[3:]} == {"0"}

    one_row = await usage.usage(MONTH, TZ, seeded.subscribers[2].id)
    assert [r.subscriber_id for r in one_row] == [seeded.subscribers[2].id]
    assert {k: str(v) for k, v in zip(COLUMNS, one_row[0].__dict__.values(), strict=True)} == (
        by_id[seeded.subscribers[2].id]
    )


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


async def test_pdf_opens_and_has_the_csv_totals(db: str) -> None:
    seeded = await seed(calls=2000)
    sub = seeded.subscribers[0]
    data = await report_pdf.report(MONTH, TZ, sub.id, "en")
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert tr("en", report_pdf.TITLE, subscriber=sub.name, month=MONTH) in text
    want = await expected_row(sub.id, sub.name)
    for key, msgid in report_pdf.LABELS:
        found = re.search(rf"^{re.escape(tr('en', msgid))}\s*(\d+)$", text, re.MULTILINE)
        assert found is not None, (msgid, text)
        assert found.group(1) == want[key], key
    # The chart's days add up to the month's calls.
    days = await report_pdf.calls_per_day(usage.month_period(MONTH, TZ), TZ, sub.id)
    assert len(days) == 30
    total = int(want["calls_inbound"]) + int(want["calls_outbound"]) + int(want["calls_internal"])
    assert sum(d.total for d in days) == total
    assert sum(d.counts["missed"] for d in days) == int(want["missed"])


async def test_pdf_in_a_language_the_builtin_font_cannot_write(db: str) -> None:
    seeded = await seed(calls=100)
    seeded.subscribers[0].name = "Γραφείο"  # a name the built-in font cannot write either
    await seeded.subscribers[0].save()
    data = await report_pdf.report(MONTH, TZ, seeded.subscribers[0].id, "ru")
    assert tr("en", "Inbound calls") in pdf_text(data)  # English, with the same figures


async def test_the_1st_of_the_month_sends_last_months_usage_once(db: str) -> None:
    seeded = await seed(calls=300)
    woken: list[int] = []
    now = datetime(2026, 11, 30, 21, 59, tzinfo=UTC)  # 23:59 on the 30th in Athens
    job = MonthlyUsage(
        ["billing@example.org", " boss@example.org "],
        TZ,
        "en",
        on_new=lambda: woken.append(1),
        clock=lambda: now,
    )
    assert await job.due() == 0  # the 30th: September's was never due now either
    now = datetime(2026, 11, 30, 22, 0, 1, tzinfo=UTC)  # 00:00:01 on 1 December in Athens
    assert await job.due() == 2
    for later in (timedelta(minutes=10), timedelta(days=1), timedelta(days=6)):
        now = datetime(2026, 11, 30, 22, 0, 1, tzinfo=UTC) + later
        assert await job.due() == 0  # once
    sent = await Delivery.filter(kind="usage_report").order_by("address")
    assert [d.address for d in sent] == ["billing@example.org", "boss@example.org"]
    assert woken == [1]
    mail = sent[0]
    assert mail.channel == "email"
    assert mail.subject == tr("en", usage.SUBJECT, month=MONTH)
    (attached,) = mail.attachments
    assert attached["filename"] == "usage-2026-11.csv"
    csv_rows = list(csv.DictReader(io.StringIO(base64.b64decode(attached["data_b64"]).decode())))
    assert {int(r["subscriber_id"]) for r in csv_rows} >= {s.id for s in seeded.subscribers}
    assert csv_rows == list(
        csv.DictReader(io.StringIO(usage.to_csv(await usage.usage(MONTH, TZ)).decode()))
    )

    # Down on the 1st, up on the 3rd: sent then; past the first week: not any more.
    now = datetime(2027, 1, 3, 9, tzinfo=UTC)
    assert await job.due() == 2
    now = datetime(2027, 2, 8, 9, tzinfo=UTC)
    assert await job.due() == 0
    assert await MonthlyUsage([], TZ, "en", clock=lambda: now).due() == 0  # off
