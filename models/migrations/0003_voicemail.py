from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_channels')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Voicemail',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=128)),
                ('mailbox', fields.CharField(max_length=80)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', null=True, db_constraint=True, to_field='id', related_name='voicemails', on_delete=OnDelete.SET_NULL)),
                ('call', fields.ForeignKeyField('models.Call', source_field='call_id', null=True, db_constraint=True, to_field='id', related_name='voicemails', on_delete=OnDelete.SET_NULL)),
                ('caller_number', fields.CharField(default='', max_length=32)),
                ('caller_name', fields.CharField(default='', max_length=200)),
                ('left_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('duration', fields.FloatField(default=0)),
                ('audio_path', fields.CharField(max_length=500)),
                ('transcript', fields.TextField(default='', unique=False)),
                ('transcript_ok', fields.BooleanField(default=False)),
                ('transcript_error', fields.CharField(default='', max_length=255)),
                ('found_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'voicemail', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A message left in an Asterisk mailbox, found in the spool, delivered once.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Delivery',
            name='attachments',
            field=fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
