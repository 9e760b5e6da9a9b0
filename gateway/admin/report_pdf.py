"""The printable monthly report of one subscriber: the usage CSV's totals and a chart of
the calls of each day by outcome (stacked bars drawn with fpdf2's primitives).

Text is in the subscriber's language. The PDF's built-in font (Helvetica) has only Latin
letters: Greek, Russian and Chinese reports need `reports.font`, a TrueType font that
has them (e.g. DejaVu Sans for Greek and Russian, Noto Sans CJK for Chinese); without
it such a report is written in English (the figures are the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF

from gateway.admin.stats import Period, Sql, month_period
from gateway.admin.usage import UsageRow, usage
from locales import N_, tr
from models.vocab import Language

# The chart's stacks, bottom to top, and their colours.
OUTCOMES: tuple[tuple[str, str, tuple[int, int, int]], ...] = (
    ("answered", N_("Answered by an agent"), (46, 139, 87)),
    ("forwarded", N_("Forwarded to the subscriber"), (70, 130, 180)),
    ("voicemail", N_("Calls to voicemail"), (218, 165, 32)),
    ("missed", N_("Missed (hung up unanswered)"), (205, 92, 92)),
    ("other", N_("Outgoing and other"), (150, 150, 150)),
)

# The totals, as the CSV's columns.
LABELS: tuple[tuple[str, str], ...] = (
    ("calls_inbound", N_("Inbound calls")),
    ("calls_outbound", N_("Outbound calls")),
    ("calls_internal", N_("Internal calls")),
    ("answered", N_("Answered by an agent")),
    ("forwarded", N_("Forwarded to the subscriber")),
    ("voicemail_calls", N_("Calls to voicemail")),
    ("missed", N_("Missed (hung up unanswered)")),
    ("minutes_inbound", N_("Inbound minutes (billed)")),
    ("seconds_inbound", N_("Inbound seconds")),
    ("minutes_outbound", N_("Outbound minutes (billed)")),
    ("seconds_outbound", N_("Outbound seconds")),
    ("voicemails", N_("Voicemails")),
    ("messages_taken", N_("Messages taken")),
    ("faxes", N_("Faxes")),
    ("fax_pages", N_("Fax pages")),
    ("sms_parts", N_("SMS parts")),
    ("mms", N_("MMS")),
)
TITLE = N_("Usage report: {subscriber}, {month}")
CHART = N_("Calls per day")
FOOT = N_("Minutes are billed by the started minute of each call.")


@dataclass(frozen=True)
class DayCalls:
    day: int  # of the month, from 1
    counts: dict[str, int]  # outcome -> calls

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def calls_per_day(period: Period, tz: str, subscriber_id: int) -> list[DayCalls]:
    """Each day's calls by outcome (one grouped query; days in the time zone `tz`)."""
    sql = Sql()
    zone = ZoneInfo(tz)
    day = period.start.astimezone(zone).date()
    days: list[datetime] = []
    while True:
        start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(period.start.tzinfo)
        if start >= period.end:
            break
        days.append(start)
        day += timedelta(days=1)
    bounds = [*days[1:], period.end]
    bucket = "CASE " + " ".join(f"WHEN c.started_at < ? THEN {i}" for i in range(len(bounds)))
    bucket += " END"
    outcome = (
        "CASE WHEN c.direction <> 'inbound' THEN 'other' "
        "WHEN c.outcome = 'answered' THEN 'answered' "
        "WHEN c.outcome = 'forwarded' THEN 'forwarded' "
        "WHEN c.outcome = 'voicemail' THEN 'voicemail' "
        "WHEN c.outcome = 'abandoned' THEN 'missed' ELSE 'other' END"
    )
    params: list[Any] = [sql.at(b) for b in bounds]
    params += [sql.at(period.start), sql.at(period.end), subscriber_id]
    rows = await sql.rows(
        f"SELECT {bucket} AS day, {outcome} AS outcome, COUNT(*) AS n "
        'FROM "call" c WHERE c.started_at >= ? AND c.started_at < ? AND c.subscriber_id = ? '
        "GROUP BY 1, 2",
        params,
    )
    counts: list[dict[str, int]] = [{key: 0 for key, _, _ in OUTCOMES} for _ in days]
    for row in rows:
        counts[int(row["day"])][str(row["outcome"])] += int(row["n"])
    return [DayCalls(i + 1, c) for i, c in enumerate(counts)]


class _Writer:
    def __init__(self, lang: str, font: str) -> None:
        self.pdf = FPDF(orientation="P", unit="mm", format="A4")
        self.pdf.set_auto_page_break(auto=True, margin=15)
        self.pdf.add_page()
        self.family = "Helvetica"
        if font and Path(font).is_file():
            self.pdf.add_font("report", "", font)
            self.family = "report"
        elif not _latin(lang):
            lang = Language.EN  # the built-in font cannot write it
        self.lang = lang

    def text(self, msgid: str, **values: Any) -> str:
        return self.safe(tr(self.lang, msgid, **values))

    def safe(self, text: str) -> str:
        """What the font can write: the built-in one has no letters beyond Latin-1 (a
        subscriber's name in Greek shows as "?" without `reports.font`)."""
        if self.family != "Helvetica":
            return text
        return text.encode("cp1252", errors="replace").decode("cp1252")

    def font(self, size: float) -> None:
        self.pdf.set_font(self.family, size=size)


def _latin(lang: str) -> bool:
    msgids = [m for _, m in LABELS] + [m for _, m, _ in OUTCOMES] + [TITLE, CHART, FOOT]
    sample = "".join(tr(lang, msgid) for msgid in msgids)
    try:
        sample.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _chart(w: _Writer, days: list[DayCalls], top: float) -> float:
    pdf = w.pdf
    left, width, height = 22.0, 170.0, 70.0
    w.font(12)
    pdf.set_xy(15, top)
    pdf.cell(0, 8, w.text(CHART))
    top += 10
    peak = max((d.total for d in days), default=0)
    step = max(1, -(-peak // 5))  # five grid lines, whole calls
    scale_max = step * 5
    pdf.set_draw_color(200, 200, 200)
    w.font(7)
    for i in range(6):
        y = top + height - height * i / 5
        pdf.line(left, y, left + width, y)
        pdf.set_xy(left - 12, y - 2)
        pdf.cell(10, 4, str(step * i), align="R")
    slot = width / max(len(days), 1)
    for d in days:
        x = left + slot * (d.day - 1) + slot * 0.15
        y = top + height
        for key, _, colour in OUTCOMES:
            n = d.counts.get(key, 0)
            if not n:
                continue
            h = height * n / scale_max
            pdf.set_fill_color(*colour)
            pdf.rect(x, y - h, slot * 0.7, h, style="F")
            y -= h
        if d.day == 1 or d.day % 5 == 0:
            pdf.set_xy(x - 2, top + height + 1)
            pdf.cell(slot * 0.7 + 4, 4, str(d.day), align="C")
    legend = top + height + 7
    x = left
    for _, msgid, colour in OUTCOMES:
        pdf.set_fill_color(*colour)
        pdf.rect(x, legend + 1, 3, 3, style="F")
        label = w.text(msgid)
        pdf.set_xy(x + 4, legend)
        pdf.cell(0, 5, label)
        x += 8 + pdf.get_string_width(label)
    return legend + 10


def render(row: UsageRow, days: list[DayCalls], lang: str, font: str = "") -> bytes:
    """The PDF of one subscriber's month."""
    w = _Writer(lang, font)
    pdf = w.pdf
    pdf.set_title(w.safe(f"{row.subscriber} {row.month}"))
    w.font(16)
    pdf.set_xy(15, 15)
    pdf.multi_cell(0, 8, w.text(TITLE, subscriber=row.subscriber, month=row.month))
    top = _chart(w, days, pdf.get_y() + 4)
    w.font(10)
    pdf.set_xy(15, top)
    values = {key: getattr(row, key) for key, _ in LABELS}
    for key, msgid in LABELS:
        pdf.set_x(15)
        pdf.cell(90, 6, w.text(msgid), border="B")
        pdf.cell(40, 6, str(values[key]), border="B", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    w.font(8)
    pdf.set_x(15)
    pdf.multi_cell(0, 5, w.text(FOOT))
    return bytes(pdf.output())


async def report(month: str, tz: str, subscriber_id: int, lang: str, font: str = "") -> bytes:
    """One subscriber's monthly report, as PDF bytes (the same figures as its CSV row)."""
    rows = await usage(month, tz, subscriber_id)
    if not rows:
        raise LookupError(f"no subscriber {subscriber_id}")
    days = await calls_per_day(month_period(month, tz), tz, subscriber_id)
    return render(rows[0], days, lang, font)
