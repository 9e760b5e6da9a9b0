"""The operator's staff as an admin keeps them: teams, staff members with their role and
queue member interface, and the one-time codes that link their Telegram chats.

A staff code is a `LinkCode` naming the staff `User` (a subscriber's names the
subscriber); `/start <code>` tries a staff code first (`redeem`), then a subscriber's
(gateway/control/admin.link_chat), so one /start serves both.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from locales import LANGUAGES, N_, tr
from models.db import LinkCode, Role, User
from models.staff import Agent, Team
from models.vocab import Language

LINK_CODE_TTL = timedelta(days=7)
STAFF_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.DIRECTOR)
LEADER_ROLES = (Role.SUPERVISOR, Role.DIRECTOR)
DEFAULT_QUEUE = "frontdesk-agents"  # the dialplan's FRONTDESK_QUEUE


class StaffError(ValueError):
    """A request about staff that cannot be carried out, with the reason."""


@dataclass(frozen=True)
class NewStaff:
    agent: Agent
    link_code: str


async def add_team(name: str, supervisor_id: int | None = None) -> Team:
    """A team, led by the staff member `supervisor_id` (an agent id; a supervisor or a
    director)."""
    name = name.strip()
    if not name:
        raise StaffError("a team needs a name")
    if await Team.exists(name=name):
        raise StaffError(f"team {name!r} exists already")
    leader = await _leader(supervisor_id) if supervisor_id is not None else None
    return await Team.create(name=name, supervisor=leader)


async def _leader(agent_id: int) -> User:
    agent = await Agent.get_or_none(id=agent_id).select_related("user")
    if agent is None:
        raise StaffError(f"no staff member {agent_id}")
    if agent.user.role not in LEADER_ROLES:
        raise StaffError(f"staff member {agent_id} is an {agent.user.role}, not a supervisor")
    return agent.user


async def find_team(team: str) -> Team:
    """A team by name, or by id."""
    found = await Team.get_or_none(name=team)
    if found is None and team.isdigit():
        found = await Team.get_or_none(id=int(team))
    if found is None:
        raise StaffError(f"no team {team!r} (agent team add {team!r} first)")
    return found


async def add_staff(
    *,
    name: str,
    role: str,
    team: str | None = None,
    interface: str | None = None,
    queue: str | None = None,
    language: str | None = None,
    admin: bool = False,
) -> NewStaff:
    """A staff member (their user and desk) and the code that links their chat. An admin
    (role admin) only with `admin`: see add_admin."""
    if role not in STAFF_ROLES and not (admin and role == Role.ADMIN):
        raise StaffError(f"role must be one of {', '.join(STAFF_ROLES)}")
    if language is not None and language not in LANGUAGES:
        raise StaffError(f"language must be one of {', '.join(LANGUAGES)}")
    if not name.strip():
        raise StaffError("a staff member needs a name")
    interface = (interface or "").strip() or None
    if interface is not None:
        if "/" not in interface:
            raise StaffError(f"interface {interface!r} is no queue member interface (TECH/name)")
        if await Agent.exists(interface=interface):
            raise StaffError(f"interface {interface} is another staff member's already")
    the_team = await find_team(team) if team else None
    if role == Role.AGENT and the_team is None:
        raise StaffError("an agent belongs to a team (--team)")
    async with in_transaction():
        user = await User.create(name=name.strip(), role=Role(role), language=language)
        agent = await Agent.create(
            user=user, team=the_team, interface=interface, queue=queue or DEFAULT_QUEUE
        )
        code = await _new_code(user)
    agent.user = user
    return NewStaff(agent, code)


async def add_admin(name: str, language: str | None = None) -> NewStaff:
    """An admin: a staff user with role admin and a desk row, so identity and rights know
    them (`frontdesk admin add` makes the first, the admins' menus the others)."""
    return await add_staff(name=name, role=Role.ADMIN, language=language, admin=True)


async def new_staff_code(agent_id: int) -> str:
    """A fresh one-time code for a staff member (a new phone, a lost chat)."""
    agent = await Agent.get_or_none(id=agent_id).select_related("user")
    if agent is None:
        raise StaffError(f"no staff member {agent_id}")
    return await _new_code(agent.user)


async def _new_code(user: User) -> str:
    code = secrets.token_hex(4)
    await LinkCode.create(code=code, user=user, expires_at=datetime.now(UTC) + LINK_CODE_TTL)
    return code


async def redeem(code: str, chat_id: int, language: str | None) -> Agent | None:
    """`/start <code>` with a staff code: the chat becomes that staff member's (a chat
    linked to anyone else before is theirs no more). None when it is no unused, unexpired
    staff code: a subscriber's code, or nothing valid."""
    now = datetime.now(UTC)
    async with in_transaction():
        link = await LinkCode.get_or_none(
            code=code, used_at__isnull=True, user_id__isnull=False
        ).select_related("user")
        if link is None or link.expires_at < now or link.user is None:
            return None
        link.used_at = now
        await link.save(update_fields=["used_at"])
        user = link.user
        await (
            User.filter(telegram_chat_id=chat_id).exclude(id=user.id).update(telegram_chat_id=None)
        )
        user.telegram_chat_id = chat_id
        if user.language is None and language in LANGUAGES:
            user.language = language
        await user.save(update_fields=["telegram_chat_id", "language"])
    return await Agent.get_or_none(user_id=user.id).select_related("user", "team")


async def roster() -> list[Agent]:
    """Every staff member's desk, with user and team, by id."""
    return await Agent.all().order_by("id").select_related("user", "team")


LINKED = N_("Linked to the desk as {name}. /signin puts you on the queue, /online shows who is on.")


async def link_chat(code: str, chat_id: int, telegram_lang: str | None) -> str | None:
    """`/start <code>`: the answer when it is a staff code (the chat is linked), None
    when it is not one (a subscriber's code, or nothing valid)."""
    agent = await redeem(code, chat_id, telegram_lang)
    if agent is None:
        return None
    lang = agent.user.language if agent.user.language in LANGUAGES else Language.EN
    return tr(str(lang), LINKED, name=agent.user.name)
