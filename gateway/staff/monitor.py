"""Supervisors listening to, or whispering to, a team member's live call.

`/listen <agent>` and `/whisper <agent>` (the agent's name or desk number): Act.LISTEN /
Act.WHISPER on the agent (rights.allowed: a supervisor on the teams they lead, directors
and admins on anyone, agents never). The agent's live call is one the tracker follows,
answered, on which the PBX lists a channel of the agent's queue member interface right
now (CoreShowChannels); then Originate rings the supervisor's own interface into
ChanSpy on exactly that channel, with q (no beep, no name spoken) and E (leave when it
hangs up), plus w to whisper (only the agent hears the supervisor). A refusal changes
nothing and is audited.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from gateway.pbx.actions import Pbx
from gateway.pbx.errors import UNREACHABLE, PbxUnavailable
from gateway.staff.identity import owner_of, staff_of_chat
from gateway.staff.replies import Reply, language, not_staff, refuse
from gateway.staff.rights import Act, Owner, allowed
from gateway.staff.transfer import record
from locales import N_, tr
from models.db import Call, CallDirection
from models.events import CallSnapshot, CallStatus
from models.staff import Agent

log = logging.getLogger(__name__)

USAGE = N_("Say whose call: /{command} <agent's name or desk number>.")
NO_AGENT = N_("There is no agent {name}.")
NOT_ON_CALL = N_("{name} is not on a call right now.")
NO_PHONE = N_("Your desk has no phone (queue member interface) to ring.")
LISTENING = N_("Your phone rings: answer it to listen to {name}'s call.")
WHISPERING = N_("Your phone rings: answer it to whisper to {name}; the caller does not hear you.")

Calls = Callable[[], Iterable[CallSnapshot]]


class Monitor:
    def __init__(self, pbx: Pbx, calls: Calls) -> None:
        self._pbx = pbx
        self._calls = calls  # the tracker's calls in progress

    async def spy(self, chat_id: int, who: str, whisper: bool, tg: str | None) -> Reply:
        command = "whisper" if whisper else "listen"
        what = f"/{command} {who}".strip()
        found = await staff_of_chat(chat_id)
        if found is None:
            return await not_staff(chat_id, language(None, tg), what)
        me, actor = found
        lang = language(me, tg)
        act = Act.WHISPER if whisper else Act.LISTEN
        # Only those who may listen to someone at all are told how, or who does not exist.
        may_spy = allowed(actor, act, Owner()) or bool(actor.leads)
        if not may_spy:
            return await refuse(chat_id, lang, what, why=str(act))
        if not who.strip():
            return Reply(text=tr(lang, USAGE, command=command))
        agent = await _agent_named(who.strip())
        if agent is None:
            return Reply(text=tr(lang, NO_AGENT, name=who.strip()))
        if not allowed(actor, act, owner_of(agent)):
            return await refuse(chat_id, lang, what, why=f"{act} agent {agent.id}")
        name = agent.user.name
        if not me.interface:
            return Reply(text=tr(lang, NO_PHONE))
        try:
            channel = await self._channel_of(agent)
            if channel is None:
                return Reply(text=tr(lang, NOT_ON_CALL, name=name))
            await self._pbx.originate_spy(me.interface, channel, whisper, caller_name=name)
        except PbxUnavailable as exc:
            log.warning("%s on agent %s failed: %s", command, agent.id, exc)
            await record(chat_id, None, what, "failed")
            return Reply(text=tr(lang, UNREACHABLE))
        await record(chat_id, None, f"{what} (agent {agent.id})", "done")
        # An internal call in the console: the supervisor's phone onto the agent's call.
        await Call.create(
            linkedid=f"int:{uuid.uuid4().hex}",
            caller_number=agent.interface or "",
            caller_name=name,
            status=CallStatus.SCHEDULED,
            direction=CallDirection.INTERNAL,
            answered_by=me.interface,
            started_at=datetime.now(UTC),
        )
        return Reply(text=tr(lang, WHISPERING if whisper else LISTENING, name=name))

    async def _channel_of(self, agent: Agent) -> str | None:
        """The agent's channel on a live answered call, as the PBX lists it now."""
        interface = agent.interface
        if not interface:
            return None
        live = [c for c in self._calls() if not c.ended and c.answered_at is not None]
        live.sort(key=lambda c: c.answered_by != interface)  # theirs first, then transfers
        for call in live:
            channel = await self._pbx.member_channel(call.linkedid, interface)
            if channel is not None:
                return channel
        return None


async def _agent_named(who: str) -> Agent | None:
    """An agent by desk number (their agent id) or by name (exact, any case)."""
    if who.isascii() and who.isdigit():
        return await Agent.get_or_none(id=int(who)).select_related("user")
    agents = await Agent.filter(user__name__iexact=who).select_related("user")
    return agents[0] if len(agents) == 1 else None
