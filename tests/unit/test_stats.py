"""Statistics and KPIs (gateway/admin/stats.py) on a seeded month of thousands of calls,
against counts written here in plain SQL (not the code under test), and the period
parser."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from tortoise import connections

from gateway.admin import stats
from tests.plain_sql import epoch, greatest, json_int, least, secs
from tests.report_seed import END, END_SQL, MONTH, START, START_SQL, TZ, seed

NOW = datetime(2026, 12, 15, tzinfo=UTC)
IN_MONTH = f"started_at >= '{START_SQL}' AND started_at < '{END_SQL}'"


async def q(sql: str) -> list[dict[str, Any]]:
    return list(await connections.get("default").execute_query_dict(sql))


async def one(sql: str) -> Any:
    rows = await q(sql)
    return next(iter(rows[0].values()))


async def expected_calls(where: str = "1 = 1") -> dict[str, Any]:
    inbound = f"{IN_MONTH} AND direction = 'inbound' AND {where}"
    answered = f"{inbound} AND answered_at IS NOT NULL"
    return {
        "inbound": await one(f'SELECT COUNT(*) FROM "call" WHERE {inbound}'),
        "outbound": await one(
            f"SELECT COUNT(*) FROM \"call\" WHERE {IN_MONTH} AND direction = 'outbound' AND {where}"
        ),
        "internal": await one(
            f"SELECT COUNT(*) FROM \"call\" WHERE {IN_MONTH} AND direction = 'internal' AND {where}"
        ),
        "answered": await one(f'SELECT COUNT(*) FROM "call" WHERE {answered}'),
        "in_target": await one(
            f'SELECT COUNT(*) FROM "call" WHERE {answered} '
            f"AND {secs('answered_at', 'started_at')} <= 20"
        ),
        "lost": await one(
            f"SELECT COUNT(*) FROM \"call\" WHERE {inbound} AND outcome = 'abandoned'"
        ),
        "wait": await one(
            f'SELECT AVG({secs("answered_at", "started_at")}) FROM "call" WHERE {answered}'
        ),
        "handling": await one(
            f'SELECT AVG({secs("ended_at", "answered_at")}) FROM "call" '
            f"WHERE {answered} AND ended_at IS NOT NULL"
        ),
    }


def check(got: stats.CallFigures, want: dict[str, Any]) -> None:
    assert got.inbound == want["inbound"]
    assert got.outbound == want["outbound"]
    assert got.internal == want["internal"]
    assert got.answered == want["answered"]
    assert got.answered_in_target == want["in_target"]
    assert got.lost == want["lost"]
    assert got.missed_pct == pytest.approx(100 * want["lost"] / want["inbound"])
    assert got.average_wait == pytest.approx(want["wait"])
    assert got.average_handling == pytest.approx(want["handling"])


async def test_kpis_equal_plain_sql_counts(db: str) -> None:
    seeded = await seed()
    period = stats.month_period(MONTH, TZ)
    assert (period.start, period.end) == (START, END)
    k = await stats.kpis(period, NOW)

    want = await expected_calls()
    assert want["inbound"] > 2000  # thousands of calls: the seed is what the test thinks
    check(k.total, want)
    for sub in seeded.subscribers:
        check(k.by_subscriber[sub.id], await expected_calls(f"subscriber_id = {sub.id}"))
    for agent in seeded.agents:
        check(k.by_agent[agent.id], await expected_calls(f"answered_by = '{agent.interface}'"))
    busiest = await q(
        f'SELECT caller_number, COUNT(*) AS n FROM "call" WHERE {IN_MONTH} '
        "AND direction = 'inbound' GROUP BY caller_number ORDER BY n DESC, caller_number LIMIT 10"
    )
    assert [(c, f.inbound) for c, f in k.by_caller.items()] == [
        (r["caller_number"], r["n"]) for r in busiest
    ]
    top = busiest[0]["caller_number"]
    caller = await expected_calls(f"caller_number = '{top}'")
    check(k.by_caller[top], {**caller, "outbound": 0, "internal": 0})  # their inbound calls

    for row in await q(
        f"SELECT subscriber_id, COUNT(*) AS n FROM voicemail WHERE left_at >= '{START_SQL}' "
        f"AND left_at < '{END_SQL}' GROUP BY subscriber_id"
    ):
        assert k.voicemails[row["subscriber_id"]] == row["n"]
    for row in await q(
        "SELECT subscriber_id, COUNT(*) AS n, "
        f"SUM(COALESCE({json_int('payload', 'pages')}, 0)) AS pages FROM notification "
        f"WHERE kind = 'fax' AND created_at >= '{START_SQL}' AND created_at < '{END_SQL}' "
        "GROUP BY subscriber_id"
    ):
        assert k.faxes[row["subscriber_id"]] == (row["n"], row["pages"])
    in_month = f"taken_at >= '{START_SQL}' AND taken_at < '{END_SQL}'"
    for row in await q(
        f"SELECT subscriber_id, COUNT(*) AS n FROM taken_message WHERE {in_month} "
        "GROUP BY subscriber_id"
    ):
        assert k.taken_by_subscriber[row["subscriber_id"]] == row["n"]
    for row in await q(
        f"SELECT agent_id, COUNT(*) AS n FROM taken_message WHERE {in_month} "
        "AND agent_id IS NOT NULL GROUP BY agent_id"
    ):
        assert k.taken_by_agent[row["agent_id"]] == row["n"]

    created = f"created_at >= '{START_SQL}' AND created_at < '{END_SQL}'"
    for channel in ("telegram", "email", "sms", "mms"):
        of_channel = f"SELECT COUNT(*) FROM delivery WHERE {created} AND channel = '{channel}'"
        total = await one(of_channel)
        ok = await one(f"{of_channel} AND status IN ('sent', 'delivered')")
        bad = await one(f"{of_channel} AND status IN ('failed', 'dead')")
        assert k.deliveries[channel] == stats.ChannelFigures(total, ok, bad)

    for agent in seeded.agents:
        end = least(epoch(f"COALESCE(ended_at, '{END_SQL}')"), epoch(f"'{END_SQL}'"))
        start = greatest(epoch("started_at"), epoch(f"'{START_SQL}'"))
        clip = f"({end} - {start})"
        overlapping = (
            f"agent_id = {agent.id} AND started_at < '{END_SQL}' "
            f"AND (ended_at IS NULL OR ended_at > '{START_SQL}')"
        )
        signed_in = await one(f"SELECT SUM({clip}) FROM presence_span WHERE {overlapping}")
        paused = await one(
            f"SELECT SUM({clip}) FROM presence_span WHERE {overlapping} AND presence = 'paused'"
        )
        assert k.presence[agent.id].signed_in_seconds == pytest.approx(signed_in)
        assert k.presence[agent.id].paused_seconds == pytest.approx(paused)
    assert k.names["agent"][seeded.agents[0].id] == "Agent 1"


async def test_one_subscriber_and_an_empty_period(db: str) -> None:
    seeded = await seed(calls=600)
    sub = seeded.subscribers[1]
    k = await stats.kpis(stats.month_period(MONTH, TZ), NOW, subscriber_id=sub.id)
    check(k.total, await expected_calls(f"subscriber_id = {sub.id}"))
    assert set(k.by_subscriber) == {sub.id}
    empty = await stats.kpis(stats.month_period("2020-01", TZ), NOW)
    assert empty.total == stats.CallFigures()
    assert empty.total.missed_pct == 0 and empty.by_agent == {} and empty.deliveries == {}


def test_periods() -> None:
    now = datetime(2026, 11, 30, 21, 30, tzinfo=UTC)  # 23:30 in Athens
    today = stats.parse_period("", now, TZ)
    assert today.label == "2026-11-30"
    assert (today.start, today.end) == (
        datetime(2026, 11, 29, 22, tzinfo=UTC),
        datetime(2026, 11, 30, 22, tzinfo=UTC),
    )
    assert stats.parse_period("yesterday", now, TZ).label == "2026-11-29"
    assert stats.parse_period("week", now, TZ).label == "2026-11-24..2026-11-30"
    assert stats.parse_period("month", now, TZ).label == "2026-11"
    assert stats.parse_period("2026-03", now, TZ).end == datetime(2026, 3, 31, 21, tzinfo=UTC)
    assert stats.parse_period("2026-11-01..2026-11-02", now, TZ).label == "2026-11-01..2026-11-02"
    assert stats.previous_month(datetime(2026, 12, 31, 22, 30, tzinfo=UTC), TZ) == "2026-12"
    assert stats.previous_month(datetime(2027, 1, 1, 0, 0, tzinfo=UTC), TZ) == "2026-12"
    for bad in ("2026-13", "someday", "2026-11-05..2026-11-01"):
        with pytest.raises(stats.PeriodError):
            stats.parse_period(bad, now, TZ)


async def test_stats_usage_and_report_are_for_directors_and_admins_only_and_audited(
    db: str,
) -> None:
    from gateway.admin.report_desk import BAD_MONTH, NO_SUBSCRIBER, ReportDesk
    from gateway.staff import people
    from gateway.staff.replies import NOT_STAFF, NOT_YOURS
    from locales import tr
    from models.db import AuditEntry, User

    seeded = await seed(calls=200)
    desk = ReportDesk(TZ, clock=lambda: NOW)
    await people.add_team("Front")
    chats = {}
    for chat, role in ((501, "agent"), (502, "supervisor"), (503, "director"), (504, "admin")):
        made = (
            await people.add_admin(role)
            if role == "admin"
            else await people.add_staff(
                name=role, role=role, team="Front" if role == "agent" else None
            )
        )
        await User.filter(id=made.agent.user.id).update(telegram_chat_id=chat)
        chats[role] = chat
    sub = seeded.subscribers[0].id
    for role in ("agent", "supervisor"):
        chat = chats[role]
        assert (await desk.stats(chat, MONTH, None)).refused
        reply, document = await desk.usage(chat, MONTH, None)
        assert reply.refused and reply.toast == tr("en", NOT_YOURS) and document is None
        reply, document = await desk.report(chat, f"{MONTH} {sub}", None)
        assert reply.refused and document is None
        audited = await AuditEntry.filter(actor=str(chat), result="refused").count()
        assert audited == 3
    stranger, _ = await desk.usage(999, MONTH, None)
    assert stranger.refused and stranger.text == tr("en", NOT_STAFF)

    for role in ("director", "admin"):
        reply, document = await desk.usage(chats[role], MONTH, None)
        assert not reply.refused and document is not None
        assert document.filename == "usage-2026-11.csv"
        reply, document = await desk.report(chats[role], f"{MONTH} {sub}", None)
        assert document is not None and document.data.startswith(b"%PDF")
        assert not (await desk.stats(chats[role], MONTH, None)).refused
    reply, document = await desk.usage(chats["admin"], "2026-13", None)
    assert reply.text == tr("en", BAD_MONTH) and document is None
    reply, document = await desk.usage(chats["admin"], f"{MONTH} 9999", None)
    assert reply.text == tr("en", NO_SUBSCRIBER, id="9999") and document is None
    reply, document = await desk.usage(chats["admin"], "", None)  # this month so far
    assert document is not None and document.filename == "usage-2026-12.csv"
