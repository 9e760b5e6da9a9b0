# Office-hours schedules: weekly periods, closures, and the log of switches made.
from enum import StrEnum

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


# The enum as it was when this migration was written: a later change to the models'
# enums must not change what an old migration means.
class Scenario(StrEnum):
    AGENT = 'agent'
    VOICEMAIL = 'voicemail'
    FORWARD = 'forward'
    CLOSED = 'closed'


_SCENARIO = 'AGENT: agent\nVOICEMAIL: voicemail\nFORWARD: forward\nCLOSED: closed'


class Migration(migrations.Migration):
    dependencies = [('models', '0009_web')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Schedule',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('subscriber', fields.OneToOneField('models.Subscriber', source_field='subscriber_id', db_constraint=True, to_field='id', related_name='schedule', on_delete=OnDelete.CASCADE)),
                ('default_scenario', fields.CharEnumField(default=Scenario.CLOSED, description=_SCENARIO, enum_type=Scenario, max_length=16)),
                ('holidays', fields.CharField(default='', max_length=8)),
                ('announce', fields.BooleanField(default=False)),
                ('enabled', fields.BooleanField(default=True)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'schedule', 'app': 'models', 'pk_attr': 'id', 'table_description': "One subscriber's office hours (one schedule each)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SchedulePeriod',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('schedule', fields.ForeignKeyField('models.Schedule', source_field='schedule_id', db_constraint=True, to_field='id', related_name='periods', on_delete=OnDelete.CASCADE)),
                ('weekday', fields.SmallIntField()),
                ('starts', fields.SmallIntField()),
                ('ends', fields.SmallIntField()),
                ('scenario', fields.CharEnumField(description=_SCENARIO, enum_type=Scenario, max_length=16)),
            ],
            options={'table': 'schedule_period', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ScheduleClosure',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('schedule', fields.ForeignKeyField('models.Schedule', source_field='schedule_id', db_constraint=True, to_field='id', related_name='closures', on_delete=OnDelete.CASCADE)),
                ('first_day', fields.DateField()),
                ('last_day', fields.DateField()),
                ('note', fields.CharField(default='', max_length=200)),
            ],
            options={'table': 'schedule_closure', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ScheduleSwitch',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', db_constraint=True, to_field='id', related_name='schedule_switches', on_delete=OnDelete.CASCADE)),
                ('boundary', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('scenario', fields.CharEnumField(description=_SCENARIO, enum_type=Scenario, max_length=16)),
                ('previous', fields.CharEnumField(null=True, description=_SCENARIO, enum_type=Scenario, max_length=16)),
                ('reason', fields.CharField(max_length=16)),
                ('changed', fields.BooleanField(default=False)),
                ('held_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('applied', fields.BooleanField(default=False)),
                ('at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'schedule_switch', 'app': 'models', 'unique_together': (('subscriber', 'boundary'),), 'pk_attr': 'id', 'table_description': 'A boundary the schedule handled: inserted first (the claim), `applied` once done.'},
            bases=['Model'],
        ),
    ]
