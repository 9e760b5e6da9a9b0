# Reminders to end customers: the Reminder table; an appointment's end-customer phone and language.
from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

from enum import StrEnum


# The enums as they were when this migration was written: a later change to the
# models' enums must not change what an old migration means.
class ReminderStatus(StrEnum):
    PENDING = 'pending'
    SENT = 'sent'
    CONFIRMED = 'confirmed'
    CANCELLED = 'cancelled'
    FAILED = 'failed'


class Migration(migrations.Migration):
    dependencies = [("models", "0010_schedules")]

    initial = False

    operations = [
        ops.AddField(
            model_name='Appointment',
            name='phone',
            field=fields.CharField(default='', db_default='', max_length=32),
        ),
        ops.AddField(
            model_name='Appointment',
            name='lang',
            field=fields.CharField(default='', db_default='', max_length=8),
        ),
        ops.CreateModel(
            name='Reminder',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('appointment', fields.OneToOneField('models.Appointment', source_field='appointment_id', null=True, db_constraint=True, to_field='id', related_name='reminder', on_delete=OnDelete.SET_NULL)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', db_constraint=True, to_field='id', related_name='reminders', on_delete=OnDelete.CASCADE)),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('name', fields.CharField(max_length=200)),
                ('phone', fields.CharField(max_length=32)),
                ('lang', fields.CharField(max_length=8)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharEnumField(default=ReminderStatus.PENDING, description='PENDING: pending\nSENT: sent\nCONFIRMED: confirmed\nCANCELLED: cancelled\nFAILED: failed', enum_type=ReminderStatus, max_length=16)),
                ('detail', fields.CharField(default='', max_length=255)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('answered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'reminder', 'app': 'models', 'indexes': [Index(fields=['status', 'due_at']), Index(fields=['phone', 'status'])], 'pk_attr': 'id', 'table_description': "The day-before reminder of one appointment, and the end customer's answer."},
            bases=['Model'],
        ),
    ]
