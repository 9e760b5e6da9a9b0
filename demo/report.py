"""The demo's JSON report and its human-readable timeline.

Report fields are an interface scripts rely on: extend, never rename.
  deliveries: one row per attempt: subscriber, kind, channel, status
              (pending|sending|sent|delivered|failed|dead), text, address, attempts, receipt,
              sent_at, urgency, language, reason (why this attempt: "" first try,
              "urgent in quiet hours: every channel", "fallback: ...", "escalated: ..."),
              last_error, next_attempt_at
  calls:      linkedid, ddi, subscriber, caller, caller_name, status, outcome, started_at,
              ended_at, direction (inbound|outbound|internal)
  ami_actions: the actions the sandbox Asterisk received (ActionID dropped, secrets masked);
              empty with --pbx (a real Asterisk keeps no such log)
  telegram_requests: how many Bot API requests the sandbox answered
  pbx:        only with --pbx (demo/pbx.py): asterisk (version), astdb (family frontdesk
              after the day), user_events (Frontdesk* UserEvents: name, fields), bridges
              (channels per bridge), call_back (mobile, caller, the bridge joining them),
              telegram_forward (ddi, its AstDB scenario after the Telegram command)
  agents, agent_cards, tasks, desk: the operator desk's part (demo/desk.py desk_report);
              empty with --pbx
  console, kpis, usage: the admins' part (demo/admin.py admin_report): the console's
              listing of today (at, status, subscriber, agent, direction, caller), today's
              KPIs (period, total, by_subscriber, by_agent), this month's usage CSV rows
              (dicts keyed by its header); empty with --pbx
  admin_alerts: every health incident (key, detail, opened_at, resolved_at, text,
              resolved_text, deliveries); admin_incident_staged: the demo stopped the AMI
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from models.db import Call, Delivery
from sandbox.telegram_api import BotApiServer


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def build_report(
    ami_actions: Sequence[Mapping[str, str]], bot: BotApiServer
) -> dict[str, Any]:
    calls = await Call.all().order_by("started_at", "id").prefetch_related("subscriber")
    deliveries = await Delivery.all().order_by("id").prefetch_related("subscriber", "notification")
    return {
        "calls": [
            {
                "linkedid": c.linkedid,
                "ddi": c.ddi,
                "subscriber": c.subscriber.name if c.subscriber else None,
                "caller": c.caller_number,
                "caller_name": c.caller_name,
                "status": c.status.value,
                "outcome": c.outcome.value if c.outcome else None,
                "direction": str(c.direction),
                "started_at": _iso(c.started_at),
                "ended_at": _iso(c.ended_at),
            }
            for c in calls
        ],
        "deliveries": [
            {
                "subscriber": d.subscriber.name if d.subscriber else None,
                "kind": d.kind,
                "channel": d.channel,
                "status": d.status.value,
                "text": d.text,
                "address": d.address,
                "attempts": d.attempts,
                "receipt": d.receipt,
                "sent_at": _iso(d.sent_at),
                "urgency": d.notification.urgency.value if d.notification else "normal",
                "language": d.subscriber.language if d.subscriber else None,
                "reason": d.reason,
                "last_error": d.last_error,
                "next_attempt_at": _iso(d.next_attempt_at),
            }
            for d in deliveries
        ],
        "ami_actions": [
            {k: v for k, v in action.items() if k.lower() != "actionid"} for action in ami_actions
        ],
        "telegram_requests": len(bot.requests),
    }


def print_timeline(report: dict[str, Any]) -> None:
    rows: list[tuple[str, str]] = []
    for c in report["calls"]:
        who = f"{c['caller_name']} {c['caller']}".strip()
        rows.append((c["started_at"] or "", f"call   {c['ddi']} ({c['subscriber']}) from {who}"))
        rows.append(
            (c["ended_at"] or "", f"ended  {c['ddi']}: status={c['status']} outcome={c['outcome']}")
        )
    for d in report["deliveries"]:
        first_line = d["text"].splitlines()[0] if d["text"] else ""
        urgent = " URGENT" if d["urgency"] == "urgent" else ""
        where = f"{d['kind']}{urgent} -> {d['subscriber']} via {d['channel']} [{d['status']}]"
        if d["status"] == "pending":
            where += f" held until {d['next_attempt_at'][:16]} UTC (quiet hours)"
        rows.append((d["sent_at"] or "", f"{where}: {first_line}"))
    print("Frontdesk demo: timeline")
    for at, text in sorted(rows):
        print(f"  {at[11:19] if at else '--:--:--'}  {text}")
    print("\nWhat each subscriber received:")
    for d in report["deliveries"]:
        print(f"  {d['subscriber']} ({d['kind']}, {d['channel']} {d['address']}, {d['status']}):")
        for line in d["text"].splitlines():
            print(f"      {line}")
    if pbx := report.get("pbx"):
        events = [e["name"] for e in pbx["user_events"]]
        print(f"\nReal PBX: {pbx['asterisk']}")
        print(f"  UserEvents: {', '.join(events)}")
        print(f"  AstDB frontdesk: {', '.join(f'{k}={v}' for k, v in pbx['astdb'].items())}")
        return
    actions = [a.get("Action", "?") for a in report["ami_actions"]]
    print(f"\nAMI actions received by the sandbox: {', '.join(actions)}")
