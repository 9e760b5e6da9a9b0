# The outbox's claim and /metrics' counts by channel and status as index scans.
from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("models", "0007_admin")]

    initial = False

    operations = [
        ops.AddIndex(
            model_name="Delivery",
            index=Index(fields=["status", "next_attempt_at"]),
        ),
        ops.AddIndex(
            model_name="Delivery",
            index=Index(fields=["status", "channel"]),
        ),
    ]
