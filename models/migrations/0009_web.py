# The web desk: magic links, sessions, link-request buckets; the calls page's index.
from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("models", "0008_delivery_indexes")]

    initial = False

    operations = [
        ops.CreateModel(
            name='WebLink',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', db_constraint=True, to_field='id', related_name='web_links', on_delete=OnDelete.CASCADE)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'web_link', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebSession',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('sid_hash', fields.CharField(unique=True, max_length=64)),
                ('subscriber', fields.ForeignKeyField('models.Subscriber', source_field='subscriber_id', db_constraint=True, to_field='id', related_name='web_sessions', on_delete=OnDelete.CASCADE)),
                ('csrf', fields.CharField(max_length=64)),
                ('lang', fields.CharField(null=True, max_length=8)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'web_session', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebLinkBucket',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(max_length=64)),
                ('window', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('count', fields.IntField(default=0)),
            ],
            options={'table': 'web_link_bucket', 'app': 'models', 'pk_attr': 'id', 'unique_together': (('key', 'window'),)},
            bases=['Model'],
        ),
        # The calls page: one subscriber's calls, newest first, as an index range scan.
        ops.AddIndex(
            model_name="Call",
            index=Index(fields=["subscriber_id", "started_at"]),
        ),
    ]
