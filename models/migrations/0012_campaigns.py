# Call lists (campaigns): the list, its entries (one per end customer), the claim's index.
from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index

from enum import StrEnum


# The enum as it was when this migration was written: a later change to the model's
# enum must not change what an old migration means.
class EntryStatus(StrEnum):
    PENDING = 'pending'
    IN_PROGRESS = 'in_progress'
    UNANSWERED = 'unanswered'
    DONE = 'done'
    REFUSED = 'refused'


class Migration(migrations.Migration):
    dependencies = [("models", "0011_reminders")]

    initial = False

    operations = [
        ops.CreateModel(
            name='Campaign',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', db_constraint=True, to_field='id', related_name='campaigns', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=200)),
                ('script', fields.TextField(default='', unique=False)),
                ('starts_on', fields.DateField()),
                ('ends_on', fields.DateField()),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', null=True, db_constraint=True, to_field='id', related_name='campaigns', on_delete=OnDelete.SET_NULL)),
                ('team', fields.ForeignKeyField('models.Team', source_field='team_id', null=True, db_constraint=True, to_field='id', related_name='campaigns', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'campaign', 'app': 'models', 'pk_attr': 'id', 'table_description': "A subscriber's call list, open from `starts_on` to `ends_on` (inclusive, in the"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CampaignEntry',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name='entries', on_delete=OnDelete.CASCADE)),
                ('position', fields.IntField()),
                ('name', fields.CharField(default='', max_length=200)),
                ('number', fields.CharField(max_length=32)),
                ('status', fields.CharEnumField(default=EntryStatus.PENDING, description='PENDING: pending\nIN_PROGRESS: in_progress\nUNANSWERED: unanswered\nDONE: done\nREFUSED: refused', enum_type=EntryStatus, max_length=16)),
                ('outcome', fields.CharField(default='', max_length=32)),
                ('attempts', fields.IntField(default=0)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', null=True, db_constraint=True, to_field='id', related_name='campaign_entries', on_delete=OnDelete.SET_NULL)),
                ('updated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'campaign_entry', 'app': 'models', 'unique_together': (('campaign', 'number'),), 'pk_attr': 'id', 'table_description': 'One end customer on a call list.'},
            bases=['Model'],
        ),
        # The claim (the first pending entry by position) and the counters, as index scans.
        ops.AddIndex(
            model_name="CampaignEntry",
            index=Index(fields=["campaign_id", "status", "position"]),
        ),
    ]
