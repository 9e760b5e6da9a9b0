"""Two-way control through the running service: SMS with a PIN, Telegram text, bookings.

Reuses the channel stack of test_channels_e2e (Runtime against the sandbox Bot API, SMTP
sink, SMSC and MMSC); the subscriber's mobile is registered and has an SMS PIN.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import aiosmtplib
from icalendar import Calendar

from gateway.control import admin
from locales import tr
from models.db import AuditEntry, Subscriber
from models.vocab import Scenario
from tests.e2e.test_channels_e2e import CHAT, EMAIL, MOBILE, WAIT, Peers
from tests.e2e.test_channels_e2e import peers as peers  # the fixture

PIN = "4821"
STRANGER = "+447700900123"


async def sms_from(p: Peers, sender: str, text: str, replies: int = 1) -> list[str]:
    """Send an MO SMS; returns the texts of the next `replies` SMS the gateway sent to it."""
    before = len([m for m in p.smsc.messages if m.destination == sender.lstrip("+")])
    await p.smsc.inject_mo(sender.lstrip("+"), "Frontdesk", text)
    await p.smsc.wait_until(
        lambda: (
            len([m for m in p.smsc.messages if m.destination == sender.lstrip("+")])
            >= before + replies
        ),
        WAIT,
    )
    return [m.text for m in p.smsc.messages if m.destination == sender.lstrip("+")][before:]


async def test_wrong_pins_are_refused_audited_and_the_sixth_is_locked(peers: Peers) -> None:
    await admin.set_contact_points(peers.subscriber_id, pin=PIN)
    for _ in range(5):
        [reply] = await sms_from(peers, MOBILE, "0000 κλειστό")
        assert reply.startswith("Λάθος PIN")
    # The fifth wrong PIN locked SMS control and told the subscriber on Telegram.
    told = await peers.bot.wait_for(
        lambda c: c.method == "sendMessage" and "κλειδώθηκε" in c.params.get("text", ""),
        timeout=WAIT,
    )
    assert told.params["chat_id"] == CHAT
    [reply] = await sms_from(peers, MOBILE, f"{PIN} κλειστό")  # right PIN, but locked
    assert reply.startswith("Ο έλεγχος με SMS κλειδώθηκε")
    assert (await Subscriber.get(id=peers.subscriber_id)).scenario is Scenario.AGENT
    entries = await AuditEntry.filter(channel="sms").order_by("id")
    assert [e.result for e in entries] == ["refused"] * 5 + ["locked"]
    assert all(PIN not in e.command and "0000" not in e.command for e in entries)
    assert all(e.actor == MOBILE for e in entries)


async def test_a_right_pin_switches_the_scenario_until_a_time(peers: Peers) -> None:
    await admin.set_contact_points(peers.subscriber_id, pin=PIN)
    [reply] = await sms_from(peers, MOBILE, f"{PIN} τηλεφωνητής για 2 ώρες")
    assert reply.startswith("Κλήσεις: Τηλεφωνητής, έως")
    subscriber = await Subscriber.get(id=peers.subscriber_id)
    assert subscriber.scenario is Scenario.VOICEMAIL and subscriber.scenario_until is not None


async def test_a_stranger_learns_nothing(peers: Peers) -> None:
    await admin.set_contact_points(peers.subscriber_id, pin=PIN)
    for text in (f"{PIN} status", "status", "help", f"{PIN} closed"):
        [reply] = await sms_from(peers, STRANGER, text)
        assert reply == "This number cannot control any line."
    entries = await AuditEntry.filter(actor=STRANGER)
    assert len(entries) == 4 and all(e.subscriber_id is None for e in entries)  # type: ignore[attr-defined]
    assert (await Subscriber.get(id=peers.subscriber_id)).scenario is Scenario.AGENT


async def test_booking_by_sms_in_greek_refuses_overlaps_and_emails_an_ics(peers: Peers) -> None:
    await admin.set_contact_points(peers.subscriber_id, pin=PIN)
    [booked] = await sms_from(peers, MOBILE, f"{PIN} ραντεβού αύριο 10:00 Παπαδόπουλος - έλεγχος")
    assert booked.startswith("Κλείστηκε: Παπαδόπουλος")
    [email] = await peers.smtp.wait_messages(1, timeout=WAIT)
    [ics] = [a for a in email.message.iter_attachments() if a.get_filename() == "appointment.ics"]
    event = next(iter(Calendar.from_ical(ics.get_content()).walk("VEVENT")))
    assert str(event["SUMMARY"]).startswith("Παπαδόπουλος")
    tomorrow = datetime.now(ZoneInfo("Europe/Athens")).date() + timedelta(days=1)
    start = event.decoded("DTSTART").astimezone(ZoneInfo("Europe/Athens"))
    assert (start.date(), start.hour, start.minute) == (tomorrow, 10, 0)

    [refused] = await sms_from(peers, MOBILE, f"{PIN} ραντεβού αύριο 10:15 Νικολάου")
    assert refused.startswith("Η ώρα είναι κλεισμένη. Ελεύθερα:")
    assert "10:30" in refused  # the nearest free slot after the booked half hour

    # Outside the office hours (no schedule: 09:00-18:00): said so, not "09:00-18:00".
    [late] = await sms_from(peers, MOBILE, f"{PIN} ραντεβού αύριο 21:00 Νικολάου")
    assert late == tr("el", "That time is outside office hours.")


async def test_telegram_text_acts_only_on_the_chats_own_lines(peers: Peers) -> None:
    other = await admin.add_subscriber(
        name="Other", ddis=["2100099"], language="en", timezone="UTC", mobile="+306944000777"
    )
    peers.bot.inject_message(CHAT, "forward +30 694 400 0555", language_code="el")
    reply = await peers.bot.wait_for(
        lambda c: c.method == "sendMessage" and "+306944000555" in c.params.get("text", ""),
        timeout=WAIT,
    )
    assert reply.params["chat_id"] == CHAT
    mine = await Subscriber.get(id=peers.subscriber_id)
    theirs = await Subscriber.get(id=other.subscriber.id)
    assert mine.forward_number == "+306944000555"
    assert (theirs.mobile, theirs.forward_number) == ("+306944000777", None)  # untouched


async def test_a_reply_to_our_email_runs_the_same_grammar(peers: Peers) -> None:
    await admin.set_contact_points(peers.subscriber_id, pin=PIN)
    reply = EmailMessage()
    reply["From"] = f"Γραφείο <{EMAIL}>"
    reply["To"] = "replies@frontdesk.example"
    reply["Subject"] = "Re: Φωνητικό μήνυμα"
    reply.set_content(f"{PIN} κλειστό μέχρι 18:00\n\n> Φωνητικό μήνυμα για Γραφείο ...\n")
    port = peers.runtime.gateway.mail_in.port
    assert port is not None
    await aiosmtplib.send(reply, hostname="127.0.0.1", port=port)
    [answer] = await peers.smtp.wait_messages(1, timeout=WAIT)
    assert answer.rcpt_tos == (EMAIL,)
    text = answer.message.get_body(("plain",)).get_content()
    assert text.startswith("Κλήσεις: Κλειστό, έως")
    assert (await Subscriber.get(id=peers.subscriber_id)).scenario is Scenario.CLOSED
    [entry] = await AuditEntry.filter(channel="email")
    assert (entry.actor, entry.result) == (EMAIL, "done") and PIN not in entry.command
