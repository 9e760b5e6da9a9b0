"""Making call lists (the CLI, later the web desk): a campaign, its contacts added from
typed lines or CSV, and which lists are open to an agent today."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from gateway.campaigns.importing import ON_LIST, Contact, LineError
from gateway.staff.rights import Act, Owner, Staff, allowed
from models.campaigns import Campaign, CampaignEntry
from models.db import Subscriber
from models.staff import Agent, Team


class CampaignError(Exception):
    """A list that cannot be made as asked (the CLI prints it)."""


def owner(campaign: Campaign) -> Owner:
    """A list is its agent's, or its team's: the rights of a task apply."""
    return Owner(agent_id=campaign.agent_id, team_id=campaign.team_id)  # type: ignore[attr-defined]


def today(subscriber: Subscriber, now: datetime) -> date:
    return now.astimezone(ZoneInfo(subscriber.timezone)).date()


def is_open(campaign: Campaign, subscriber: Subscriber, now: datetime) -> bool:
    return campaign.starts_on <= today(subscriber, now) <= campaign.ends_on


async def create(
    *,
    subscriber_id: int,
    name: str,
    script: str,
    starts_on: date,
    ends_on: date,
    agent_id: int | None = None,
    team_id: int | None = None,
) -> Campaign:
    if not name.strip():
        raise CampaignError("a call list needs a name")
    if ends_on < starts_on:
        raise CampaignError("the list ends before it starts")
    if (agent_id is None) == (team_id is None):
        raise CampaignError("give an agent or a team (one of them)")
    if not await Subscriber.exists(id=subscriber_id):
        raise CampaignError(f"no subscriber {subscriber_id}")
    if agent_id is not None and not await Agent.exists(id=agent_id):
        raise CampaignError(f"no staff member {agent_id}")
    if team_id is not None and not await Team.exists(id=team_id):
        raise CampaignError(f"no team {team_id}")
    return await Campaign.create(
        subscriber_id=subscriber_id,
        name=name.strip()[:200],
        script=script,
        starts_on=starts_on,
        ends_on=ends_on,
        agent_id=agent_id,
        team_id=team_id,
    )


async def add_contacts(campaign: Campaign, contacts: list[Contact]) -> list[LineError]:
    """Append the contacts after the list's last position; a number already on the list
    is reported, not added twice (the unique constraint holds it too)."""
    async with in_transaction():
        numbers = CampaignEntry.filter(campaign_id=campaign.id).values_list("number", flat=True)
        known: set[str] = {str(n) for n in await numbers}
        last = await CampaignEntry.filter(campaign_id=campaign.id).order_by("-position").first()
        position = last.position if last is not None else 0
        errors: list[LineError] = []
        rows: list[CampaignEntry] = []
        for contact in contacts:
            if contact.number in known:
                errors.append(LineError(contact.line, ON_LIST, {"number": contact.number}))
                continue
            known.add(contact.number)
            position += 1
            rows.append(
                CampaignEntry(
                    campaign_id=campaign.id,
                    position=position,
                    name=contact.name,
                    number=contact.number,
                )
            )
        await CampaignEntry.bulk_create(rows)
    return errors


async def open_to(actor: Staff, now: datetime) -> list[Campaign]:
    """The lists this staff member may work today (their own, their team's, the teams they
    lead; every one for directors), oldest first."""
    found = []
    day = now.date()  # UTC; each list is then checked in its subscriber's time zone
    near = Campaign.filter(
        starts_on__lte=day + timedelta(days=1), ends_on__gte=day - timedelta(days=1)
    )
    for campaign in await near.select_related("subscriber").order_by("id"):
        if is_open(campaign, campaign.subscriber, now) and allowed(
            actor, Act.PLACE_CALL, owner(campaign)
        ):
            found.append(campaign)
    return found
