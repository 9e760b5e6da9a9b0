"""Who of the operator's staff may do what: the one authorisation function.

Agents see and change their own calls, cards, tasks and notes; supervisors also those of
the teams they lead; directors (and admins) everything. Running the service is by rank:
directors see the console and statistics, admins also manage subscribers and staff.
Some acts need a rank whatever the scope: listening to or whispering into a live call,
and keeping task categories, are for supervisors (on their own teams) and directors.
Every bot action and callback of the desk asks `allowed` before it touches anything; a
refusal changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from models.db import Role


class Act(StrEnum):
    """Everything a staff member can do at the desk."""

    SIGN_IN = "sign_in"  # put on the queue
    SIGN_OUT = "sign_out"
    PAUSE = "pause"
    SEE_PRESENCE = "see_presence"  # who is online
    SEE_CARD = "see_card"  # a call's card and its caller's history
    TAKE_MESSAGE = "take_message"  # message, request or appointment from a card
    EDIT_CONTACT = "edit_contact"
    TRANSFER = "transfer"  # put a live call through, with a note
    SEE_TASK = "see_task"
    CREATE_TASK = "create_task"
    EDIT_TASK = "edit_task"  # status, due time, assignee
    PLACE_CALL = "place_call"  # a scheduled call, from its task
    LISTEN = "listen"  # ChanSpy on a live call
    WHISPER = "whisper"
    KEEP_CATEGORIES = "keep_categories"
    # Running the service (issue: admins and reports).
    SEE_CONSOLE = "see_console"  # live and recent calls of every subscriber
    SEE_STATISTICS = "see_statistics"  # KPIs, usage, billing exports
    MANAGE_SUBSCRIBERS = "manage_subscribers"  # subscribers, DDIs, routes, PINs
    MANAGE_STAFF = "manage_staff"  # staff, teams, link codes


# Acts that need more than being the owner: the lowest role allowed, then scope applies.
_RANK = {Role.AGENT: 1, Role.SUPERVISOR: 2, Role.DIRECTOR: 3, Role.ADMIN: 4}
_MIN_RANK = {
    Act.LISTEN: Role.SUPERVISOR,
    Act.WHISPER: Role.SUPERVISOR,
    Act.KEEP_CATEGORIES: Role.SUPERVISOR,
    Act.SEE_CONSOLE: Role.DIRECTOR,
    Act.SEE_STATISTICS: Role.DIRECTOR,
    Act.MANAGE_SUBSCRIBERS: Role.ADMIN,
    Act.MANAGE_STAFF: Role.ADMIN,
}


@dataclass(frozen=True)
class Staff:
    """The one acting: their agent row, role, team and the teams they lead."""

    agent_id: int
    role: Role
    team_id: int | None = None
    leads: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Owner:
    """Whose the thing acted on is: an agent (their card, task, presence) and/or a team
    (a task assigned to a team, an agent's team). Both None: nobody's (only directors)."""

    agent_id: int | None = None
    team_id: int | None = None


def allowed(actor: Staff, act: Act, owner: Owner) -> bool:
    """May `actor` do `act` to something `owner` holds?"""
    rank = _RANK.get(actor.role)
    if rank is None:  # subscribers and anyone else have no desk
        return False
    needed = _MIN_RANK.get(act)
    if needed is not None and rank < _RANK[needed]:
        return False
    if rank >= _RANK[Role.DIRECTOR]:
        return True
    if actor.role is Role.SUPERVISOR and owner.team_id is not None:
        if owner.team_id in actor.leads:
            return True
    if needed is not None:  # a supervisor's rank acts only on the teams they lead
        return False
    if owner.agent_id is not None and owner.agent_id == actor.agent_id:
        return True
    # A task for the agent's whole team is theirs to see and work, not to reassign.
    return (
        act in (Act.SEE_TASK, Act.EDIT_TASK, Act.PLACE_CALL)
        and owner.agent_id is None
        and owner.team_id is not None
        and owner.team_id == actor.team_id
    )
