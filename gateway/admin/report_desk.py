"""/stats and /usage at the desk: statistics as text, the month's usage as a CSV document
(and /report as a subscriber's PDF), for directors and admins (`Act.SEE_STATISTICS`).

The bot adapter (bot/reports.py) shows what this returns; a refusal is audited."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.admin import report_pdf, stats, usage
from gateway.staff.identity import staff_of_chat
from gateway.staff.replies import Reply, language, not_staff, refuse
from gateway.staff.rights import Act, Owner, allowed
from locales import N_, tr
from models.db import Subscriber

Clock = Callable[[], datetime]
MAX_LINES = 12  # per section: a Telegram message holds 4096 characters
MAX_TEXT = 4000

STATS_HEAD = N_("Statistics for {period}")
STATS_CALLS = N_("Calls: {inbound} in, {outbound} out, {internal} internal")
STATS_ANSWERED = N_("Answered: {answered} ({in_target}% within 20 s); missed: {lost} ({missed}%)")
STATS_TIMES = N_("Average wait {wait} s, average handling {handling} s")
STATS_OTHER = N_(
    "Voicemails: {voicemails}; faxes: {faxes} ({pages} pages); messages taken: {taken}"
)
BY_SUBSCRIBER = N_("By subscriber:")
SUBSCRIBER_LINE = N_("{name}: {inbound} in, {answered} answered, {missed}% missed")
BY_AGENT = N_("By agent:")
AGENT_LINE = N_(
    "{name}: {answered} answered, handling {handling} s, {taken} taken, "
    "signed in {signed_in} h, paused {paused} h"
)
BY_CALLER = N_("Busiest callers:")
CALLER_LINE = N_("{number}: {calls} calls, {lost} missed")
DELIVERIES = N_("Deliveries:")
DELIVERY_LINE = N_("{channel}: {total}, {ok} succeeded, {failed} failed")
BAD_PERIOD = N_(
    "I did not understand the period. Try: today, yesterday, week, month, 2026-11, "
    "2026-11-30 or 2026-11-01..2026-11-15."
)
BAD_MONTH = N_("I did not understand the month. Try: /usage 2026-11")
NO_SUBSCRIBER = N_("There is no subscriber {id}.")
USAGE_CAPTION = N_("Usage for {month}: {count} subscribers.")
REPORT_CAPTION = N_("Report for {subscriber}, {month}.")
REPORT_USAGE = N_("Say which subscriber: /report 2026-11 <subscriber id>")


@dataclass(frozen=True)
class Document:
    filename: str
    data: bytes
    caption: str


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _pct(value: float) -> str:
    return f"{value:.1f}"


def _secs(value: float) -> str:
    return f"{value:.0f}"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f}"


def stats_text(k: stats.Kpis, lang: str) -> str:
    """The statistics of a period, as a chat message."""
    t = k.total
    faxes, pages = k.fax_total
    lines = [
        tr(lang, STATS_HEAD, period=k.period.label),
        tr(lang, STATS_CALLS, inbound=t.inbound, outbound=t.outbound, internal=t.internal),
        tr(
            lang,
            STATS_ANSWERED,
            answered=t.answered,
            in_target=_pct(t.in_target_pct),
            lost=t.lost,
            missed=_pct(t.missed_pct),
        ),
        tr(lang, STATS_TIMES, wait=_secs(t.average_wait), handling=_secs(t.average_handling)),
        tr(
            lang,
            STATS_OTHER,
            voicemails=k.voicemail_total,
            faxes=faxes,
            pages=pages,
            taken=k.taken_total,
        ),
    ]
    subscribers = sorted(
        ((sid, f) for sid, f in k.by_subscriber.items() if sid is not None),
        key=lambda item: -item[1].inbound,
    )
    if subscribers:
        lines += ["", tr(lang, BY_SUBSCRIBER)]
        for sid, f in subscribers[:MAX_LINES]:
            name = k.names["subscriber"].get(sid, str(sid))
            lines.append(
                "• "
                + tr(
                    lang,
                    SUBSCRIBER_LINE,
                    name=name,
                    inbound=f.inbound,
                    answered=f.answered,
                    missed=_pct(f.missed_pct),
                )
            )
    agents = sorted(set(k.by_agent) | set(k.taken_by_agent) | set(k.presence))
    if agents:
        lines += ["", tr(lang, BY_AGENT)]
        for aid in agents[:MAX_LINES]:
            f = k.by_agent.get(aid, stats.CallFigures())
            p = k.presence.get(aid, stats.PresenceFigures())
            lines.append(
                "• "
                + tr(
                    lang,
                    AGENT_LINE,
                    name=k.names["agent"].get(aid, str(aid)),
                    answered=f.answered,
                    handling=_secs(f.average_handling),
                    taken=k.taken_by_agent.get(aid, 0),
                    signed_in=_hours(p.signed_in_seconds),
                    paused=_hours(p.paused_seconds),
                )
            )
    if k.by_caller:
        lines += ["", tr(lang, BY_CALLER)]
        for number, f in list(k.by_caller.items())[:MAX_LINES]:
            lines.append("• " + tr(lang, CALLER_LINE, number=number, calls=f.inbound, lost=f.lost))
    if k.deliveries:
        lines += ["", tr(lang, DELIVERIES)]
        for channel, d in k.deliveries.items():
            lines.append(
                "• "
                + tr(
                    lang,
                    DELIVERY_LINE,
                    channel=channel,
                    total=d.total,
                    ok=d.succeeded,
                    failed=d.failed,
                )
            )
    text = "\n".join(lines)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


class ReportDesk:
    def __init__(self, tz: str, font: str = "", clock: Clock = _utcnow) -> None:
        self.tz = tz  # the operator's: periods and months are its days
        self.font = font
        self.clock = clock

    async def _staff(self, chat_id: int, tg: str | None, what: str) -> tuple[str, Reply | None]:
        found = await staff_of_chat(chat_id)
        if found is None:
            lang = language(None, tg)
            return lang, await not_staff(chat_id, lang, what)
        agent, who = found
        lang = language(agent, tg)
        if not allowed(who, Act.SEE_STATISTICS, Owner()):
            return lang, await refuse(chat_id, lang, what, why="not a director or admin")
        return lang, None

    async def stats(self, chat_id: int, args: str, tg: str | None) -> Reply:
        """/stats [period]"""
        lang, refused = await self._staff(chat_id, tg, f"/stats {args}".strip())
        if refused is not None:
            return refused
        now = self.clock()
        try:
            period = stats.parse_period(args, now, self.tz)
        except stats.PeriodError:
            return Reply(text=tr(lang, BAD_PERIOD))
        return Reply(text=stats_text(await stats.kpis(period, now), lang))

    async def _month_and_subscriber(
        self, args: str, lang: str, usage_hint: str
    ) -> tuple[str, int | None] | Reply:
        words = args.split()
        month = self.clock().astimezone(ZoneInfo(self.tz)).strftime("%Y-%m")
        if words and "-" in words[0]:
            month = words.pop(0)
        try:
            stats.month_period(month, self.tz)
        except stats.PeriodError:
            return Reply(text=tr(lang, usage_hint))
        if not words:
            return month, None
        if not words[0].isdigit() or not await Subscriber.exists(id=int(words[0])):
            return Reply(text=tr(lang, NO_SUBSCRIBER, id=words[0]))
        return month, int(words[0])

    async def usage(self, chat_id: int, args: str, tg: str | None) -> tuple[Reply, Document | None]:
        """/usage [YYYY-MM] [subscriber id]: the CSV (this month so far by default)."""
        lang, refused = await self._staff(chat_id, tg, f"/usage {args}".strip())
        if refused is not None:
            return refused, None
        asked = await self._month_and_subscriber(args, lang, BAD_MONTH)
        if isinstance(asked, Reply):
            return asked, None
        month, subscriber_id = asked
        rows = await usage.usage(month, self.tz, subscriber_id)
        caption = tr(lang, USAGE_CAPTION, month=month, count=len(rows))
        document = Document(usage.filename(month, subscriber_id), usage.to_csv(rows), caption)
        return Reply(), document

    async def report(
        self, chat_id: int, args: str, tg: str | None
    ) -> tuple[Reply, Document | None]:
        """/report [YYYY-MM] <subscriber id>: the subscriber's PDF."""
        lang, refused = await self._staff(chat_id, tg, f"/report {args}".strip())
        if refused is not None:
            return refused, None
        asked = await self._month_and_subscriber(args, lang, REPORT_USAGE)
        if isinstance(asked, Reply):
            return asked, None
        month, subscriber_id = asked
        if subscriber_id is None:
            return Reply(text=tr(lang, REPORT_USAGE)), None
        subscriber = await Subscriber.get(id=subscriber_id)
        # The subscriber's report, in the subscriber's language.
        pdf_lang = subscriber.language or lang
        data = await report_pdf.report(month, self.tz, subscriber_id, pdf_lang, self.font)
        caption = tr(lang, REPORT_CAPTION, subscriber=subscriber.name, month=month)
        return Reply(), Document(f"report-{month}-{subscriber_id}.pdf", data, caption)
