"""Call lists (campaigns) worked by agents: a subscriber's list of end customers to call,
with the script the agent reads, a date window and the agent or team who works it.

Each entry is claimed by one agent at a time (a conditional UPDATE on `status`, see
gateway/campaigns/work.py); its status says where it stands, its outcome what the agent
recorded."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.db import Subscriber
from models.staff import Agent, Team


class EntryStatus(StrEnum):
    PENDING = "pending"  # not called yet (or put back to call later)
    IN_PROGRESS = "in_progress"  # claimed by an agent, the call placed or being placed
    UNANSWERED = "unanswered"  # called, nobody (or busy)
    DONE = "done"  # reached, or finished for good (wrong number, declined)
    REFUSED = "refused"  # skipped: the subscriber's outbound policy refuses the number


class Campaign(Model):
    """A subscriber's call list, open from `starts_on` to `ends_on` (inclusive, in the
    subscriber's time zone), worked by one agent or by any agent of one team."""

    id = fields.IntField(primary_key=True)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="campaigns", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    script = fields.TextField(default="")
    starts_on = fields.DateField()
    ends_on = fields.DateField()
    agent: fields.ForeignKeyNullableRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="campaigns", null=True, on_delete=fields.SET_NULL
    )
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="campaigns", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "campaign"


class CampaignEntry(Model):
    """One end customer on a call list."""

    id = fields.IntField(primary_key=True)
    campaign: fields.ForeignKeyRelation[Campaign] = fields.ForeignKeyField(
        "models.Campaign", related_name="entries", on_delete=fields.CASCADE
    )
    position = fields.IntField()  # the order of the list (1, 2, ...)
    name = fields.CharField(max_length=200, default="")
    number = fields.CharField(max_length=32)  # E.164
    status = fields.CharEnumField(EntryStatus, max_length=16, default=EntryStatus.PENDING)
    outcome = fields.CharField(max_length=32, default="")  # gateway/campaigns/work.OUTCOMES
    attempts = fields.IntField(default=0)  # calls placed
    agent: fields.ForeignKeyNullableRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="campaign_entries", null=True, on_delete=fields.SET_NULL
    )
    updated_at = fields.DatetimeField(null=True)

    class Meta:
        table = "campaign_entry"
        unique_together = (("campaign", "number"),)
        # The claim's scan (the first pending by position) and the counters.
        indexes = (("campaign_id", "status", "position"),)
