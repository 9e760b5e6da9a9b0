# (filled by the feature's work)
from tortoise import migrations


class Migration(migrations.Migration):
    dependencies = [("models", "0010_schedules")]

    initial = False

    operations: list[object] = []
