"""Everything a reminder says: to the end customer (the reminder and the answer to their
reply) and to the subscriber (how their customer answered)."""

from __future__ import annotations

from datetime import datetime

from gateway.delivery.render import local_time
from gateway.reminders.answers import Answer
from locales import tr


def reminder(lang: str, subscriber: str, timezone: str, at: datetime) -> str:
    return tr(
        lang,
        "Reminder: your appointment with {subscriber} on {time}. "
        "Reply 1 to confirm or 2 to cancel.",
        subscriber=subscriber,
        time=local_time(lang, timezone, at),
    )


def answered(lang: str, answer: Answer, timezone: str, at: datetime) -> str:
    """The end customer's short answer to their reply."""
    when = local_time(lang, timezone, at)
    if answer is Answer.CONFIRM:
        return tr(lang, "Thank you, your appointment on {time} is confirmed.", time=when)
    return tr(lang, "Your appointment on {time} is cancelled.", time=when)


def told(lang: str, answer: Answer) -> str:
    """What the subscriber's notice adds to the appointment it names."""
    if answer is Answer.CONFIRM:
        return tr(lang, "The customer confirmed by replying to the reminder SMS.")
    return tr(
        lang, "The customer cancelled by replying to the reminder SMS; the time is free again."
    )
