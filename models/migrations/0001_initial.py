from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

from enum import StrEnum


# The enums as they were when this migration was written: a later change to the
# models' enums must not change what an old migration means.
class DeliveryStatus(StrEnum):
    PENDING = 'pending'
    SENDING = 'sending'
    SENT = 'sent'
    DELIVERED = 'delivered'
    FAILED = 'failed'
    DEAD = 'dead'


class Role(StrEnum):
    SUBSCRIBER = 'subscriber'
    AGENT = 'agent'
    SUPERVISOR = 'supervisor'
    ADMIN = 'admin'


class CallOutcome(StrEnum):
    ANSWERED = 'answered'
    VOICEMAIL = 'voicemail'
    FORWARDED = 'forwarded'
    ABANDONED = 'abandoned'


class CallStatus(StrEnum):
    NOT_STARTED = 'not_started'
    WAITING = 'waiting'
    IN_PROGRESS = 'in_progress'
    FORWARDED = 'forwarded'
    ANSWERED = 'answered'
    NOT_ANSWERED = 'not_answered'
    LOST = 'lost'
    SCHEDULED = 'scheduled'


class Scenario(StrEnum):
    AGENT = 'agent'
    VOICEMAIL = 'voicemail'
    FORWARD = 'forward'
    CLOSED = 'closed'



class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Subscriber',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=200)),
                ('language', fields.CharField(default='en', max_length=8)),
                ('timezone', fields.CharField(default='Europe/Athens', max_length=64)),
                ('scenario', fields.CharEnumField(default=Scenario.AGENT, description='AGENT: agent\nVOICEMAIL: voicemail\nFORWARD: forward\nCLOSED: closed', enum_type=Scenario, max_length=16)),
                ('forward_number', fields.CharField(null=True, max_length=20)),
                ('instructions', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'subscriber', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Call',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('linkedid', fields.CharField(unique=True, max_length=64)),
                ('ddi', fields.CharField(default='', max_length=32)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', null=True, db_constraint=True, to_field='id', related_name='calls', on_delete=OnDelete.SET_NULL)),
                ('caller_number', fields.CharField(default='', max_length=32)),
                ('caller_name', fields.CharField(default='', max_length=200)),
                ('scenario', fields.CharField(default='', max_length=16)),
                ('status', fields.CharEnumField(default=CallStatus.NOT_STARTED, description='NOT_STARTED: not_started\nWAITING: waiting\nIN_PROGRESS: in_progress\nFORWARDED: forwarded\nANSWERED: answered\nNOT_ANSWERED: not_answered\nLOST: lost\nSCHEDULED: scheduled', enum_type=CallStatus, max_length=16)),
                ('outcome', fields.CharEnumField(null=True, description='ANSWERED: answered\nVOICEMAIL: voicemail\nFORWARDED: forwarded\nABANDONED: abandoned', enum_type=CallOutcome, max_length=16)),
                ('answered_by', fields.CharField(default='', max_length=128)),
                ('legs_rung', fields.IntField(default=0)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('answered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'call', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Contact',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', db_constraint=True, to_field='id', related_name='contacts', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=200)),
                ('number', fields.CharField(max_length=20)),
            ],
            options={'table': 'contact', 'app': 'models', 'unique_together': (('subscriber', 'number'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Ddi',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('number', fields.CharField(unique=True, max_length=32)),
                ('mailbox', fields.CharField(default='', max_length=64)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', db_constraint=True, to_field='id', related_name='ddis', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'ddi', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Delivery',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('dedupe_key', fields.CharField(unique=True, max_length=200)),
                ('kind', fields.CharField(max_length=32)),
                ('channel', fields.CharField(max_length=16)),
                ('address', fields.CharField(max_length=200)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', null=True, db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.SET_NULL)),
                ('call', fields.ForeignKeyField('models.Call', source_field='call_id', null=True, db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.SET_NULL)),
                ('text', fields.TextField(unique=False)),
                ('buttons', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharEnumField(default=DeliveryStatus.PENDING, db_index=True, description='PENDING: pending\nSENDING: sending\nSENT: sent\nDELIVERED: delivered\nFAILED: failed\nDEAD: dead', enum_type=DeliveryStatus, max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('claimed_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.TextField(default='', unique=False)),
                ('receipt', fields.CharField(default='', max_length=128)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'delivery', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The outbox: one row per recipient and channel, written with the event that caused it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LinkCode',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=32)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', db_constraint=True, to_field='id', related_name='link_codes', on_delete=OnDelete.CASCADE)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'link_code', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A one-time code an admin hands to a subscriber to link a Telegram chat.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=200)),
                ('role', fields.CharEnumField(description='SUBSCRIBER: subscriber\nAGENT: agent\nSUPERVISOR: supervisor\nADMIN: admin', enum_type=Role, max_length=16)),
                ('telegram_chat_id', fields.BigIntField(null=True, unique=True)),
                ('language', fields.CharField(null=True, max_length=8)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', null=True, db_constraint=True, to_field='id', related_name='users', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'app_user', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
