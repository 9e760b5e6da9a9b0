"""Reminders through the running service: the round sends the end customer one SMS through
the sandbox SMSC the day before; their MO reply (deliver_sm) cancels or confirms the
appointment and the subscriber is told on Telegram. The round runs on a controlled clock.

Reuses the channel stack of test_channels_e2e (subscriber "Γραφείο", Greek, Athens, its
Telegram chat linked).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.diary.appointments import book
from models.db import Appointment, AuditEntry, Delivery, Subscriber
from models.reminders import Reminder, ReminderStatus
from sandbox.smsc import MessageRecord
from tests.e2e.test_channels_e2e import CHAT, WAIT, Peers
from tests.e2e.test_channels_e2e import peers as peers  # the fixture

ATHENS = ZoneInfo("Europe/Athens")
STARTS = datetime(2031, 3, 11, 10, 0, tzinfo=ATHENS)  # "tomorrow 10:00" on the test's clock
DUE = datetime(2031, 3, 10, 18, 0, tzinfo=ATHENS)  # the day before at reminders.hour
CUSTOMER = "+306944555666"


async def booked(p: Peers, lang: str = "ru") -> Appointment:
    subscriber = await Subscriber.get(id=p.subscriber_id)
    return await book(
        subscriber, STARTS, "Мария Иванова", now=DUE - timedelta(hours=8), phone=CUSTOMER, lang=lang
    )


def to_customer(p: Peers) -> list[MessageRecord]:
    return [m for m in p.smsc.messages if m.destination == CUSTOMER.lstrip("+")]


async def reminded(p: Peers) -> MessageRecord:
    """The round before the hour sends nothing; at the hour one SMS; again, nothing more."""
    reminders = p.runtime.gateway.reminders
    assert await reminders.run(DUE - timedelta(minutes=1)) == 0
    assert await reminders.run(DUE) == 1
    [reminder] = await p.smsc.wait_until(lambda: to_customer(p), WAIT)
    assert await reminders.run(DUE + timedelta(minutes=5)) == 0
    return reminder


async def reply(p: Peers, text: str) -> str:
    """The customer's MO SMS; the text of the SMS it is answered with."""
    before = len(to_customer(p))
    await p.smsc.inject_mo(CUSTOMER.lstrip("+"), "Frontdesk", text)
    answers = await p.smsc.wait_until(lambda: to_customer(p)[before:], WAIT)
    return answers[0].text


async def test_a_reminder_goes_the_day_before_and_two_cancels(peers: Peers) -> None:
    appointment = await booked(peers)
    reminder = await reminded(peers)
    assert reminder.text.startswith("Напоминание: ваша запись к Γραφείο")
    assert "Ответьте 1" in reminder.text
    [row] = await Reminder.all()
    assert row.status is ReminderStatus.SENT

    answer = await reply(peers, "2")
    assert answer.startswith("Ваша запись на ") and answer.endswith("отменена.")
    assert not await Appointment.exists(id=appointment.id)
    row = await Reminder.get(id=row.id)
    assert row.status is ReminderStatus.CANCELLED
    told = await peers.bot.wait_for(
        lambda c: c.method == "sendMessage" and "Ο πελάτης ακύρωσε" in c.params.get("text", ""),
        timeout=WAIT,
    )
    assert told.params["chat_id"] == CHAT and "Мария Иванова" in told.params["text"]
    # The reminder and the answer went, each once; no other row for the customer.
    assert len(to_customer(peers)) == 2
    assert await Delivery.filter(address=CUSTOMER).count() == 2


async def test_one_confirms_and_the_subscriber_is_told(peers: Peers) -> None:
    appointment = await booked(peers, lang="en")
    reminder = await reminded(peers)
    assert reminder.text.startswith("Reminder: your appointment with Γραφείο")

    answer = await reply(peers, "Yes")
    assert answer.startswith("Thank you, your appointment on ")
    assert await Appointment.exists(id=appointment.id)
    assert (await Reminder.get()).status is ReminderStatus.CONFIRMED
    await peers.bot.wait_for(
        lambda c: c.method == "sendMessage" and "Ο πελάτης επιβεβαίωσε" in c.params.get("text", ""),
        timeout=WAIT,
    )


async def test_other_text_from_the_customer_is_not_taken_for_a_command(peers: Peers) -> None:
    appointment = await booked(peers)
    await reminded(peers)

    answer = await reply(peers, "Is there parking?")
    assert answer == "This number cannot control any line."  # as any unknown number
    [entry] = await AuditEntry.filter(actor=CUSTOMER)
    assert entry.result == "refused" and entry.subscriber_id is None  # type: ignore[attr-defined]
    assert (await Reminder.get()).status is ReminderStatus.SENT  # still awaiting an answer
    assert await Appointment.exists(id=appointment.id)
