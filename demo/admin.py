"""The admins' part of the day (issue 12), played against the sandbox.

An admin, made as `frontdesk admin add` makes one (gateway/staff/people.add_admin), links
their chat with /start <code>. From /admin they add a subscriber with the "New subscriber"
form (name, DDI, language, time zone): it is stored and its DDI's scenario reaches the
sandbox AMI as a DBPut. Then a health incident: the sandbox AMI stops and comes back, and
the admin chat gets one alert and one "resolved" (the health loop's thresholds are set to
nothing for that moment only, so the outage is told as soon as it is seen and resolved as
soon as the link is back). Last, with the day's calls all over, /console (the listing is
read back from the console's own `Console.lines`, page by page), /stats for today (the
KPIs from gateway/admin/stats.kpis) and /usage for this month: the CSV document the bot
sends is read back from the sandbox Bot API and parsed.

Each step waits for the answer it expects, never for time. Only with the sandbox's AMI
stand-in (like demo/desk.py): with `demo --pbx` the keys `console`, `kpis` and `usage` stay
empty, and `admin_alerts` tells whatever incidents occurred.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.runtime import Runtime
from demo.desk import Chats, datas
from gateway.admin import console as call_console
from gateway.admin import forms, health, menus, report_desk, stats
from gateway.staff import people
from locales import tr
from models.db import Delivery, HealthIncident
from sandbox.ami_server import AmiServer, header
from sandbox.telegram_api import BotApiServer, Call

WAIT = 20.0
LANG = "en"  # the admin's language
ADMIN = ("Alex Georgiou", 3001)  # name, chat
# The subscriber the admin adds from the bot: (name, DDI, language button, time zone).
NEW_SUBSCRIBER = ("Οδοντιατρείο Νικολάου", "2100004", "el", "Europe/Athens")


@dataclass
class Seen:
    """What the admin's part of the day gathered (the rest is read from the database)."""

    console: list[dict[str, Any]] = field(default_factory=list)
    kpis: dict[str, Any] = field(default_factory=dict)
    usage: list[dict[str, str]] = field(default_factory=list)
    staged_incident: bool = False


def _texted(words: str) -> Any:
    return lambda c: words in str(c.params.get("text", ""))


def _button(on: Call, label: str) -> str:
    """The data of the button labelled `label` on what the bot showed."""
    rows = (on.params.get("reply_markup") or {}).get("inline_keyboard") or []
    found = [str(b["callback_data"]) for row in rows for b in row if b.get("text") == label]
    assert found, f"no button {label!r} in {datas(on)}"
    return found[0]


async def link_admin(chats: Chats) -> None:
    name, chat = ADMIN
    made = await people.add_admin(name, LANG)  # what `frontdesk admin add` does
    await chats.say(chat, f"/start {made.link_code}", _texted(name))


async def add_subscriber(chats: Chats, ami: AmiServer) -> None:
    """/admin, "New subscriber": name, DDI, language, time zone; its scenario on the PBX."""
    _, chat = ADMIN
    name, ddi, language, tz = NEW_SUBSCRIBER
    menu = await chats.say(chat, "/admin", _texted(tr(LANG, menus.MENU)))
    prompt = await chats.press(
        chat,
        menu,
        _button(menu, tr(LANG, menus.NEW_SUBSCRIBER)),
        _texted(tr(LANG, forms.NAME.question)),
    )
    await chats.say(chat, name, _texted(tr(LANG, forms.DDI.question)))
    prompt = await chats.say(chat, ddi, _texted(tr(LANG, forms.LANGUAGE.question)))
    label = forms.LANGUAGE_NAMES[language]
    await chats.press(
        chat, prompt, _button(prompt, label), _texted(tr(LANG, forms.TIMEZONE.question))
    )
    await chats.say(chat, tz, _texted(tr(LANG, menus.CREATED, name=name)))
    await ami.wait_action(
        "DBPut",
        lambda a: (header(a, "Family"), header(a, "Key")) == ("frontdesk", f"scenario/{ddi}"),
        WAIT,
    )


async def ami_incident(runtime: Runtime, bot: BotApiServer, ami: AmiServer) -> None:
    """The sandbox AMI stops and comes back: one alert, one "resolved", in the admin chat.
    The health loop's thresholds are nothing meanwhile (restored after), so each change
    of the link is told at the check it is first seen in."""
    _, chat = ADMIN
    monitor = runtime.gateway.incidents
    kept = monitor.settings
    monitor.settings = dataclasses.replace(kept, check_interval=0.05, open_after=0.0, hold_down=0.0)
    problem = health.problem(LANG, health.AMI)
    opened = tr(LANG, health.OPENED, problem=problem)
    resolved = tr(LANG, health.RESOLVED, problem=problem)

    def told(words: str) -> Any:
        return lambda c: (
            c.method == "sendMessage"
            and str(c.params.get("chat_id")) == str(chat)
            and str(c.params.get("text", "")).startswith(words)
        )

    try:
        syncs, logins = runtime.gateway.pbx_syncs, ami.logins
        await ami.stop()  # Asterisk gone: nothing listens on its port
        monitor.wake()
        await bot.wait_for(told(opened), timeout=WAIT)
        await ami.start()  # back on the same port; the gateway logs in again
        await ami.wait_until(lambda: ami.logins > logins, WAIT)
        await runtime.gateway.wait_synced(after=syncs, timeout=WAIT)
        await bot.wait_for(told(resolved), timeout=WAIT)
    finally:
        monitor.settings = kept


async def pull_console(runtime: Runtime, chats: Chats) -> list[dict[str, Any]]:
    """/console in the bot; the listing, every page, from the console's own `lines`."""
    _, chat = ADMIN
    today = tr(LANG, call_console.PERIOD_LABELS["t"])
    heading = tr(LANG, call_console.HEADER, period=today, count="").rstrip()
    await chats.say(chat, "/console", _texted(heading))
    listed: list[call_console.Line] = []
    page = 0
    while True:
        live, recent, total = await runtime.console.lines(call_console.View(page=page))
        listed += [*live, *recent]
        page += 1
        if len(listed) >= total or not (live or recent):
            break
    return [
        {
            "at": line.at.isoformat(),
            "status": str(line.status),
            "subscriber": line.subscriber,
            "agent": line.agent,
            "direction": str(line.direction),
            "caller": line.caller,
        }
        for line in listed
    ]


def _figures(f: stats.CallFigures) -> dict[str, Any]:
    return {
        **dataclasses.asdict(f),
        "missed_pct": round(f.missed_pct, 1),
        "in_target_pct": round(f.in_target_pct, 1),
        "average_wait": round(f.average_wait, 1),
        "average_handling": round(f.average_handling, 1),
    }


async def pull_stats(runtime: Runtime, chats: Chats) -> dict[str, Any]:
    """/stats (today) in the bot; the KPIs per subscriber and per agent, from stats.kpis."""
    _, chat = ADMIN
    await chats.say(chat, "/stats", _texted(tr(LANG, report_desk.STATS_HEAD, period="").rstrip()))
    now = datetime.now(UTC)
    k = await stats.kpis(stats.parse_period("today", now, runtime.reports.tz), now)
    subscribers, agents = k.names.get("subscriber", {}), k.names.get("agent", {})
    return {
        "period": k.period.label,
        "total": _figures(k.total),
        "by_subscriber": {
            subscribers.get(sid, str(sid)): {
                **_figures(f),
                "voicemails": k.voicemails.get(sid, 0),
                "faxes": k.faxes.get(sid, (0, 0))[0],
                "messages_taken": k.taken_by_subscriber.get(sid, 0),
            }
            for sid, f in k.by_subscriber.items()
        },
        "by_agent": {
            agents.get(aid, str(aid)): {
                **_figures(k.by_agent.get(aid, stats.CallFigures())),
                "messages_taken": k.taken_by_agent.get(aid, 0),
                "signed_in_seconds": round(k.presence[aid].signed_in_seconds)
                if aid in k.presence
                else 0,
                "paused_seconds": round(k.presence[aid].paused_seconds) if aid in k.presence else 0,
            }
            for aid in sorted(set(k.by_agent) | set(k.taken_by_agent) | set(k.presence))
        },
    }


async def pull_usage(runtime: Runtime, bot: BotApiServer, chats: Chats) -> list[dict[str, str]]:
    """/usage (this month) in the bot: the CSV document it sends, parsed."""
    _, chat = ADMIN
    before = chats.mark()
    bot.inject_message(chat, "/usage", language_code=LANG)
    sent = await bot.wait_for(
        lambda c: (
            id(c) not in before
            and c.method == "sendDocument"
            and str(c.params.get("chat_id")) == str(chat)
            and c.ok
        ),
        timeout=WAIT,
    )
    assert isinstance(sent.result, dict)
    data = bot.file_bytes(sent.result["document"]["file_id"])
    return list(csv.DictReader(io.StringIO(data.decode())))


async def admin_day(runtime: Runtime, bot: BotApiServer, ami: AmiServer) -> Seen:
    """The admins' part of the day; what their chat showed."""
    chats = Chats(bot)
    seen = Seen()
    await link_admin(chats)
    await add_subscriber(chats, ami)
    await ami_incident(runtime, bot, ami)
    seen.staged_incident = True
    # The calls are all over by now: the console, the statistics and the usage agree.
    seen.console = await pull_console(runtime, chats)
    seen.kpis = await pull_stats(runtime, chats)
    seen.usage = await pull_usage(runtime, bot, chats)
    return seen


# -- the report ----------------------------------------------------------------------------------


async def admin_report(seen: Seen | None) -> dict[str, Any]:
    """`console`, `kpis`, `usage` (sandbox side only) and `admin_alerts` (what occurred)."""
    alerts = []
    for incident in await HealthIncident.all().order_by("id"):
        rows = await Delivery.filter(dedupe_key__startswith=f"health:{incident.id}:").order_by("id")
        told = [(r.dedupe_key.split(":")[2], r) for r in rows]
        alerts.append(
            {
                "key": incident.key,
                "detail": incident.detail,
                "opened_at": incident.opened_at.isoformat(),
                "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
                "text": next((r.text for what, r in told if what == "opened"), ""),
                "resolved_text": next((r.text for what, r in told if what == "resolved"), ""),
                "deliveries": [
                    {"what": what, "address": r.address, "channel": r.channel, "status": r.status}
                    for what, r in told
                ],
            }
        )
    return {
        "console": seen.console if seen is not None else [],
        "kpis": seen.kpis if seen is not None else {},
        "usage": seen.usage if seen is not None else [],
        "admin_alerts": alerts,
        "admin_incident_staged": bool(seen and seen.staged_incident),
    }


def check_admin(report: dict[str, Any]) -> list[str]:
    """What went wrong with the admins' part of the day, if anything (sandbox side only)."""
    problems = []
    name, ddi, _, _ = NEW_SUBSCRIBER
    if not any(row["subscriber"] == name for row in report["usage"]):
        problems.append(f"admin: the subscriber {name} added from the bot is not in the usage")
    puts = [
        a
        for a in report["ami_actions"]
        if a.get("Action") == "DBPut" and a.get("Key") == f"scenario/{ddi}"
    ]
    if not puts:
        problems.append(f"admin: no DBPut of {ddi}'s scenario reached the AMI")
    listed = {(c["at"], c["subscriber"]): c["status"] for c in report["console"]}
    for c in report["calls"]:
        status = listed.get((c["started_at"], c["subscriber"]))
        if status != c["status"]:
            problems.append(
                f"admin: the console shows {c['linkedid']} as {status}, not {c['status']}"
            )
    per_subscriber = Counter(c["subscriber"] for c in report["calls"])
    missed = Counter(c["subscriber"] for c in report["calls"] if c["outcome"] == "abandoned")
    answered = Counter(c["subscriber"] for c in report["calls"] if c["outcome"] == "answered")
    for row in report["usage"]:
        who = row["subscriber"]
        calls = sum(int(row[f"calls_{d}"]) for d in ("inbound", "outbound", "internal"))
        got = (calls, int(row["missed"]), int(row["answered"]))
        want = (per_subscriber[who], missed[who], answered[who])
        if got != want:
            problems.append(f"admin: usage of {who} (calls, missed, answered) {got} != {want}")
    if {row["subscriber"] for row in report["usage"]} < set(per_subscriber):
        problems.append("admin: a subscriber with calls has no usage row")
    alerts = report["admin_alerts"]
    if report["admin_incident_staged"]:
        ami = [a for a in alerts if a["key"] == health.AMI]
        if len(ami) != 1:
            problems.append(f"admin: expected one AMI incident, got {len(ami)}")
        for a in alerts:
            whats = sorted(d["what"] for d in a["deliveries"] if d["status"] == "sent")
            if a["resolved_at"] is None or whats != ["opened", "resolved"]:
                problems.append(f"admin: incident {a['key']} not told once and resolved once")
    return problems


def print_admin(report: dict[str, Any]) -> None:
    """The admins' part of the day, after the desk's (nothing when it was not played)."""
    if not report["console"]:
        return
    print(f"\nAdmin {ADMIN[0]}: /console")
    for c in report["console"]:
        agent = f", {c['agent']}" if c["agent"] else ""
        print(f"  {c['at'][11:19]} {c['status']:<12} {c['direction']:<8} {c['subscriber']}{agent}")
    print(f"/stats {report['kpis'].get('period', '')}:")
    for who, f in report["kpis"].get("by_subscriber", {}).items():
        print(
            f"  {who}: {f['inbound']} in, {f['outbound']} out, {f['answered']} answered, "
            f"{f['lost']} lost ({f['missed_pct']}%)"
        )
    for who, f in report["kpis"].get("by_agent", {}).items():
        print(f"  agent {who}: {f['answered']} answered, {f['messages_taken']} taken")
    print("/usage (CSV):")
    for row in report["usage"]:
        print(
            f"  {row['subscriber']}: {row['calls_inbound']} in, {row['calls_outbound']} out, "
            f"{row['missed']} missed, {row['minutes_inbound']} min in, {row['sms_parts']} SMS parts"
        )
    for a in report["admin_alerts"]:
        resolved = (a["resolved_at"] or "")[11:19]
        print(f"alert {a['key']}: {a['opened_at'][11:19]} -> resolved {resolved}")
        print(f"  {a['text'].splitlines()[0] if a['text'] else ''}")
        print(f"  {a['resolved_text']}")
