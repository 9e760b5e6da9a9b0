"""Scheduling, sending and answering the day-before reminders.

`run(now)` is one round (the leader's, every ROUND_EVERY seconds; tests pass their own
`now`): appointments with an end customer's mobile starting within LOOKAHEAD get their
Reminder row (due the day before at `reminders.hour`, the subscriber's wall clock), and
the due ones are sent. Sending is a conditional UPDATE pending -> sent and the SMS's
Delivery row in one transaction: the outbox sends and retries it, and however many rounds
(or gateways) race, one SMS. An answer is a conditional UPDATE sent -> confirmed or
cancelled, with the diary change, the end customer's answer and the subscriber's notice,
in one transaction: two replies (or a reply and a retry) act once.

Limits: SMS only (end customers have no linked Telegram chat in this model); a booking
made after its reminder time gets none (the customer has just booked); a second reply
after the answer is handled as any other SMS from that number.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.delivery.message_render import MessagePayload
from gateway.delivery.notices import NewNotification, Notices
from gateway.reminders import words
from gateway.reminders.answers import Answer, read_answer
from locales import LANGUAGES
from models.db import (
    Appointment,
    Delivery,
    DeliveryStatus,
    InboundMessage,
    Subscriber,
    Urgency,
)
from models.phone import InvalidNumber, to_e164
from models.reminders import Reminder, ReminderStatus
from models.settings import ReminderSettings
from models.vocab import Channel, Kind

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ROUND_EVERY = 60.0  # seconds between rounds: a reminder leaves within a minute of its hour
# How far ahead a round looks: "tomorrow" in any timezone, across a DST change.
LOOKAHEAD = timedelta(days=3)
BATCH = 200  # reminders sent per round (the rest in the next)
KIND = "reminder"  # the Delivery kind of a reminder SMS (no Notification: not to a subscriber)


def utcnow() -> datetime:
    return datetime.now(UTC)


def due_at(starts_at: datetime, timezone: str, hour: int) -> datetime:
    """The day before the appointment's local date, at `hour` local, as UTC."""
    zone = ZoneInfo(timezone)
    day_before = starts_at.astimezone(zone).date() - timedelta(days=1)
    return datetime.combine(day_before, time(hour), tzinfo=zone).astimezone(UTC)


class Reminders:
    def __init__(
        self,
        notices: Notices,
        settings: ReminderSettings,
        channels: Collection[str],
        region: str = "GR",
        on_new: Callable[[], None] = lambda: None,
        clock: Clock = utcnow,
    ) -> None:
        self._notices = notices
        self._hour = settings.hour
        self._channels = channels  # the channels this gateway has notifiers for (live)
        self._region = region
        self._on_new = on_new  # wakes the outbox
        # The outbox's clock: rows we write are due at once by it, whatever `now` a round
        # was given (a test's controlled clock drives what is due, not when it is sent).
        self._clock = clock

    async def tick(self) -> None:
        """The supervised loop's round, on the real clock."""
        await self.run(self._clock())

    async def run(self, now: datetime) -> int:
        """Schedule what is new, send what is due; returns how many were sent."""
        await self.schedule(now)
        return await self.send_due(now)

    # -- scheduling --------------------------------------------------------------------

    async def schedule(self, now: datetime) -> int:
        """Reminder rows for upcoming appointments with an end customer's mobile and none
        yet; returns how many were made."""
        upcoming = await Appointment.filter(
            phone__not="", starts_at__gt=now, starts_at__lte=now + LOOKAHEAD
        ).select_related("subscriber")
        if not upcoming:
            return 0
        known = set(
            await Reminder.filter(appointment_id__in=[a.id for a in upcoming]).values_list(
                "appointment_id", flat=True
            )
        )
        made = 0
        for appointment in upcoming:
            if appointment.id not in known and await self._schedule_one(appointment):
                made += 1
        return made

    async def _schedule_one(self, appointment: Appointment) -> bool:
        subscriber = appointment.subscriber
        due = due_at(appointment.starts_at, subscriber.timezone, self._hour)
        if appointment.created_at is not None and appointment.created_at > due:
            return False  # booked after its reminder time: the customer has just booked
        lang = appointment.lang if appointment.lang in LANGUAGES else subscriber.language
        status, detail = ReminderStatus.PENDING, ""
        try:
            phone = to_e164(appointment.phone, self._region)
        except InvalidNumber:
            phone, status, detail = appointment.phone[:32], ReminderStatus.FAILED, "not a number"
        try:
            await Reminder.create(
                appointment=appointment,
                subscriber=subscriber,
                starts_at=appointment.starts_at,
                name=appointment.name,
                phone=phone,
                lang=lang,
                due_at=due,
                status=status,
                detail=detail,
            )
        except IntegrityError:  # another round made it first (one per appointment)
            return False
        return True

    # -- sending -----------------------------------------------------------------------

    async def send_due(self, now: datetime) -> int:
        due = (
            await Reminder.filter(status=ReminderStatus.PENDING, due_at__lte=now)
            .select_related("subscriber", "appointment")  # one query for the batch
            .order_by("due_at", "id")
            .limit(BATCH)
        )
        sent = 0
        for reminder in due:
            sent += await self._send_one(reminder, now)
        if sent:
            self._on_new()
        return sent

    async def _send_one(self, reminder: Reminder, now: datetime) -> int:
        appointment = reminder.appointment  # None: cancelled (the FK was set NULL)
        if appointment is None or appointment.starts_at <= now:
            return await self._give_up(reminder, "the appointment went before its reminder")
        subscriber = reminder.subscriber
        due = due_at(appointment.starts_at, subscriber.timezone, self._hour)
        if due > now:  # moved to a later day since it was scheduled
            await Reminder.filter(id=reminder.id, status=ReminderStatus.PENDING).update(
                due_at=due, starts_at=appointment.starts_at
            )
            return 0
        if Channel.SMS not in self._channels:
            return await self._give_up(reminder, "no SMS channel is configured")
        text = words.reminder(
            reminder.lang, subscriber.name, subscriber.timezone, appointment.starts_at
        )
        async with in_transaction():
            taken = await Reminder.filter(id=reminder.id, status=ReminderStatus.PENDING).update(
                status=ReminderStatus.SENT,
                sent_at=now,
                starts_at=appointment.starts_at,
                name=appointment.name,
            )
            if not taken:  # another round sent it
                return 0
            await Delivery.create(
                dedupe_key=f"{KIND}:{reminder.id}:{Channel.SMS}:{reminder.phone}",
                kind=KIND,
                channel=Channel.SMS,
                address=reminder.phone,
                subscriber=subscriber,
                text=text,
                status=DeliveryStatus.PENDING,
                next_attempt_at=self._clock(),
            )
        log.info("reminder %s sent for appointment %s", reminder.id, appointment.id)
        return 1

    @staticmethod
    async def _give_up(reminder: Reminder, why: str) -> int:
        await Reminder.filter(id=reminder.id, status=ReminderStatus.PENDING).update(
            status=ReminderStatus.FAILED, detail=why
        )
        log.info("reminder %s not sent: %s", reminder.id, why)
        return 0

    # -- answering ---------------------------------------------------------------------

    async def answer(self, message: InboundMessage, now: datetime | None = None) -> bool:
        """Take an SMS as the answer to its sender's open reminder; False when it is not
        one (not an answer, or no reminder awaits one from that number)."""
        if message.channel != Channel.SMS:
            return False
        answer = read_answer(message.text)
        if answer is None:
            return False
        now = now or self._clock()
        try:
            phone = to_e164(message.sender, self._region)
        except InvalidNumber:
            return False
        reminder = (
            await Reminder.filter(phone=phone, status=ReminderStatus.SENT, starts_at__gt=now)
            .select_related("subscriber")
            .order_by("starts_at", "id")
            .first()
        )
        if reminder is None:
            return False
        if await self._take(reminder, answer, now):
            self._on_new()
            log.info("reminder %s answered: %s", reminder.id, answer)
        return True  # taken by this reply or by the one it raced: either way, not a command

    async def _take(self, reminder: Reminder, answer: Answer, now: datetime) -> bool:
        subscriber: Subscriber = reminder.subscriber
        status = ReminderStatus.CONFIRMED if answer is Answer.CONFIRM else ReminderStatus.CANCELLED
        async with in_transaction():
            taken = await Reminder.filter(id=reminder.id, status=ReminderStatus.SENT).update(
                status=status, answered_at=now
            )
            if not taken:
                return False
            if answer is Answer.CANCEL:
                # The slot is free again; the reminder keeps what was booked (FK -> NULL).
                await Appointment.filter(id=reminder.appointment_id).delete()  # type: ignore[attr-defined]
            text = words.answered(reminder.lang, answer, subscriber.timezone, reminder.starts_at)
            await self._notices.reply(Channel.SMS, reminder.phone, text, subscriber)
            await self._notices.create([self._notice(reminder, subscriber, status, answer)])
        return True

    def _notice(
        self, reminder: Reminder, subscriber: Subscriber, status: ReminderStatus, answer: Answer
    ) -> NewNotification:
        """The subscriber's notice, a "message" naming the appointment and the customer;
        its sentence in the subscriber's language (as the SMS-lock notice)."""
        payload = MessagePayload(
            subscriber=subscriber.name,
            at=self._clock(),
            timezone=subscriber.timezone,
            text=words.told(subscriber.language, answer),
            caller_number=reminder.phone,
            caller_name=reminder.name,
            taken="appointment",
            appointment_at=reminder.starts_at,
        )
        return NewNotification(
            f"{KIND}:{reminder.id}:{status}",
            subscriber,
            Kind.MESSAGE,
            Urgency.NORMAL,
            payload.to_json(),
        )
