# (filled by the feature's work)
from tortoise import migrations


class Migration(migrations.Migration):
    dependencies = [("models", "0008_delivery_indexes")]

    initial = False

    operations: list[object] = []
