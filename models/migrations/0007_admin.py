# Admins and reports: call direction, the outbound policy, health incidents.
from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

from enum import StrEnum


# The enums as they were when this migration was written: a later change to the
# models' enums must not change what an old migration means.
class CallDirection(StrEnum):
    INBOUND = 'inbound'
    OUTBOUND = 'outbound'
    INTERNAL = 'internal'



class Migration(migrations.Migration):
    dependencies = [('models', '0006_staff')]

    initial = False

    operations = [
        ops.CreateModel(
            name='HealthIncident',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(db_index=True, max_length=100)),
                ('open_key', fields.CharField(null=True, unique=True, max_length=100)),
                ('detail', fields.CharField(default='', max_length=500)),
                ('opened_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('resolved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'health_incident', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Something wrong with a part of the service (AMI down, SMSC unbound, the outbox backing'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Call',
            name='direction',
            field=fields.CharEnumField(default=CallDirection.INBOUND, description='INBOUND: inbound\nOUTBOUND: outbound\nINTERNAL: internal', db_default='inbound', enum_type=CallDirection, max_length=16),
        ),
        ops.AddField(
            model_name='Subscriber',
            name='outbound_allowed',
            field=fields.CharField(default='national,mobile', db_default='national,mobile', max_length=64),
        ),
    ]
