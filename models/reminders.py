"""Reminders to end customers about their appointments.

One row per appointment (the day before, by SMS, in the end customer's language). It
outlives a cancelled appointment (the FK becomes NULL): what was booked, for whom and how
it was answered stay readable. Every status change is a conditional UPDATE on the status
it leaves, so two gateways, two replies or a reply racing a resend act once.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.db import Appointment, Subscriber


class ReminderStatus(StrEnum):
    PENDING = "pending"  # not sent yet (due_at ahead, or the round has not come)
    SENT = "sent"  # the SMS is in the outbox; an answer is awaited
    CONFIRMED = "confirmed"  # the end customer answered yes
    CANCELLED = "cancelled"  # the end customer answered no: the appointment is gone
    FAILED = "failed"  # never sent (no SMS channel, the appointment went first); see detail


class Reminder(Model):
    """The day-before reminder of one appointment, and the end customer's answer."""

    id = fields.IntField(primary_key=True)
    appointment: fields.OneToOneNullableRelation[Appointment] = fields.OneToOneField(
        "models.Appointment", related_name="reminder", null=True, on_delete=fields.SET_NULL
    )
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="reminders", on_delete=fields.CASCADE
    )
    # Copies of the appointment, so the answer can be told after a cancel deleted it.
    starts_at = fields.DatetimeField()
    name = fields.CharField(max_length=200)
    phone = fields.CharField(max_length=32)  # E.164: the end customer's mobile
    lang = fields.CharField(max_length=8)  # the language the reminder was written in
    due_at = fields.DatetimeField()
    status = fields.CharEnumField(ReminderStatus, max_length=16, default=ReminderStatus.PENDING)
    detail = fields.CharField(max_length=255, default="")
    sent_at = fields.DatetimeField(null=True)
    answered_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "reminder"
        # The sending round (due pending rows) and a reply's lookup (a number's open one).
        indexes = (("status", "due_at"), ("phone", "status"))
