"""Reminders to end customers: scheduling, the sending round, answers, races; on a
controlled clock (the round's `now`), against a migrated database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.control.inbound import InboundDesk
from gateway.delivery.notices import Notices
from gateway.reminders.answers import Answer, read_answer
from gateway.reminders.desk import Reminders, due_at
from gateway.reminders.inbound import ReminderInbound
from gateway.renderers import RENDERERS
from models.db import Appointment, Delivery, InboundMessage, Notification, Subscriber
from models.reminders import Reminder, ReminderStatus
from models.settings import ReminderSettings, RoutingSettings
from models.vocab import Channel

ATHENS = ZoneInfo("Europe/Athens")
# The appointment: Tuesday 11 March 2031, 10:00 in Athens (UTC+2); its reminder is due
# on Monday at 18:00 Athens, 16:00 UTC.
STARTS = datetime(2031, 3, 11, 10, 0, tzinfo=ATHENS)
DUE = datetime(2031, 3, 10, 18, 0, tzinfo=ATHENS)
PHONE = "+306944111222"
REAL_NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # the outbox's clock


class Desk:
    def __init__(self, channels: set[str] | None = None, hour: int = 18) -> None:
        self.channels = {Channel.SMS, Channel.TELEGRAM} if channels is None else channels
        self.woken = 0
        self.notices = Notices(
            self.channels, RoutingSettings(default_channels="telegram,sms"), renderers=RENDERERS
        )
        self.reminders = Reminders(
            self.notices,
            ReminderSettings(hour=hour),
            self.channels,
            "GR",
            on_new=self._wake,
            clock=lambda: REAL_NOW,
        )

    def _wake(self) -> None:
        self.woken += 1


async def office(language: str = "el") -> Subscriber:
    return await Subscriber.create(
        name="Ιατρείο", language=language, timezone="Europe/Athens", mobile="+306944000999"
    )


async def appointment(
    subscriber: Subscriber, phone: str = "6944 111 222", lang: str = "", starts: datetime = STARTS
) -> Appointment:
    return await Appointment.create(
        subscriber=subscriber,
        starts_at=starts,
        ends_at=starts + timedelta(minutes=30),
        name="Мария",
        uid=f"{starts.isoformat()}-{phone}@frontdesk",
        phone=phone,
        lang=lang,
    )


def sms(text: str, sender: str = PHONE) -> InboundMessage:
    return InboundMessage(channel=Channel.SMS, sender=sender, text=text, received_at=DUE)


async def reminder_sms() -> list[Delivery]:
    return await Delivery.filter(kind="reminder").order_by("id")


# -- reading an answer -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["1", " 1 ", "yes", "YES!", "Yes.", "ναι", "Ναι", "ΝΑΙ", "ναί", "да", "Да.", "是", "是的"],
)
def test_yes_in_every_language_confirms(text: str) -> None:
    assert read_answer(text) is Answer.CONFIRM


@pytest.mark.parametrize("text", ["2", "no", "No!", "όχι", "Όχι", "ΟΧΙ", "οχι", "нет", "Нет", "否"])
def test_no_in_every_language_cancels(text: str) -> None:
    assert read_answer(text) is Answer.CANCEL


@pytest.mark.parametrize("text", ["", "12", "1 2", "yes please", "status", "4821 closed", "3"])
def test_anything_else_is_not_an_answer(text: str) -> None:
    assert read_answer(text) is None


def test_due_the_day_before_at_the_hour_on_the_local_clock() -> None:
    assert due_at(STARTS, "Europe/Athens", 18) == DUE.astimezone(UTC)
    # Across the spring change (30 March 2031): still 18:00 on the wall clock.
    after = datetime(2031, 3, 31, 9, 0, tzinfo=ATHENS)
    assert due_at(after, "Europe/Athens", 18) == datetime(2031, 3, 30, 15, 0, tzinfo=UTC)


def test_the_hour_is_validated() -> None:
    from models.settings import ConfigError

    with pytest.raises(ConfigError, match=r"reminders\.hour"):
        ReminderSettings(hour=24)


# -- scheduling and sending --------------------------------------------------------------


async def test_one_sms_at_the_hour_the_day_before_in_the_customers_language(db: str) -> None:
    desk = Desk()
    booked = await appointment(await office(), lang="ru")

    assert await desk.reminders.run(DUE - timedelta(minutes=1)) == 0
    [row] = await Reminder.all()
    assert (row.status, row.phone, row.lang) == (ReminderStatus.PENDING, PHONE, "ru")
    assert row.due_at == DUE and row.appointment_id == booked.id  # type: ignore[attr-defined]
    assert await reminder_sms() == []

    assert await desk.reminders.run(DUE) == 1
    [sent] = await reminder_sms()
    assert (sent.channel, sent.address, sent.next_attempt_at) == ("sms", PHONE, REAL_NOW)
    assert sent.text.startswith("Напоминание: ваша запись к Ιατρείο")
    assert "Ответьте 1" in sent.text
    assert desk.woken == 1
    row = await Reminder.get(id=row.id)
    assert (row.status, row.sent_at) == (ReminderStatus.SENT, DUE)

    assert await desk.reminders.run(DUE + timedelta(minutes=1)) == 0  # once only
    assert len(await reminder_sms()) == 1 and await Reminder.all().count() == 1


async def test_the_subscribers_language_without_the_customers(db: str) -> None:
    desk = Desk()
    await appointment(await office("zh"))
    await desk.reminders.run(DUE)
    [sent] = await reminder_sms()
    assert sent.text.startswith("提醒：") and "回复 1 确认" in sent.text


async def test_no_phone_no_reminder_and_a_late_booking_gets_none(db: str) -> None:
    desk = Desk()
    s = await office()
    await appointment(s, phone="")
    late = await appointment(s, starts=STARTS + timedelta(hours=2), phone="6944 333 444")
    await Appointment.filter(id=late.id).update(created_at=DUE + timedelta(hours=1))
    assert await desk.reminders.run(DUE + timedelta(hours=2)) == 0
    assert await Reminder.all().count() == 0


async def test_a_bad_number_fails_once_and_is_not_retried(db: str) -> None:
    desk = Desk()
    await appointment(await office(), phone="call me")
    await desk.reminders.run(DUE)
    [row] = await Reminder.all()
    assert (row.status, row.detail) == (ReminderStatus.FAILED, "not a number")
    await desk.reminders.run(DUE + timedelta(minutes=1))
    assert await Reminder.all().count() == 1 and await reminder_sms() == []


async def test_without_an_sms_channel_the_reminder_fails_saying_why(db: str) -> None:
    desk = Desk(channels={Channel.TELEGRAM})
    await appointment(await office())
    assert await desk.reminders.run(DUE) == 0
    [row] = await Reminder.all()
    assert (row.status, row.detail) == (ReminderStatus.FAILED, "no SMS channel is configured")


async def test_an_appointment_cancelled_before_its_reminder_gets_none(db: str) -> None:
    desk = Desk()
    booked = await appointment(await office())
    await desk.reminders.run(DUE - timedelta(hours=1))
    await booked.delete()
    await desk.reminders.run(DUE)
    [row] = await Reminder.all()
    assert row.status is ReminderStatus.FAILED and await reminder_sms() == []


async def test_an_appointment_moved_to_a_later_day_waits_for_its_new_day(db: str) -> None:
    desk = Desk()
    booked = await appointment(await office())
    await desk.reminders.run(DUE - timedelta(hours=1))
    later = STARTS + timedelta(days=2)
    await Appointment.filter(id=booked.id).update(starts_at=later, ends_at=later)
    assert await desk.reminders.run(DUE) == 0
    [row] = await Reminder.all()
    assert row.status is ReminderStatus.PENDING and row.due_at == DUE + timedelta(days=2)
    assert await desk.reminders.run(DUE + timedelta(days=2)) == 1


async def test_rounds_racing_send_one_sms(db: str) -> None:
    desk, other = Desk(), Desk()
    await appointment(await office())
    await desk.reminders.schedule(DUE)
    sent = await asyncio.gather(desk.reminders.send_due(DUE), other.reminders.send_due(DUE))
    assert sorted(sent) == [0, 1]
    assert len(await reminder_sms()) == 1


# -- answers -----------------------------------------------------------------------------


async def sent_reminder(desk: Desk, lang: str = "en") -> Appointment:
    booked = await appointment(await office(), lang=lang)
    await desk.reminders.run(DUE)
    return booked


async def test_two_cancels_the_appointment_answers_and_tells_the_subscriber(db: str) -> None:
    desk = Desk()
    booked = await sent_reminder(desk)
    assert await desk.reminders.answer(sms("2"), now=DUE + timedelta(hours=1))

    assert not await Appointment.exists(id=booked.id)
    [row] = await Reminder.all()
    assert (row.status, row.appointment_id) == (ReminderStatus.CANCELLED, None)  # type: ignore[attr-defined]
    assert row.answered_at == DUE + timedelta(hours=1)
    [answer] = await Delivery.filter(kind="reply")
    assert (answer.channel, answer.address) == ("sms", PHONE)
    assert answer.text.startswith("Your appointment on ") and "cancelled" in answer.text
    [notice] = await Notification.all()
    assert notice.kind == "message" and notice.dedupe_key == f"reminder:{row.id}:cancelled"
    [told] = await Delivery.filter(notification_id=notice.id)
    assert told.channel == "sms" and told.address == "+306944000999"  # no chat: next hop
    assert "Ο πελάτης ακύρωσε" in told.text and "Мария" in told.text


async def test_yes_in_greek_confirms_and_keeps_the_appointment(db: str) -> None:
    desk = Desk()
    booked = await sent_reminder(desk, lang="el")
    assert await desk.reminders.answer(sms("Ναι!"), now=DUE)
    assert await Appointment.exists(id=booked.id)
    [row] = await Reminder.all()
    assert row.status is ReminderStatus.CONFIRMED
    [answer] = await Delivery.filter(kind="reply")
    assert answer.text.startswith("Ευχαριστούμε, το ραντεβού σας")
    [notice] = await Notification.all()
    assert "Ο πελάτης επιβεβαίωσε" in notice.payload["text"]


async def test_other_text_and_other_numbers_are_not_answers(db: str) -> None:
    desk = Desk()
    await sent_reminder(desk)
    assert not await desk.reminders.answer(sms("what time again?"), now=DUE)
    assert not await desk.reminders.answer(sms("2", sender="+306944999888"), now=DUE)
    email = InboundMessage(channel=Channel.EMAIL, sender=PHONE, text="2", received_at=DUE)
    assert not await desk.reminders.answer(email, now=DUE)
    [row] = await Reminder.all()
    assert row.status is ReminderStatus.SENT
    assert await Delivery.filter(kind="reply").count() == 0


async def test_an_unsent_reminder_takes_no_answer(db: str) -> None:
    desk = Desk()
    await appointment(await office())
    await desk.reminders.run(DUE - timedelta(hours=1))  # scheduled, not sent
    assert not await desk.reminders.answer(sms("2"), now=DUE - timedelta(minutes=30))
    assert (await Reminder.get()).status is ReminderStatus.PENDING


async def test_racing_replies_act_once(db: str) -> None:
    desk = Desk()
    booked = await sent_reminder(desk)
    taken = await asyncio.gather(
        desk.reminders.answer(sms("1"), now=DUE), desk.reminders.answer(sms("2"), now=DUE)
    )
    assert taken == [True, True]  # both are answers: neither goes on to the command desk
    [row] = await Reminder.all()
    assert row.status in (ReminderStatus.CONFIRMED, ReminderStatus.CANCELLED)
    assert await Appointment.exists(id=booked.id) == (row.status is ReminderStatus.CONFIRMED)
    assert await Delivery.filter(kind="reply").count() == 1
    assert await Notification.all().count() == 1


async def test_a_second_reply_after_the_answer_goes_on_as_any_sms(db: str) -> None:
    desk = Desk()
    await sent_reminder(desk)
    assert await desk.reminders.answer(sms("1"), now=DUE)
    assert not await desk.reminders.answer(sms("2"), now=DUE)
    assert (await Reminder.get()).status is ReminderStatus.CONFIRMED


# -- before the command desk -------------------------------------------------------------


async def test_the_inbound_desk_gives_answers_to_the_reminder_and_the_rest_to_commands(
    db: str,
) -> None:
    from notifiers.base import InboundMessage as Inbound

    desk = Desk()
    await sent_reminder(desk)
    inbound: InboundDesk = ReminderInbound(desk.notices, desk.reminders)
    commands: list[str] = []

    async def on_text(message: InboundMessage) -> None:
        commands.append(message.text)

    inbound.on_text = on_text
    now = datetime.now(UTC)
    await inbound.receive(Inbound(Channel.SMS, PHONE, "Frontdesk", "see you", now))
    await inbound.receive(Inbound(Channel.SMS, PHONE, "Frontdesk", "1", now))
    assert commands == ["see you"]  # stored, and handled as any SMS from that number
    assert await InboundMessage.all().count() == 2  # both stored first
    assert (await Reminder.get()).status is ReminderStatus.CONFIRMED
