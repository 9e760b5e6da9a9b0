from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

# Subscriber.forward_number was both the forward target and the subscriber's own mobile
# (SMS identity, SMS/MMS address). The mobile gets its own column, one subscriber's per
# number. Each forward_number becomes the mobile; where it does, forward_number is cleared,
# which means "forward to the mobile": the same number, AstDB unchanged. A number on file
# for several subscribers (one forwarding to another's mobile) cannot tell whose mobile it
# is: none of them gets it as mobile, they keep it as forward target, and an admin sets
# each one's own with `subscriber set ID --mobile`.
COPY_UNAMBIGUOUS = """
UPDATE subscriber SET mobile = forward_number
WHERE forward_number IS NOT NULL AND forward_number IN (
    SELECT forward_number FROM subscriber
    WHERE forward_number IS NOT NULL
    GROUP BY forward_number HAVING COUNT(*) = 1
)
"""
FOLLOW_THE_MOBILE = "UPDATE subscriber SET forward_number = NULL WHERE forward_number = mobile"
UNDO = [
    "UPDATE subscriber SET forward_number = mobile WHERE forward_number IS NULL",
]


class Migration(migrations.Migration):
    dependencies = [('models', '0004_control')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Subscriber',
            name='mobile',
            field=fields.CharField(null=True, unique=True, max_length=20),
        ),
        ops.RunSQL([COPY_UNAMBIGUOUS, FOLLOW_THE_MOBILE], reverse_sql=UNDO),
    ]
