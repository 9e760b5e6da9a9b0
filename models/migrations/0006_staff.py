# The operator desk: teams, agents and their presence, the screen-pop cards, what agents
# take down, tasks; staff link codes; the subscriber's greeting.
from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

from enum import StrEnum


# The enums as they were when this migration was written: a later change to the
# models' enums must not change what an old migration means.
class Role(StrEnum):
    SUBSCRIBER = 'subscriber'
    AGENT = 'agent'
    SUPERVISOR = 'supervisor'
    DIRECTOR = 'director'
    ADMIN = 'admin'


class Urgency(StrEnum):
    NORMAL = 'normal'
    URGENT = 'urgent'


class CallOutcome(StrEnum):
    ANSWERED = 'answered'
    VOICEMAIL = 'voicemail'
    FORWARDED = 'forwarded'
    ABANDONED = 'abandoned'
    UNKNOWN = 'unknown'


class CallStatus(StrEnum):
    NOT_STARTED = 'not_started'
    WAITING = 'waiting'
    IN_PROGRESS = 'in_progress'
    FORWARDED = 'forwarded'
    ANSWERED = 'answered'
    NOT_ANSWERED = 'not_answered'
    LOST = 'lost'
    UNKNOWN = 'unknown'
    SCHEDULED = 'scheduled'


class CardState(StrEnum):
    RINGING = 'ringing'
    ANSWERED = 'answered'
    TAKEN = 'taken'
    ABANDONED = 'abandoned'


class Presence(StrEnum):
    SIGNED_OUT = 'signed_out'
    READY = 'ready'
    PAUSED = 'paused'


class Taken(StrEnum):
    MESSAGE = 'message'
    REQUEST = 'request'
    APPOINTMENT = 'appointment'


class TaskStatus(StrEnum):
    NEW = 'new'
    FOLLOW_UP = 'follow_up'
    CLOSED = 'closed'



class Migration(migrations.Migration):
    dependencies = [('models', '0005_mobile')]

    initial = False

    operations = [
        ops.CreateModel(
            name='TaskCategory',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=64)),
            ],
            options={'table': 'task_category', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The categories supervisors keep for tasks.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Team',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=100)),
                ('supervisor', fields.ForeignKeyField('models.User', source_field='supervisor_id', null=True, db_constraint=True, to_field='id', related_name='teams_led', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'team', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Agent',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.OneToOneField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='agent', on_delete=OnDelete.CASCADE)),
                ('team', fields.ForeignKeyField('models.Team', source_field='team_id', null=True, db_constraint=True, to_field='id', related_name='agents', on_delete=OnDelete.SET_NULL)),
                ('interface', fields.CharField(null=True, unique=True, max_length=128)),
                ('queue', fields.CharField(default='frontdesk-agents', max_length=64)),
                ('presence', fields.CharEnumField(default=Presence.SIGNED_OUT, description='SIGNED_OUT: signed_out\nREADY: ready\nPAUSED: paused', enum_type=Presence, max_length=16)),
                ('pause_reason', fields.CharField(default='', max_length=100)),
                ('presence_since', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'agent', 'app': 'models', 'pk_attr': 'id', 'table_description': "A staff user's desk: their team and queue member interface (agents, supervisors"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Card',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', db_constraint=True, to_field='id', related_name='cards', on_delete=OnDelete.CASCADE)),
                ('linkedid', fields.CharField(db_index=True, max_length=64)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', null=True, db_constraint=True, to_field='id', related_name='cards', on_delete=OnDelete.SET_NULL)),
                ('caller_number', fields.CharField(default='', max_length=32)),
                ('chat_id', fields.BigIntField()),
                ('message_id', fields.BigIntField(null=True)),
                ('state', fields.CharEnumField(default=CardState.RINGING, description='RINGING: ringing\nANSWERED: answered\nTAKEN: taken\nABANDONED: abandoned', enum_type=CardState, max_length=16)),
                ('text', fields.TextField(default='', unique=False)),
                ('transfer_note', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'card', 'app': 'models', 'unique_together': (('agent', 'linkedid'),), 'pk_attr': 'id', 'table_description': "The screen-pop one agent's chat shows for one call, edited as the call goes on."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Conversation',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', db_constraint=True, to_field='id', related_name='conversations', on_delete=OnDelete.CASCADE)),
                ('card', fields.ForeignKeyField('models.Card', source_field='card_id', null=True, db_constraint=True, to_field='id', related_name='conversations', on_delete=OnDelete.SET_NULL)),
                ('kind', fields.CharField(max_length=16)),
                ('step', fields.CharField(max_length=32)),
                ('answers', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('done', fields.BooleanField(default=False, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'conversation', 'app': 'models', 'pk_attr': 'id', 'table_description': "A guided exchange in an agent's chat (taking a message, a request, an appointment,"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PresenceSpan',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', db_constraint=True, to_field='id', related_name='spans', on_delete=OnDelete.CASCADE)),
                ('presence', fields.CharEnumField(description='SIGNED_OUT: signed_out\nREADY: ready\nPAUSED: paused', enum_type=Presence, max_length=16)),
                ('reason', fields.CharField(default='', max_length=100)),
                ('started_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'presence_span', 'app': 'models', 'pk_attr': 'id', 'table_description': "A stretch of time signed in or paused (supervisors' statistics)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TakenMessage',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharEnumField(description='MESSAGE: message\nREQUEST: request\nAPPOINTMENT: appointment', enum_type=Taken, max_length=16)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', db_constraint=True, to_field='id', related_name='taken', on_delete=OnDelete.CASCADE)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', null=True, db_constraint=True, to_field='id', related_name='taken', on_delete=OnDelete.SET_NULL)),
                ('linkedid', fields.CharField(default='', db_index=True, max_length=64)),
                ('caller_name', fields.CharField(default='', max_length=200)),
                ('caller_number', fields.CharField(default='', db_index=True, max_length=32)),
                ('text', fields.TextField(default='', unique=False)),
                ('category', fields.CharField(default='', max_length=64)),
                ('urgency', fields.CharEnumField(default=Urgency.NORMAL, description='NORMAL: normal\nURGENT: urgent', enum_type=Urgency, max_length=8)),
                ('nature', fields.CharField(default='', max_length=200)),
                ('handling', fields.CharField(default='', max_length=200)),
                ('resolved', fields.BooleanField(null=True)),
                ('cause', fields.CharField(default='', max_length=200)),
                ('conversation', fields.ForeignKeyField('models.Conversation', source_field='conversation_id', null=True, unique=True, db_constraint=True, to_field='id', related_name='results', on_delete=OnDelete.SET_NULL)),
                ('taken_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'taken_message', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A message, request or appointment an agent took for a subscriber.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Task',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', db_constraint=True, to_field='id', related_name='tasks', on_delete=OnDelete.CASCADE)),
                ('caller_number', fields.CharField(default='', db_index=True, max_length=32)),
                ('caller_name', fields.CharField(default='', max_length=200)),
                ('text', fields.TextField(default='', unique=False)),
                ('category', fields.CharField(default='', max_length=64)),
                ('assignee', fields.ForeignKeyField('models.Agent', source_field='assignee_id', null=True, db_constraint=True, to_field='id', related_name='tasks', on_delete=OnDelete.SET_NULL)),
                ('team', fields.ForeignKeyField('models.Team', source_field='team_id', null=True, db_constraint=True, to_field='id', related_name='tasks', on_delete=OnDelete.SET_NULL)),
                ('created_by', fields.ForeignKeyField('models.Agent', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='tasks_created', on_delete=OnDelete.SET_NULL)),
                ('due_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('status', fields.CharEnumField(default=TaskStatus.NEW, description='NEW: new\nFOLLOW_UP: follow_up\nCLOSED: closed', enum_type=TaskStatus, max_length=16)),
                ('is_call', fields.BooleanField(default=False)),
                ('reminded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('escalated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('called_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'task', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Something to do for a subscriber\'s caller, e.g. "call back tomorrow 10:00". A task'},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='Call',
            name='outcome',
            field=fields.CharEnumField(null=True, description='ANSWERED: answered\nVOICEMAIL: voicemail\nFORWARDED: forwarded\nABANDONED: abandoned\nUNKNOWN: unknown', enum_type=CallOutcome, max_length=16),
        ),
        ops.AlterField(
            model_name='Call',
            name='status',
            field=fields.CharEnumField(default=CallStatus.NOT_STARTED, description='NOT_STARTED: not_started\nWAITING: waiting\nIN_PROGRESS: in_progress\nFORWARDED: forwarded\nANSWERED: answered\nNOT_ANSWERED: not_answered\nLOST: lost\nUNKNOWN: unknown\nSCHEDULED: scheduled', enum_type=CallStatus, max_length=16),
        ),
        ops.AlterModelOptions(
            name='LinkCode',
            options={'table': 'link_code', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A one-time code an admin hands to a subscriber, or to a member of staff, to link a'},
        ),
        ops.AlterField(
            model_name='LinkCode',
            name='subscriber',
            field=fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', null=True, db_constraint=True, to_field='id', related_name='link_codes', on_delete=OnDelete.CASCADE),
        ),
        ops.AddField(
            model_name='LinkCode',
            name='user',
            field=fields.ForeignKeyField('models.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name='link_codes', on_delete=OnDelete.CASCADE),
        ),
        ops.AddField(
            model_name='Subscriber',
            name='greeting',
            field=fields.CharField(default='', db_default='', max_length=200),
        ),
        ops.AlterField(
            model_name='User',
            name='role',
            field=fields.CharEnumField(description='SUBSCRIBER: subscriber\nAGENT: agent\nSUPERVISOR: supervisor\nDIRECTOR: director\nADMIN: admin', enum_type=Role, max_length=16),
        ),
    ]
