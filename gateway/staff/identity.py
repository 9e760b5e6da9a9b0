"""Who is acting at the desk: a staff member's agent row and the `Staff` the rights
function reads. Every staff entry point starts here, from the Telegram chat."""

from __future__ import annotations

from gateway.staff.rights import Owner, Staff
from models.db import Role, User
from models.staff import Agent, Team

STAFF_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.DIRECTOR, Role.ADMIN)


async def staff_of_chat(chat_id: int) -> tuple[Agent, Staff] | None:
    """The staff member whose linked chat this is (with their user loaded), or None."""
    user = await User.get_or_none(telegram_chat_id=chat_id)
    if user is None or user.role not in STAFF_ROLES:
        return None
    agent = await Agent.get_or_none(user=user).select_related("user", "team")
    if agent is None:
        return None
    return agent, await staff(agent)


async def staff(agent: Agent) -> Staff:
    """The rights view of an agent row (its user loaded)."""
    user: User = agent.user
    leads = [team.id for team in await Team.filter(supervisor_id=user.id).only("id")]
    return Staff(
        agent_id=agent.id,
        role=Role(user.role),
        team_id=agent.team_id,  # type: ignore[attr-defined]
        leads=frozenset(leads),
    )


def owner_of(agent: Agent) -> Owner:
    """Whose something held by this agent is: theirs, within their team."""
    return Owner(agent_id=agent.id, team_id=agent.team_id)  # type: ignore[attr-defined]
