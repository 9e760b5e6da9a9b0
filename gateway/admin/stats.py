"""Statistics and KPIs for a period: SQL aggregates over the calls, voicemails, faxes,
messages taken, deliveries and agents' presence, grouped by subscriber, agent or caller.

Every figure is one aggregate query (no rows are loaded into Python), written once for
SQLite and PostgreSQL: the only differences, the seconds between two timestamps and the
parameter style, are in `Sql`. A period is half-open, [start, end), in UTC; a call
belongs to the period it started in.

Definitions (what the operator reads):
- inbound / outbound / internal: `Call.direction`.
- answered: an inbound call with `answered_at` (by an agent or the forward target);
  within 20 s: `answered_at - started_at <= 20 s`.
- lost: an inbound call whose outcome is `abandoned` (the caller hung up unanswered and
  left no message); missed % = lost / inbound.
- wait: `answered_at - started_at` (answered calls); handling: `ended_at - answered_at`
  (answered calls that ended).
- a call's agent: the queue member interface that answered it (`Call.answered_by` =
  `Agent.interface`).
- deliveries succeeded: `sent` or `delivered`; failed: `failed` or `dead`; the others are
  still on their way.
- signed-in time: the agent's `ready` and `paused` spans, clipped to the period (an open
  span counts until the period's end or now, whichever is first); pauses: the `paused` ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections

ANSWER_TARGET = 20  # seconds: the service level "answered within 20 s"
TOP_CALLERS = 10


class PeriodError(ValueError):
    """A period the parser does not understand."""


@dataclass(frozen=True)
class Period:
    start: datetime  # UTC, included
    end: datetime  # UTC, excluded
    label: str  # as the operator named it: 2026-11, 2026-11-30, 2026-11-01..2026-11-30


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def day_period(first: date, last: date, tz: str) -> Period:
    """The days first..last (both included) in the time zone `tz`."""
    zone = ZoneInfo(tz)
    label = first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"
    return Period(_midnight(first, zone), _midnight(last + timedelta(days=1), zone), label)


def month_period(month: str, tz: str) -> Period:
    """A calendar month, "YYYY-MM", in the time zone `tz`."""
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except ValueError as exc:
        raise PeriodError(f"not a month (YYYY-MM): {month!r}") from exc
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    zone = ZoneInfo(tz)
    return Period(_midnight(first, zone), _midnight(following, zone), first.strftime("%Y-%m"))


def previous_month(now: datetime, tz: str) -> str:
    """The month before the one `now` is in (in `tz`), as YYYY-MM."""
    local = now.astimezone(ZoneInfo(tz)).date().replace(day=1)
    return (local - timedelta(days=1)).strftime("%Y-%m")


def parse_period(text: str, now: datetime, tz: str) -> Period:
    """`today` (the default), `yesterday`, `week` (the last 7 days), `month` (this month so
    far), `YYYY-MM`, `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD`, in the time zone `tz`."""
    word = text.strip().lower()
    today = now.astimezone(ZoneInfo(tz)).date()
    if word in ("", "today"):
        return day_period(today, today, tz)
    if word == "yesterday":
        day = today - timedelta(days=1)
        return day_period(day, day, tz)
    if word == "week":
        return day_period(today - timedelta(days=6), today, tz)
    if word == "month":
        return month_period(today.strftime("%Y-%m"), tz)
    try:
        if ".." in word:
            first, last = (date.fromisoformat(part) for part in word.split("..", 1))
            if last < first:
                raise PeriodError(f"the period ends before it starts: {text!r}")
            return day_period(first, last, tz)
        if len(word) == 7:
            return month_period(word, tz)
        day = date.fromisoformat(word)
    except ValueError as exc:
        raise PeriodError(f"not a period: {text!r}") from exc
    return day_period(day, day, tz)


class Sql:
    """The connection and what differs between SQLite and PostgreSQL."""

    def __init__(self) -> None:
        self.conn = connections.get("default")
        self.pg = self.conn.capabilities.dialect == "postgres"

    def seconds(self, later: str, earlier: str) -> str:
        """Seconds from `earlier` to `later` (columns or expressions), to the millisecond."""
        if self.pg:
            return f"ROUND(CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS NUMERIC), 3)"
        return f"ROUND((julianday({later}) - julianday({earlier})) * 86400.0, 3)"

    def least(self, *terms: str) -> str:
        return f"{'LEAST' if self.pg else 'MIN'}({', '.join(terms)})"

    def greatest(self, *terms: str) -> str:
        return f"{'GREATEST' if self.pg else 'MAX'}({', '.join(terms)})"

    def at(self, moment: datetime) -> Any:
        """A timestamp parameter: as tortoise stores it in SQLite (ISO text in UTC, which
        sorts as time does), a datetime for PostgreSQL."""
        moment = moment.astimezone(UTC)
        return moment if self.pg else moment.isoformat(" ")

    async def rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        if self.pg:  # asyncpg numbers its parameters
            parts = sql.split("?")
            sql = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
        return list(await self.conn.execute_query_dict(sql, params))


@dataclass
class CallFigures:
    inbound: int = 0
    outbound: int = 0
    internal: int = 0
    answered: int = 0  # inbound with an answer
    answered_in_target: int = 0  # ... within ANSWER_TARGET seconds
    lost: int = 0  # inbound, abandoned
    forwarded: int = 0  # inbound, outcome forwarded
    voicemail: int = 0  # inbound, outcome voicemail
    wait_seconds: float = 0.0  # summed over answered calls
    handling_seconds: float = 0.0  # summed over answered calls that ended
    handled: int = 0  # answered calls that ended

    @property
    def missed_pct(self) -> float:
        return 100.0 * self.lost / self.inbound if self.inbound else 0.0

    @property
    def in_target_pct(self) -> float:
        return 100.0 * self.answered_in_target / self.answered if self.answered else 0.0

    @property
    def average_wait(self) -> float:
        return self.wait_seconds / self.answered if self.answered else 0.0

    @property
    def average_handling(self) -> float:
        return self.handling_seconds / self.handled if self.handled else 0.0


@dataclass
class ChannelFigures:
    total: int = 0
    succeeded: int = 0  # sent or delivered
    failed: int = 0  # failed or dead


@dataclass
class PresenceFigures:
    signed_in_seconds: float = 0.0
    paused_seconds: float = 0.0


@dataclass
class Kpis:
    """Everything for a period (optionally one subscriber's)."""

    period: Period
    total: CallFigures
    by_subscriber: dict[int, CallFigures]
    by_agent: dict[int, CallFigures]
    by_caller: dict[str, CallFigures]  # the busiest TOP_CALLERS inbound callers
    voicemails: dict[int, int]  # subscriber id -> voicemails left
    faxes: dict[int, tuple[int, int]]  # subscriber id -> (faxes, pages)
    taken_by_subscriber: dict[int, int]
    taken_by_agent: dict[int, int]
    deliveries: dict[str, ChannelFigures]  # channel ->
    presence: dict[int, PresenceFigures]  # agent id ->
    names: dict[str, dict[int, str]] = field(default_factory=dict)  # subscriber/agent names

    @property
    def voicemail_total(self) -> int:
        return sum(self.voicemails.values())

    @property
    def fax_total(self) -> tuple[int, int]:
        return (sum(n for n, _ in self.faxes.values()), sum(p for _, p in self.faxes.values()))

    @property
    def taken_total(self) -> int:
        return sum(self.taken_by_subscriber.values())


def _call_columns(sql: Sql) -> str:
    wait = sql.seconds("c.answered_at", "c.started_at")
    handling = sql.seconds("c.ended_at", "c.answered_at")
    inbound = "c.direction = 'inbound'"
    answered = f"{inbound} AND c.answered_at IS NOT NULL"
    return f"""
        SUM(CASE WHEN {inbound} THEN 1 ELSE 0 END) AS inbound,
        SUM(CASE WHEN c.direction = 'outbound' THEN 1 ELSE 0 END) AS outbound,
        SUM(CASE WHEN c.direction = 'internal' THEN 1 ELSE 0 END) AS internal,
        SUM(CASE WHEN {answered} THEN 1 ELSE 0 END) AS answered,
        SUM(CASE WHEN {answered} AND {wait} <= {ANSWER_TARGET} THEN 1 ELSE 0 END)
            AS answered_in_target,
        SUM(CASE WHEN {inbound} AND c.outcome = 'abandoned' THEN 1 ELSE 0 END) AS lost,
        SUM(CASE WHEN {inbound} AND c.outcome = 'forwarded' THEN 1 ELSE 0 END) AS forwarded,
        SUM(CASE WHEN {inbound} AND c.outcome = 'voicemail' THEN 1 ELSE 0 END) AS voicemail,
        SUM(CASE WHEN {answered} THEN {wait} ELSE 0 END) AS wait_seconds,
        SUM(CASE WHEN {answered} AND c.ended_at IS NOT NULL THEN {handling} ELSE 0 END)
            AS handling_seconds,
        SUM(CASE WHEN {answered} AND c.ended_at IS NOT NULL THEN 1 ELSE 0 END) AS handled"""


def _figures(row: dict[str, Any]) -> CallFigures:
    return CallFigures(
        inbound=int(row["inbound"] or 0),
        outbound=int(row["outbound"] or 0),
        internal=int(row["internal"] or 0),
        answered=int(row["answered"] or 0),
        answered_in_target=int(row["answered_in_target"] or 0),
        lost=int(row["lost"] or 0),
        forwarded=int(row["forwarded"] or 0),
        voicemail=int(row["voicemail"] or 0),
        wait_seconds=float(row["wait_seconds"] or 0),
        handling_seconds=float(row["handling_seconds"] or 0),
        handled=int(row["handled"] or 0),
    )


def _scope(column: str, subscriber_id: int | None, params: list[Any]) -> str:
    if subscriber_id is None:
        return ""
    params.append(subscriber_id)
    return f" AND {column} = ?"


async def call_figures(
    period: Period, by: str = "", subscriber_id: int | None = None, limit: int = 0
) -> dict[Any, CallFigures]:
    """Call figures grouped `by` "" (one group, key None), "subscriber", "agent" (agent
    id: the interface that answered) or "caller" (inbound calls' numbers, busiest first)."""
    sql = Sql()
    params: list[Any] = [sql.at(period.start), sql.at(period.end)]
    where = "c.started_at >= ? AND c.started_at < ?" + _scope(
        "c.subscriber_id", subscriber_id, params
    )
    join, key = "", "NULL"
    if by == "subscriber":
        key = "c.subscriber_id"
    elif by == "agent":
        join, key = " JOIN agent a ON a.interface = c.answered_by", "a.id"
    elif by == "caller":
        key = "c.caller_number"
        where += " AND c.direction = 'inbound' AND c.caller_number <> ''"
    elif by:
        raise ValueError(f"unknown grouping {by!r}")
    group = f" GROUP BY {key}" if by else ""
    order = f" ORDER BY COUNT(*) DESC, {key}" if by == "caller" else ""
    tail = f" LIMIT {int(limit)}" if limit else ""
    rows = await sql.rows(
        f'SELECT {key} AS k, {_call_columns(sql)} FROM "call" c{join} WHERE {where}'
        f"{group}{order}{tail}",
        params,
    )
    return {row["k"]: _figures(row) for row in rows if by or row["inbound"] is not None}


async def voicemails(period: Period, subscriber_id: int | None = None) -> dict[int, int]:
    sql = Sql()
    params: list[Any] = [sql.at(period.start), sql.at(period.end)]
    where = "left_at >= ? AND left_at < ?" + _scope("subscriber_id", subscriber_id, params)
    rows = await sql.rows(
        f"SELECT subscriber_id AS k, COUNT(*) AS n FROM voicemail WHERE {where} "
        "AND subscriber_id IS NOT NULL GROUP BY subscriber_id",
        params,
    )
    return {int(r["k"]): int(r["n"]) for r in rows}


async def faxes(period: Period, subscriber_id: int | None = None) -> dict[int, tuple[int, int]]:
    """Faxes received (their notifications, kind fax) and their pages (from the payload)."""
    sql = Sql()
    params: list[Any] = [sql.at(period.start), sql.at(period.end)]
    where = "kind = 'fax' AND created_at >= ? AND created_at < ?" + _scope(
        "subscriber_id", subscriber_id, params
    )
    pages = (
        "CAST(payload::jsonb ->> 'pages' AS INTEGER)"
        if sql.pg
        else "CAST(json_extract(payload, '$.pages') AS INTEGER)"
    )
    rows = await sql.rows(
        f"SELECT subscriber_id AS k, COUNT(*) AS n, SUM(COALESCE({pages}, 0)) AS pages "
        f"FROM notification WHERE {where} GROUP BY subscriber_id",
        params,
    )
    return {int(r["k"]): (int(r["n"]), int(r["pages"] or 0)) for r in rows}


async def taken(
    period: Period, by: str = "subscriber", subscriber_id: int | None = None
) -> dict[int, int]:
    """Messages, requests and appointments taken at the desk, by subscriber or agent."""
    sql = Sql()
    column = {"subscriber": "subscriber_id", "agent": "agent_id"}[by]
    params: list[Any] = [sql.at(period.start), sql.at(period.end)]
    where = "taken_at >= ? AND taken_at < ?" + _scope("subscriber_id", subscriber_id, params)
    rows = await sql.rows(
        f"SELECT {column} AS k, COUNT(*) AS n FROM taken_message WHERE {where} "
        f"AND {column} IS NOT NULL GROUP BY {column}",
        params,
    )
    return {int(r["k"]): int(r["n"]) for r in rows}


async def deliveries(period: Period, subscriber_id: int | None = None) -> dict[str, ChannelFigures]:
    """Deliveries created in the period, per channel, and how they ended."""
    sql = Sql()
    params: list[Any] = [sql.at(period.start), sql.at(period.end)]
    where = "created_at >= ? AND created_at < ?" + _scope("subscriber_id", subscriber_id, params)
    rows = await sql.rows(
        "SELECT channel AS k, COUNT(*) AS n, "
        "SUM(CASE WHEN status IN ('sent', 'delivered') THEN 1 ELSE 0 END) AS ok, "
        "SUM(CASE WHEN status IN ('failed', 'dead') THEN 1 ELSE 0 END) AS bad "
        f"FROM delivery WHERE {where} GROUP BY channel ORDER BY channel",
        params,
    )
    return {
        str(r["k"]): ChannelFigures(int(r["n"]), int(r["ok"] or 0), int(r["bad"] or 0))
        for r in rows
    }


async def presence(period: Period, now: datetime) -> dict[int, PresenceFigures]:
    """Each agent's signed-in and paused seconds within the period."""
    sql = Sql()
    until = min(period.end, now)
    start, end = sql.at(period.start), sql.at(until)
    clipped = sql.seconds(sql.least("COALESCE(ended_at, ?)", "?"), sql.greatest("started_at", "?"))
    rows = await sql.rows(
        f"SELECT agent_id AS k, SUM({clipped}) AS signed_in, "
        f"SUM(CASE WHEN presence = 'paused' THEN {clipped} ELSE 0 END) AS paused "
        "FROM presence_span WHERE presence IN ('ready', 'paused') "
        "AND started_at < ? AND (ended_at IS NULL OR ended_at > ?) GROUP BY agent_id",
        [end, end, start, end, end, start, end, start],
    )
    return {
        int(r["k"]): PresenceFigures(float(r["signed_in"] or 0), float(r["paused"] or 0))
        for r in rows
    }


async def _names(table: str, column: str, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    sql = Sql()
    marks = ", ".join("?" for _ in ids)
    rows = await sql.rows(f"SELECT id, {column} AS name FROM {table} WHERE id IN ({marks})", [*ids])
    return {int(r["id"]): str(r["name"]) for r in rows}


async def kpis(period: Period, now: datetime, subscriber_id: int | None = None) -> Kpis:
    """Every KPI of the period, for everyone or one subscriber."""
    total = (await call_figures(period, "", subscriber_id)).get(None, CallFigures())
    result = Kpis(
        period=period,
        total=total,
        by_subscriber=await call_figures(period, "subscriber", subscriber_id),
        by_agent=await call_figures(period, "agent", subscriber_id),
        by_caller=await call_figures(period, "caller", subscriber_id, TOP_CALLERS),
        voicemails=await voicemails(period, subscriber_id),
        faxes=await faxes(period, subscriber_id),
        taken_by_subscriber=await taken(period, "subscriber", subscriber_id),
        taken_by_agent=await taken(period, "agent", subscriber_id),
        deliveries=await deliveries(period, subscriber_id),
        presence=await presence(period, now) if subscriber_id is None else {},
    )
    subscribers = {k for k in result.by_subscriber if k is not None}
    agents = set(result.by_agent) | set(result.taken_by_agent) | set(result.presence)
    result.names = {
        "subscriber": await _names("subscriber", "name", subscribers),
        "agent": await _agent_names(agents),
    }
    return result


async def _agent_names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    sql = Sql()
    marks = ", ".join("?" for _ in ids)
    rows = await sql.rows(
        f"SELECT a.id AS id, u.name AS name FROM agent a JOIN app_user u ON u.id = a.user_id "
        f"WHERE a.id IN ({marks})",
        [*ids],
    )
    return {int(r["id"]): str(r["name"]) for r in rows}
