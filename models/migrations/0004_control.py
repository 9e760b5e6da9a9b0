from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

from enum import StrEnum


# The enums as they were when this migration was written: a later change to the
# models' enums must not change what an old migration means.
class Scenario(StrEnum):
    AGENT = 'agent'
    VOICEMAIL = 'voicemail'
    FORWARD = 'forward'
    CLOSED = 'closed'



class Migration(migrations.Migration):
    dependencies = [('models', '0003_voicemail')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Appointment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', db_constraint=True, to_field='id', related_name='appointments', on_delete=OnDelete.CASCADE)),
                ('starts_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('name', fields.CharField(max_length=200)),
                ('note', fields.TextField(default='', unique=False)),
                ('uid', fields.CharField(unique=True, max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'appointment', 'app': 'models', 'pk_attr': 'id', 'table_description': "A booking in a subscriber's diary."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
                ('channel', fields.CharField(max_length=16)),
                ('actor', fields.CharField(max_length=254)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', null=True, db_constraint=True, to_field='id', related_name='audit', on_delete=OnDelete.SET_NULL)),
                ('command', fields.CharField(max_length=500)),
                ('result', fields.CharField(max_length=32)),
                ('detail', fields.CharField(default='', max_length=500)),
            ],
            options={'table': 'audit_entry', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Every command, accepted or refused: who, what, by which channel, with what result.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Subscriber',
            name='scenario_after',
            field=fields.CharEnumField(null=True, description='AGENT: agent\nVOICEMAIL: voicemail\nFORWARD: forward\nCLOSED: closed', enum_type=Scenario, max_length=16),
        ),
        ops.AddField(
            model_name='Subscriber',
            name='scenario_until',
            field=fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Subscriber',
            name='sms_locked_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Subscriber',
            name='sms_pin_failures',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='Subscriber',
            name='sms_pin_hash',
            field=fields.CharField(null=True, max_length=200),
        ),
    ]
