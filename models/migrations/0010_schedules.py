# (filled by the feature's work)
from tortoise import migrations


class Migration(migrations.Migration):
    dependencies = [("models", "0009_web")]

    initial = False

    operations: list[object] = []
