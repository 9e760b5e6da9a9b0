from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

from enum import StrEnum


# The enums as they were when this migration was written: a later change to the
# models' enums must not change what an old migration means.
class Urgency(StrEnum):
    NORMAL = 'normal'
    URGENT = 'urgent'



class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DeliveryPart',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('delivery', fields.ForeignKeyField('models.Delivery', source_field='delivery_id', null=True, db_constraint=True, to_field='id', related_name='parts', on_delete=OnDelete.CASCADE)),
                ('channel', fields.CharField(max_length=16)),
                ('message_id', fields.CharField(max_length=128)),
                ('delivered', fields.BooleanField(null=True)),
                ('detail', fields.CharField(default='', max_length=64)),
                ('reported_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'delivery_part', 'app': 'models', 'unique_together': (('channel', 'message_id'),), 'pk_attr': 'id', 'table_description': 'A piece of a sent Delivery (an SMS part, an MMS), by the id its channel gave it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='InboundMessage',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('channel', fields.CharField(max_length=16)),
                ('sender', fields.CharField(max_length=254)),
                ('recipient', fields.CharField(default='', max_length=254)),
                ('text', fields.TextField(unique=False)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', null=True, db_constraint=True, to_field='id', related_name='inbound', on_delete=OnDelete.SET_NULL)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'inbound_message', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Text a person sent us (an SMS, an email reply), kept before anything acts on it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Notification',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('dedupe_key', fields.CharField(unique=True, max_length=200)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', db_constraint=True, to_field='id', related_name='notifications', on_delete=OnDelete.CASCADE)),
                ('call', fields.ForeignKeyField('models.Call', source_field='call_id', null=True, db_constraint=True, to_field='id', related_name='notifications', on_delete=OnDelete.SET_NULL)),
                ('kind', fields.CharField(max_length=32)),
                ('urgency', fields.CharEnumField(default=Urgency.NORMAL, description='NORMAL: normal\nURGENT: urgent', enum_type=Urgency, max_length=8)),
                ('payload', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('route', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('next_hop', fields.IntField(default=1)),
                ('escalate_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('acknowledged_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'notification', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One thing to tell a subscriber. Its Deliveries are the attempts, one per channel.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RoutingPreference',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', db_constraint=True, to_field='id', related_name='preferences', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=32)),
                ('urgency', fields.CharEnumField(default=Urgency.NORMAL, description='NORMAL: normal\nURGENT: urgent', enum_type=Urgency, max_length=8)),
                ('channels', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'routing_preference', 'app': 'models', 'unique_together': (('subscriber', 'kind', 'urgency'),), 'pk_attr': 'id', 'table_description': 'How a subscriber wants one kind of event told: channels in order of preference.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Delivery',
            name='html',
            field=fields.TextField(default='', unique=False),
        ),
        ops.AddField(
            model_name='Delivery',
            name='notification',
            field=fields.ForeignKeyField('models.Notification', source_field='notification_id', null=True, db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE),
        ),
        ops.AddField(
            model_name='Delivery',
            name='reason',
            field=fields.CharField(default='', max_length=255),
        ),
        ops.AddField(
            model_name='Delivery',
            name='subject',
            field=fields.CharField(default='', max_length=255),
        ),
        ops.AddField(
            model_name='Subscriber',
            name='email',
            field=fields.CharField(null=True, max_length=254),
        ),
        ops.AddField(
            model_name='Subscriber',
            name='quiet_end',
            field=fields.CharField(null=True, max_length=5),
        ),
        ops.AddField(
            model_name='Subscriber',
            name='quiet_start',
            field=fields.CharField(null=True, max_length=5),
        ),
    ]
