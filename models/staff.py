"""The operator's staff at work: teams, agents' presence on the queue, the screen-pop
cards they are shown, the guided exchanges in which they take messages, what they took,
tasks and transfer notes. (Users themselves, with their role, are in models/db.py.)"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from models.db import Subscriber, Urgency, User


class Presence(StrEnum):
    """An agent's state on the queue (as the PBX has it: kept in step with its events)."""

    SIGNED_OUT = "signed_out"  # not a queue member
    READY = "ready"  # a member, not paused: calls ring them
    PAUSED = "paused"  # a member, paused (with a reason)


class CardState(StrEnum):
    RINGING = "ringing"
    ANSWERED = "answered"  # by this card's agent
    TAKEN = "taken"  # answered by someone else
    ABANDONED = "abandoned"  # the caller hung up before anyone answered


class Taken(StrEnum):
    """What an agent took down for a subscriber."""

    MESSAGE = "message"
    REQUEST = "request"  # a service ticket
    APPOINTMENT = "appointment"


class TaskStatus(StrEnum):
    NEW = "new"
    FOLLOW_UP = "follow_up"
    CLOSED = "closed"


class Team(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100, unique=True)
    supervisor: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="teams_led", null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "team"


class Agent(Model):
    """A staff user's desk: their team and queue member interface (agents, supervisors
    and directors alike; directors need no team)."""

    id = fields.IntField(primary_key=True)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="agent", on_delete=fields.CASCADE
    )
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="agents", null=True, on_delete=fields.SET_NULL
    )
    # The queue member interface the PBX rings, e.g. Local/agent7@agents or PJSIP/207.
    interface = fields.CharField(max_length=128, unique=True, null=True)
    queue = fields.CharField(max_length=64, default="frontdesk-agents")
    presence = fields.CharEnumField(Presence, max_length=16, default=Presence.SIGNED_OUT)
    pause_reason = fields.CharField(max_length=100, default="")
    presence_since = fields.DatetimeField(null=True)

    class Meta:
        table = "agent"


class PresenceSpan(Model):
    """A stretch of time signed in or paused (supervisors' statistics)."""

    id = fields.IntField(primary_key=True)
    agent: fields.ForeignKeyRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="spans", on_delete=fields.CASCADE
    )
    presence = fields.CharEnumField(Presence, max_length=16)
    reason = fields.CharField(max_length=100, default="")
    started_at = fields.DatetimeField(db_index=True)
    ended_at = fields.DatetimeField(null=True)

    class Meta:
        table = "presence_span"


class Card(Model):
    """The screen-pop one agent's chat shows for one call, edited as the call goes on."""

    id = fields.IntField(primary_key=True)
    agent: fields.ForeignKeyRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="cards", on_delete=fields.CASCADE
    )
    linkedid = fields.CharField(max_length=64, db_index=True)
    subscriber: fields.ForeignKeyNullableRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="cards", null=True, on_delete=fields.SET_NULL
    )
    caller_number = fields.CharField(max_length=32, default="")
    chat_id = fields.BigIntField()
    message_id = fields.BigIntField(null=True)  # None until Telegram has it
    state = fields.CharEnumField(CardState, max_length=16, default=CardState.RINGING)
    text = fields.TextField(default="")
    transfer_note = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "card"
        unique_together = (("agent", "linkedid"),)


class Conversation(Model):
    """A guided exchange in an agent's chat (taking a message, a request, an appointment,
    a task): its step and answers so far live here, so a restart loses nothing."""

    id = fields.IntField(primary_key=True)
    agent: fields.ForeignKeyRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="conversations", on_delete=fields.CASCADE
    )
    card: fields.ForeignKeyNullableRelation[Card] = fields.ForeignKeyField(
        "models.Card", related_name="conversations", null=True, on_delete=fields.SET_NULL
    )
    kind = fields.CharField(max_length=16)  # a Taken, or "task"
    step = fields.CharField(max_length=32)
    answers: Any = fields.JSONField(default=dict)
    done = fields.BooleanField(default=False, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "conversation"


class TakenMessage(Model):
    """A message, request or appointment an agent took for a subscriber."""

    id = fields.IntField(primary_key=True)
    kind = fields.CharEnumField(Taken, max_length=16)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="taken", on_delete=fields.CASCADE
    )
    agent: fields.ForeignKeyNullableRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="taken", null=True, on_delete=fields.SET_NULL
    )
    linkedid = fields.CharField(max_length=64, default="", db_index=True)
    caller_name = fields.CharField(max_length=200, default="")
    caller_number = fields.CharField(max_length=32, default="", db_index=True)
    text = fields.TextField(default="")
    category = fields.CharField(max_length=64, default="")
    urgency = fields.CharEnumField(Urgency, max_length=8, default=Urgency.NORMAL)
    # A request (service ticket): nature of the call, how it was handled, resolved, cause.
    nature = fields.CharField(max_length=200, default="")
    handling = fields.CharField(max_length=200, default="")
    resolved = fields.BooleanField(null=True)
    cause = fields.CharField(max_length=200, default="")
    conversation: fields.ForeignKeyNullableRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation",
        related_name="results",
        null=True,
        unique=True,
        on_delete=fields.SET_NULL,
    )  # unique: a conversation finished twice (a restart, a double tap) takes one message
    taken_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "taken_message"


class TaskCategory(Model):
    """The categories supervisors keep for tasks."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)

    class Meta:
        table = "task_category"


class Task(Model):
    """Something to do for a subscriber's caller, e.g. "call back tomorrow 10:00". A task
    with `is_call` is a scheduled call: done from the card, it places the call."""

    id = fields.IntField(primary_key=True)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="tasks", on_delete=fields.CASCADE
    )
    caller_number = fields.CharField(max_length=32, default="", db_index=True)
    caller_name = fields.CharField(max_length=200, default="")
    text = fields.TextField(default="")
    category = fields.CharField(max_length=64, default="")
    assignee: fields.ForeignKeyNullableRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="tasks", null=True, on_delete=fields.SET_NULL
    )
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="tasks", null=True, on_delete=fields.SET_NULL
    )
    created_by: fields.ForeignKeyNullableRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="tasks_created", null=True, on_delete=fields.SET_NULL
    )
    due_at = fields.DatetimeField(db_index=True)
    status = fields.CharEnumField(TaskStatus, max_length=16, default=TaskStatus.NEW)
    is_call = fields.BooleanField(default=False)
    reminded_at = fields.DatetimeField(null=True)
    escalated_at = fields.DatetimeField(null=True)
    called_at = fields.DatetimeField(null=True)  # the scheduled call was placed
    created_at = fields.DatetimeField(auto_now_add=True)
    closed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "task"
