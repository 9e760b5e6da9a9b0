"""Working a call list, in the database: claim the next entry, put one back, record an
outcome, find the previous one, count.

The claim is a conditional UPDATE (`... WHERE id = ? AND status = 'pending'`): of agents
pressing Next at once, each candidate goes to exactly one of them; a loser takes the next
candidate (every lost race means one pending entry fewer, so the loop ends). This holds on
SQLite and PostgreSQL alike, without row locks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import F
from tortoise.functions import Count

from models.campaigns import CampaignEntry, EntryStatus

S = EntryStatus
# What the agent records, and where it leaves the entry.
OUTCOMES: dict[str, EntryStatus] = {
    "reached": S.DONE,
    "no_answer": S.UNANSWERED,
    "busy": S.UNANSWERED,
    "wrong": S.DONE,  # wrong number: nothing more to do
    "later": S.PENDING,  # back on the list, to be claimed again
}
WORKED = (S.IN_PROGRESS, S.UNANSWERED, S.DONE, S.REFUSED)
REDIALLABLE = (S.IN_PROGRESS, S.UNANSWERED, S.DONE)


@dataclass(frozen=True)
class Counters:
    pending: int = 0
    in_progress: int = 0
    unanswered: int = 0
    done: int = 0
    refused: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.in_progress + self.unanswered + self.done + self.refused


async def counters(campaign_id: int) -> Counters:
    return (await counters_of([campaign_id]))[campaign_id]


async def counters_of(campaign_ids: list[int]) -> dict[int, Counters]:
    """Each list's counters in one query (/campaigns shows several lists)."""
    if not campaign_ids:
        return {}
    rows = (
        await CampaignEntry.filter(campaign_id__in=campaign_ids)
        .annotate(n=Count("id"))
        .group_by("campaign_id", "status")
        .values_list("campaign_id", "status", "n")
    )
    found: dict[int, dict[str, int]] = {i: {} for i in campaign_ids}
    for campaign_id, status, n in rows:
        found[int(campaign_id)][str(EntryStatus(status).value)] = int(n)
    return {i: Counters(**by_status) for i, by_status in found.items()}


async def held(campaign_id: int, agent_id: int) -> CampaignEntry | None:
    """The entry this agent has in progress on this list (its outcome not yet recorded)."""
    return (
        await CampaignEntry.filter(campaign_id=campaign_id, agent_id=agent_id, status=S.IN_PROGRESS)
        .order_by("position")
        .first()
    )


async def take(entry_id: int, agent_id: int, now: datetime) -> bool:
    """Claim this pending entry for the agent; False when someone else was first."""
    won = await CampaignEntry.filter(id=entry_id, status=S.PENDING).update(
        status=S.IN_PROGRESS, agent_id=agent_id, outcome="", updated_at=now
    )
    return bool(won)


async def claim_next(campaign_id: int, agent_id: int, now: datetime) -> CampaignEntry | None:
    """The first pending entry, now in progress for this agent; None when none is left."""
    while True:
        candidate = (
            await CampaignEntry.filter(campaign_id=campaign_id, status=S.PENDING)
            .order_by("position", "id")
            .only("id")
            .first()
        )
        if candidate is None:
            return None
        if await take(candidate.id, agent_id, now):
            return await CampaignEntry.get(id=candidate.id)


async def retake(entry_id: int, agent_id: int, now: datetime) -> bool:
    """Call an entry this agent worked again: back in progress, still theirs."""
    won = await CampaignEntry.filter(id=entry_id, agent_id=agent_id, status__in=REDIALLABLE).update(
        status=S.IN_PROGRESS, updated_at=now
    )
    return bool(won)


async def release(entry_id: int, agent_id: int, now: datetime) -> None:
    """The call could not be placed: the entry goes back on the list."""
    await CampaignEntry.filter(id=entry_id, agent_id=agent_id, status=S.IN_PROGRESS).update(
        status=S.PENDING, updated_at=now
    )


async def dialled(entry_id: int) -> None:
    """The PBX took the call: one attempt more."""
    await CampaignEntry.filter(id=entry_id).update(attempts=F("attempts") + 1)


async def refuse(entry_id: int, agent_id: int, reason: str, now: datetime) -> None:
    """The outbound policy refuses the number: skipped for good, the class as outcome."""
    await CampaignEntry.filter(id=entry_id, agent_id=agent_id, status=S.IN_PROGRESS).update(
        status=S.REFUSED, outcome=reason[:32], updated_at=now
    )


async def record(entry_id: int, agent_id: int, outcome: str, now: datetime) -> bool:
    """The agent's outcome on an entry they called (or correct it); False when the entry is
    not theirs to record (another agent's, refused, or back on the list)."""
    status = OUTCOMES[outcome]
    changed = await CampaignEntry.filter(
        id=entry_id, agent_id=agent_id, status__in=REDIALLABLE
    ).update(status=status, outcome=outcome, updated_at=now)
    return bool(changed)


async def previous(
    campaign_id: int, agent_id: int, before: int | None = None
) -> CampaignEntry | None:
    """The agent's worked entry just above position `before` (or their last one)."""
    query = CampaignEntry.filter(campaign_id=campaign_id, agent_id=agent_id, status__in=WORKED)
    if before is not None:
        query = query.filter(position__lt=before)
    return await query.order_by("-position").first()
