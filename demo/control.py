"""The demo's two-way control: the Chinese subscriber forwards calls from Telegram, the
Greek one books an appointment by SMS (with her PIN), and the audit log records both."""

from __future__ import annotations

from typing import Any

from gateway.control import admin
from models.db import Appointment, AuditEntry, Subscriber
from models.vocab import Language, Scenario
from sandbox.smsc import SmscServer
from sandbox.telegram_api import BotApiServer

PIN = "4821"
BOOKING = f"{PIN} ραντεβού αύριο 11:00 Παπαδόπουλος - έλεγχος πίεσης"
WAIT = 20.0


async def forward_from_telegram(bot: BotApiServer, chat_id: int) -> None:
    """Until the bot confirms; what reached the PBX is the PBX side's to tell (day.py)."""
    bot.inject_message(chat_id, "转接", language_code=Language.ZH)
    await bot.wait_for(
        lambda c: (
            c.method == "sendMessage"
            and c.params.get("chat_id") == chat_id
            and "转接到我的手机" in c.params.get("text", "")
        ),
        timeout=WAIT,
    )


async def book_by_sms(smsc: SmscServer, subscriber_name: str, mobile: str) -> None:
    subscriber = await Subscriber.get(name=subscriber_name)
    await admin.set_contact_points(subscriber.id, pin=PIN)
    number = mobile.lstrip("+")
    await smsc.inject_mo(number, "Frontdesk", BOOKING)
    await smsc.wait_until(
        lambda: any(m.destination == number and "Κλείστηκε" in m.text for m in smsc.messages),
        WAIT,
    )


async def control_report() -> dict[str, Any]:
    appointments = await Appointment.all().prefetch_related("subscriber").order_by("starts_at")
    audit = await AuditEntry.all().prefetch_related("subscriber").order_by("id")
    return {
        "appointments": [
            {
                "subscriber": a.subscriber.name,
                "starts_at": a.starts_at.isoformat(),
                "name": a.name,
                "note": a.note,
            }
            for a in appointments
        ],
        "audit": [
            {
                "channel": e.channel,
                "actor": e.actor,
                "subscriber": e.subscriber.name if e.subscriber else None,
                "command": e.command,
                "result": e.result,
            }
            for e in audit
        ],
    }


def check_control(report: dict[str, Any]) -> list[str]:
    problems = []
    if [a["name"] for a in report["appointments"]] != ["Παπαδόπουλος"]:
        problems.append("control: the SMS booking is missing")
    if any(PIN in e["command"] for e in report["audit"]):
        problems.append("control: a PIN reached the audit log")
    return problems


def check_ami_actions(report: dict[str, Any]) -> list[str]:
    """What the sandbox AMI received: the line switched to forward, the call back placed.
    (Against a real PBX, demo.pbx.check_pbx asks the PBX itself.)"""
    problems = []
    puts = [a for a in report["ami_actions"] if a.get("Action") == "DBPut"]
    if not any(a.get("Val") == Scenario.FORWARD for a in puts):
        problems.append("control: no DBPut switching a line to forward")
    if not any(a.get("Action") == "Originate" for a in report["ami_actions"]):
        problems.append("control: the call back did not reach the PBX")
    return problems
