"""Database models (tortoise-orm). Schema changes go through migrations in models/migrations."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from models.events import CallOutcome, CallStatus
from models.vocab import Language, Scenario


class CallDirection(StrEnum):
    INBOUND = "inbound"  # a caller rang a subscriber's DDI
    OUTBOUND = "outbound"  # the gateway placed it (call back, scheduled call, reminder)
    INTERNAL = "internal"  # between the operator's own phones (transfers, listening)


class NumberClass(StrEnum):
    """What an outbound destination is, for the outbound policy (phonenumbers' types)."""

    NATIONAL = "national"  # fixed line in the operator's country
    MOBILE = "mobile"  # a mobile in the operator's country
    INTERNATIONAL = "international"  # any number in another country
    PREMIUM = "premium"  # premium rate, shared cost, personal numbers, UAN, ...


class Role(StrEnum):
    SUBSCRIBER = "subscriber"  # a person of the subscriber's business who receives messages
    AGENT = "agent"
    SUPERVISOR = "supervisor"  # leads a team of agents
    DIRECTOR = "director"  # sees and runs every team
    ADMIN = "admin"  # runs the service


class Urgency(StrEnum):
    NORMAL = "normal"  # held through quiet hours; falls back on a permanent failure
    URGENT = "urgent"  # never held; escalates to the next channel unless acknowledged


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its turn (first try or a retry)
    SENDING = "sending"  # claimed by a worker until claimed_until
    SENT = "sent"  # the channel accepted it; receipt holds its id
    DELIVERED = "delivered"  # the channel confirmed delivery to the person
    FAILED = "failed"  # permanent refusal (blocked bot, invalid address)
    DEAD = "dead"  # gave up after retries; an admin should look


class Subscriber(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    language = fields.CharField(max_length=8, default=Language.EN)  # a vocab.Language
    timezone = fields.CharField(max_length=64, default="Europe/Athens")
    scenario = fields.CharEnumField(Scenario, max_length=16, default=Scenario.AGENT)
    # The subscriber's own mobile (E.164): who an SMS is from (with the PIN), where SMS and
    # MMS go, what "Forward calls to me" and "Call back" ring. One subscriber's per number.
    mobile = fields.CharField(max_length=20, null=True, unique=True)
    # Where the forward scenario sends calls ("forward <number>"); None: to the mobile.
    forward_number = fields.CharField(max_length=20, null=True)
    email = fields.CharField(max_length=254, null=True)
    # The outbound policy: NumberClass values the gateway may call for this subscriber,
    # comma-separated. International needs listing explicitly; premium is refused unless
    # listed (by default it is not).
    outbound_allowed = fields.CharField(
        max_length=64, default="national,mobile", db_default="national,mobile"
    )
    # Quiet hours, "HH:MM" in the subscriber's timezone (end may be past midnight): normal
    # messages wait until they end; both empty means none.
    quiet_start = fields.CharField(max_length=5, null=True)
    quiet_end = fields.CharField(max_length=5, null=True)
    # A timed scenario ("closed until 18:00"): what returns by itself, and when.
    scenario_until = fields.DatetimeField(null=True, db_index=True)
    scenario_after = fields.CharEnumField(Scenario, max_length=16, null=True)
    # SMS control: a PIN (PBKDF2, never the PIN itself); wrong PINs lock it for a while.
    sms_pin_hash = fields.CharField(max_length=200, null=True)
    sms_pin_failures = fields.IntField(default=0)
    sms_locked_until = fields.DatetimeField(null=True)
    instructions = fields.TextField(default="")  # for the agents answering in its name
    # What agents say on answering ("Good morning, Dr Papadopoulos' office"); empty: the name.
    greeting = fields.CharField(max_length=200, default="", db_default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    ddis: fields.ReverseRelation[Ddi]
    users: fields.ReverseRelation[User]

    class Meta:
        table = "subscriber"

    @property
    def forward_target(self) -> str | None:
        """The number the forward scenario dials: the one set, else the mobile."""
        return self.forward_number or self.mobile


class Ddi(Model):
    id = fields.IntField(primary_key=True)
    number = fields.CharField(max_length=32, unique=True)
    mailbox = fields.CharField(max_length=64, default="")
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="ddis", on_delete=fields.CASCADE
    )

    class Meta:
        table = "ddi"


class User(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    role = fields.CharEnumField(Role, max_length=16)
    telegram_chat_id = fields.BigIntField(null=True, unique=True)
    language = fields.CharField(max_length=8, null=True)
    subscriber: fields.ForeignKeyNullableRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="users", null=True, on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "app_user"


class LinkCode(Model):
    """A one-time code an admin hands to a subscriber, or to a member of staff, to link a
    Telegram chat: it names either the subscriber (a new User of theirs is made) or the
    staff user whose chat it links."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    subscriber: fields.ForeignKeyNullableRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="link_codes", null=True, on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="link_codes", null=True, on_delete=fields.CASCADE
    )
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "link_code"


class Contact(Model):
    id = fields.IntField(primary_key=True)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="contacts", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    number = fields.CharField(max_length=20)

    class Meta:
        table = "contact"
        unique_together = (("subscriber", "number"),)


class Call(Model):
    id = fields.IntField(primary_key=True)
    linkedid = fields.CharField(max_length=64, unique=True)
    ddi = fields.CharField(max_length=32, default="")
    subscriber: fields.ForeignKeyNullableRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="calls", null=True, on_delete=fields.SET_NULL
    )
    caller_number = fields.CharField(max_length=32, default="")
    caller_name = fields.CharField(max_length=200, default="")
    scenario = fields.CharField(max_length=16, default="")
    status = fields.CharEnumField(CallStatus, max_length=16, default=CallStatus.NOT_STARTED)
    outcome = fields.CharEnumField(CallOutcome, max_length=16, null=True)
    answered_by = fields.CharField(max_length=128, default="")
    direction = fields.CharEnumField(
        CallDirection, max_length=16, default=CallDirection.INBOUND, db_default="inbound"
    )
    legs_rung = fields.IntField(default=0)
    started_at = fields.DatetimeField()
    answered_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)

    class Meta:
        table = "call"
        # The web desk's calls page: one subscriber's calls, newest first (0009_web).
        indexes = (("subscriber_id", "started_at"),)


class RoutingPreference(Model):
    """How a subscriber wants one kind of event told: channels in order of preference."""

    id = fields.IntField(primary_key=True)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="preferences", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=32)  # a vocab.Kind
    urgency = fields.CharEnumField(Urgency, max_length=8, default=Urgency.NORMAL)
    # Hops of vocab.Channel, in order: ["sms", "telegram+email"].
    channels: Any = fields.JSONField(default=list)

    class Meta:
        table = "routing_preference"
        unique_together = (("subscriber", "kind", "urgency"),)


class Notification(Model):
    """One thing to tell a subscriber. Its Deliveries are the attempts, one per channel."""

    id = fields.IntField(primary_key=True)
    dedupe_key = fields.CharField(max_length=200, unique=True)  # e.g. missed_call:<linkedid>
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="notifications", on_delete=fields.CASCADE
    )
    call: fields.ForeignKeyNullableRelation[Call] = fields.ForeignKeyField(
        "models.Call", related_name="notifications", null=True, on_delete=fields.SET_NULL
    )
    kind = fields.CharField(max_length=32)  # a vocab.Kind
    urgency = fields.CharEnumField(Urgency, max_length=8, default=Urgency.NORMAL)
    payload: Any = fields.JSONField(default=dict)  # what the renderers need, channel-neutral
    route: Any = fields.JSONField(default=list)  # hops of vocab.Channel, in order
    next_hop = fields.IntField(default=1)  # index in route of the next fallback/escalation
    escalate_at = fields.DatetimeField(null=True, db_index=True)
    acknowledged_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "notification"


class Delivery(Model):
    """The outbox: one row per recipient and channel, written with the event that caused it."""

    id = fields.IntField(primary_key=True)
    dedupe_key = fields.CharField(max_length=200, unique=True)
    # A vocab.Kind, or "reply" / "admin_alert" (rows without a Notification): free text.
    kind = fields.CharField(max_length=32)
    channel = fields.CharField(max_length=16)  # a vocab.Channel
    address = fields.CharField(max_length=200)
    subscriber: fields.ForeignKeyNullableRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="deliveries", null=True, on_delete=fields.SET_NULL
    )
    call: fields.ForeignKeyNullableRelation[Call] = fields.ForeignKeyField(
        "models.Call", related_name="deliveries", null=True, on_delete=fields.SET_NULL
    )
    notification: fields.ForeignKeyNullableRelation[Notification] = fields.ForeignKeyField(
        "models.Notification", related_name="deliveries", null=True, on_delete=fields.CASCADE
    )
    # Why this attempt exists: "" for a first try, else "fallback: <why>" or "escalated: ...".
    reason = fields.CharField(max_length=255, default="")
    subject = fields.CharField(max_length=255, default="")
    html = fields.TextField(default="")
    # Files that go with it: [{"path", "content_type", "filename"}]; each channel gets them
    # in its own form (a voice note as OGG/Opus for Telegram, MP3 for email and MMS).
    attachments: Any = fields.JSONField(default=list)
    text = fields.TextField()
    buttons: Any = fields.JSONField(default=list)
    status = fields.CharEnumField(
        DeliveryStatus, max_length=16, default=DeliveryStatus.PENDING, db_index=True
    )
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(db_index=True)
    claimed_until = fields.DatetimeField(null=True)
    last_error = fields.TextField(default="")
    receipt = fields.CharField(max_length=128, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "delivery"
        # The outbox's claim (status, then due time) and /metrics' count by channel and
        # status stay index scans however many rows the table keeps.
        indexes = (("status", "next_attempt_at"), ("status", "channel"))


class DeliveryPart(Model):
    """A piece of a sent Delivery (an SMS part, an MMS), by the id its channel gave it.

    The channel's delivery report for that id lands here."""

    id = fields.IntField(primary_key=True)
    # None for a while when the report outran our record of the send (both orders happen).
    delivery: fields.ForeignKeyNullableRelation[Delivery] = fields.ForeignKeyField(
        "models.Delivery", related_name="parts", null=True, on_delete=fields.CASCADE
    )
    channel = fields.CharField(max_length=16)
    message_id = fields.CharField(max_length=128)
    # None until the network reports; then True (delivered) or False (undeliverable).
    delivered = fields.BooleanField(null=True)
    detail = fields.CharField(max_length=64, default="")
    reported_at = fields.DatetimeField(null=True)

    class Meta:
        table = "delivery_part"
        unique_together = (("channel", "message_id"),)


class InboundMessage(Model):
    """Text a person sent us (an SMS, an email reply), kept before anything acts on it."""

    id = fields.IntField(primary_key=True)
    channel = fields.CharField(max_length=16)
    sender = fields.CharField(max_length=254)
    recipient = fields.CharField(max_length=254, default="")
    text = fields.TextField()
    subscriber: fields.ForeignKeyNullableRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="inbound", null=True, on_delete=fields.SET_NULL
    )
    received_at = fields.DatetimeField()

    class Meta:
        table = "inbound_message"


class Voicemail(Model):
    """A message left in an Asterisk mailbox, found in the spool, delivered once."""

    id = fields.IntField(primary_key=True)
    # Asterisk's msg_id (or context/box/origtime when an old Asterisk has none).
    key = fields.CharField(max_length=128, unique=True)
    mailbox = fields.CharField(max_length=80)  # box@context
    subscriber: fields.ForeignKeyNullableRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="voicemails", null=True, on_delete=fields.SET_NULL
    )
    call: fields.ForeignKeyNullableRelation[Call] = fields.ForeignKeyField(
        "models.Call", related_name="voicemails", null=True, on_delete=fields.SET_NULL
    )
    caller_number = fields.CharField(max_length=32, default="")
    caller_name = fields.CharField(max_length=200, default="")
    left_at = fields.DatetimeField()
    duration = fields.FloatField(default=0)
    audio_path = fields.CharField(max_length=500)  # our archived copy of the WAV
    transcript = fields.TextField(default="")
    transcript_ok = fields.BooleanField(default=False)
    transcript_error = fields.CharField(max_length=255, default="")
    found_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "voicemail"


class Appointment(Model):
    """A booking in a subscriber's diary."""

    id = fields.IntField(primary_key=True)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="appointments", on_delete=fields.CASCADE
    )
    starts_at = fields.DatetimeField(db_index=True)
    ends_at = fields.DatetimeField()
    name = fields.CharField(max_length=200)
    note = fields.TextField(default="")
    uid = fields.CharField(max_length=100, unique=True)  # the iCalendar UID
    created_at = fields.DatetimeField(auto_now_add=True)
    # The end customer's mobile (E.164) and language, when known: the day-before reminder
    # (gateway/reminders) goes there; "" for none (no reminder) or the subscriber's language.
    phone = fields.CharField(max_length=32, default="", db_default="")
    lang = fields.CharField(max_length=8, default="", db_default="")

    class Meta:
        table = "appointment"


class AuditEntry(Model):
    """Every command, accepted or refused: who, what, by which channel, with what result."""

    id = fields.IntField(primary_key=True)
    at = fields.DatetimeField(auto_now_add=True, db_index=True)
    channel = fields.CharField(max_length=16)
    actor = fields.CharField(max_length=254)  # chat id, phone number or email address
    subscriber: fields.ForeignKeyNullableRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="audit", null=True, on_delete=fields.SET_NULL
    )
    command = fields.CharField(max_length=500)  # as received, PINs masked
    result = fields.CharField(max_length=32)  # done, refused, locked, not_understood, failed
    detail = fields.CharField(max_length=500, default="")

    class Meta:
        table = "audit_entry"


class HealthIncident(Model):
    """Something wrong with a part of the service (AMI down, SMSC unbound, the outbox backing
    up, ...): admins are alerted once when it opens and once when it is resolved."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=100, db_index=True)  # e.g. ami, smpp, outbox_backlog
    # The key while the incident is open, NULL once resolved: one open incident per key.
    open_key = fields.CharField(max_length=100, null=True, unique=True)
    detail = fields.CharField(max_length=500, default="")
    opened_at = fields.DatetimeField(db_index=True)
    resolved_at = fields.DatetimeField(null=True)

    class Meta:
        table = "health_incident"
