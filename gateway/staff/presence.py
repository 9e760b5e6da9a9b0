"""Agents on the queue: sign in, sign out, pause with a reason, resume; who is online.

The PBX is the truth for membership and pause. A staff action is done on the PBX first
(QueueAdd, QueueRemove, QueuePause) and written to the database only once Asterisk has
accepted it, as the command desk does. What happens on the PBX otherwise (a member added
or removed from the Asterisk CLI, another AMI client, a restart that forgot the dynamic
members) reaches `Agent.presence` too: QueueMember* events as they come (`feed`, applied
in order by `run`), and the QueueStatus listing after every AMI login (`resync`), which
signs out whoever the PBX no longer has and takes up whoever it has.

Every change closes the agent's open `PresenceSpan` and, unless signed out, opens one for
the new state (`ready`, or `paused` with its reason): signed-in time is the sum of both,
pause time the `paused` ones (supervisors' statistics).

Rights (gateway/staff/rights.allowed; refusals change nothing, are audited and
answered): signing in and out is `Act.SIGN_IN`/`Act.SIGN_OUT`, pausing and resuming
`Act.PAUSE`, on the agent acted for: an agent acts for themselves, a supervisor also for
the members of the teams they lead (`/signout <agent id>`), a director for anyone.
`/online` lists the staff members online the asker may `Act.SEE_PRESENCE` of: an agent
sees themselves, a supervisor the teams they lead and themselves, a director everyone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from gateway.control import audit, callbacks
from gateway.pbx.errors import UNREACHABLE, PbxUnavailable
from gateway.staff.identity import owner_of, staff_of_chat
from gateway.staff.replies import Reply, language, not_staff, refuse
from gateway.staff.rights import Act, Staff, allowed
from locales import N_, tr
from models.events import MemberEvent, MemberRemoved, QueueMember
from models.staff import Agent, Presence, PresenceSpan
from models.vocab import Channel

log = logging.getLogger(__name__)

NO_INTERFACE = N_("{agent} has no queue member interface yet; an admin sets it.")
SIGNED_IN = N_("{agent} is signed in: calls ring now.")
SIGNED_OUT = N_("{agent} is signed out.")
PAUSED = N_("{agent} is paused: {reason}.")
NOT_SIGNED_IN = N_("{agent} is not signed in.")
WHY = N_("Why the pause? Choose a reason, or type /pause and the reason.")
ONLINE = N_("Online now:")
NOBODY = N_("Nobody you can see is online.")
ROW = N_("{name} ({team}): {state} since {since}")
NO_TEAM = N_("no team")
READY_LABEL = N_("ready")
PAUSED_LABEL = N_("paused, {reason}")

# Pause reasons offered as buttons: the key is what the PBX and the statistics get.
REASONS: dict[str, str] = {
    "break": N_("Break"),
    "lunch": N_("Lunch"),
    "meeting": N_("Meeting"),
    "training": N_("Training"),
}
MAX_REASON = 100  # PresenceSpan.reason, Agent.pause_reason
SYNC_WAIT = 30.0  # a login's sync waits this long behind the events before it


class QueuePbx(Protocol):
    """What presence asks of the phone system (gateway/pbx/actions.Pbx)."""

    async def queue_add(
        self, queue: str, interface: str, member_name: str, paused: bool = False
    ) -> bool: ...

    async def queue_remove(self, queue: str, interface: str) -> bool: ...

    async def queue_pause(
        self, queue: str | None, interface: str, paused: bool, reason: str = ""
    ) -> None: ...

    async def queue_members(self, queue: str | None = None) -> list[QueueMember]: ...


@dataclass
class _Sync:
    members: list[QueueMember]
    done: asyncio.Future[int]


def _state(member: QueueMember | None) -> tuple[Presence, str]:
    if member is None:
        return Presence.SIGNED_OUT, ""
    if member.paused:
        return Presence.PAUSED, member.reason[:MAX_REASON]
    return Presence.READY, ""


def reason_label(lang: str, reason: str) -> str:
    """A preset reason in the reader's language; typed ones as typed."""
    return tr(lang, REASONS[reason]) if reason in REASONS else reason


class PresenceDesk:
    def __init__(
        self,
        pbx: QueuePbx,
        timezone: str = "UTC",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pbx = pbx
        self._zone = ZoneInfo(timezone)
        self._clock = clock
        self._inbox: asyncio.Queue[MemberEvent | _Sync] = asyncio.Queue()
        self._lock = asyncio.Lock()  # one state write at a time: spans never overlap
        self.running = False
        # Told after every state change written (tests wait on these).
        self.observers: list[Callable[[int, Presence], None]] = []

    # -- the PBX's side ------------------------------------------------------------------

    def feed(self, event: MemberEvent) -> None:
        """A QueueMember* event off the AMI stream (synchronous: the AMI hot path)."""
        self._inbox.put_nowait(event)

    async def run(self) -> None:
        """Apply what the PBX said, in the order it said it (a supervised loop)."""
        self.running = True
        try:
            while True:
                item = await self._inbox.get()
                try:
                    if isinstance(item, _Sync):
                        if not item.done.done():
                            item.done.set_result(await self.sync(item.members))
                    else:
                        await self.on_event(item)
                except Exception as exc:
                    if isinstance(item, _Sync) and not item.done.done():
                        item.done.set_exception(exc)
                    else:
                        log.exception("presence: %r could not be applied", item)
                finally:
                    self._inbox.task_done()
        finally:
            self.running = False

    async def resync(self) -> int:
        """After an AMI login: read QueueStatus and bring every agent in step with it
        (after the events that came before the listing). Returns how many changed."""
        members = await self._pbx.queue_members()
        if not self.running:
            return await self.sync(members)
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait(_Sync(members, done))
        return await asyncio.wait_for(done, SYNC_WAIT)

    async def on_event(self, event: MemberEvent) -> None:
        member = event.member
        agent = await Agent.get_or_none(interface=member.interface, queue=member.queue)
        if agent is None:
            return  # a member that is none of our staff (a static member, a test phone)
        presence, reason = _state(None if isinstance(event, MemberRemoved) else member)
        await self.record(agent.id, presence, reason)

    async def sync(self, members: Sequence[QueueMember]) -> int:
        """Every agent with an interface as `members` (the whole listing) has them."""
        by_key = {(m.queue, m.interface): m for m in members}
        changed = 0
        for agent in await Agent.filter(interface__isnull=False).only("id", "interface", "queue"):
            presence, reason = _state(by_key.get((agent.queue, agent.interface or "")))
            changed += await self.record(agent.id, presence, reason)
        if changed:
            log.info("presence: %d agent(s) brought in step with the PBX", changed)
        return changed

    async def record(self, agent_id: int, presence: Presence, reason: str = "") -> bool:
        """Write a state the PBX has: the agent row and its spans. False if unchanged."""
        async with self._lock:
            now = self._clock()
            async with in_transaction():
                agent = await Agent.get_or_none(id=agent_id)
                if agent is None:
                    return False
                if agent.presence == presence and agent.pause_reason == reason:
                    return False
                await PresenceSpan.filter(agent_id=agent_id, ended_at__isnull=True).update(
                    ended_at=now
                )
                if presence is not Presence.SIGNED_OUT:
                    await PresenceSpan.create(
                        agent_id=agent_id, presence=presence, reason=reason, started_at=now
                    )
                agent.presence, agent.pause_reason, agent.presence_since = presence, reason, now
                await agent.save(update_fields=["presence", "pause_reason", "presence_since"])
        log.info("agent %s: %s %s", agent_id, presence.value, reason)
        for observe in self.observers:
            observe(agent_id, presence)
        return True

    # -- the staff's side (bot/staff.py) -------------------------------------------------

    async def command(
        self, chat_id: int, act: Act, text: str, telegram_lang: str | None = None
    ) -> Reply:
        """/signin, /signout, /pause <reason> (`act` SIGN_IN, SIGN_OUT, PAUSE), each
        optionally naming an agent id first (a supervisor's team member; so a typed
        reason cannot start with a number). /pause without a reason offers buttons."""
        return await self._act(chat_id, act, text, telegram_lang, resume=False)

    async def resume(self, chat_id: int, text: str, telegram_lang: str | None = None) -> Reply:
        """/resume [agent id]: back from a pause (the PAUSE act)."""
        return await self._act(chat_id, Act.PAUSE, text, telegram_lang, resume=True)

    async def pause_button(
        self, chat_id: int, data: str, telegram_lang: str | None = None
    ) -> Reply:
        """A preset reason pressed (`pz:<agent id>:<reason>`)."""
        unpacked = callbacks.unpack_pause(data)
        if unpacked is None or unpacked[1] not in REASONS:
            found = await staff_of_chat(chat_id)
            lang = language(found[0] if found else None, telegram_lang)
            return await refuse(chat_id, lang, data[:64], why="bad data")
        agent_id, reason = unpacked
        reply = await self._act(chat_id, Act.PAUSE, f"{agent_id} {reason}", telegram_lang)
        return Reply(text=reply.text, toast=reply.text, refused=reply.refused)

    async def _act(
        self, chat_id: int, act: Act, text: str, telegram_lang: str | None, resume: bool = False
    ) -> Reply:
        said = f"/{'resume' if resume else _COMMAND[act]} {text}".strip()[:200]
        found = await staff_of_chat(chat_id)
        if found is None:
            return await not_staff(chat_id, telegram_lang or "en", said)
        me, actor = found
        lang = language(me, telegram_lang)
        head, _, rest = text.strip().partition(" ")
        target: Agent | None = me
        if head.isdigit():
            target = await Agent.get_or_none(id=int(head)).select_related("user", "team")
            text = rest
        if target is None or not allowed(actor, act, owner_of(target)):
            return await _refused(chat_id, lang, said)
        name = target.user.name
        if not target.interface:
            return Reply(text=tr(lang, NO_INTERFACE, agent=name))
        reason = text.strip()[:MAX_REASON]
        if act is Act.PAUSE and not resume and not reason:
            return Reply(text=tr(lang, WHY), buttons=_reason_buttons(lang, target.id))
        try:
            answer = await self._carry_out(target, act, reason, resume, lang)
        except PbxUnavailable as exc:
            log.warning("presence: %s for agent %s not done: %s", act.value, target.id, exc)
            await audit.record(Channel.TELEGRAM, str(chat_id), None, said, audit.FAILED, str(exc))
            return Reply(text=tr(lang, UNREACHABLE))
        await audit.record(Channel.TELEGRAM, str(chat_id), None, said, audit.DONE)
        return Reply(text=answer)

    async def _carry_out(
        self, target: Agent, act: Act, reason: str, resume: bool, lang: str
    ) -> str:
        """On the PBX first; the database once it has accepted. Asterisk refusing to add
        a member already there, or to remove one not there, means the wanted state holds."""
        name, queue, interface = target.user.name, target.queue, target.interface or ""
        if act is Act.SIGN_OUT:
            await self._pbx.queue_remove(queue, interface)
            await self.record(target.id, Presence.SIGNED_OUT)
            return tr(lang, SIGNED_OUT, agent=name)
        if act is Act.SIGN_IN and target.presence is not Presence.PAUSED:
            await self._pbx.queue_add(queue, interface, name)
            await self.record(target.id, Presence.READY)
            return tr(lang, SIGNED_IN, agent=name)
        if target.presence is Presence.SIGNED_OUT:
            return tr(lang, NOT_SIGNED_IN, agent=name)
        if act is Act.SIGN_IN or resume:  # signing in while paused means "back"
            await self._pbx.queue_pause(queue, interface, False)
            await self.record(target.id, Presence.READY)
            return tr(lang, SIGNED_IN, agent=name)
        await self._pbx.queue_pause(queue, interface, True, reason)
        await self.record(target.id, Presence.PAUSED, reason)
        return tr(lang, PAUSED, agent=name, reason=reason_label(lang, reason))

    async def online(self, chat_id: int, telegram_lang: str | None = None) -> Reply:
        """Who is signed in (ready or paused), of those the asker may see."""
        found = await staff_of_chat(chat_id)
        if found is None:
            return await not_staff(chat_id, telegram_lang or "en", "/online")
        me, actor = found
        lang = language(me, telegram_lang)
        rows = [
            self._row(lang, agent)
            for agent in await Agent.filter(presence__not=Presence.SIGNED_OUT)
            .order_by("team_id", "id")
            .select_related("user", "team")
            if _may_see(actor, agent)
        ]
        if not rows:
            return Reply(text=tr(lang, NOBODY))
        return Reply(text="\n".join([tr(lang, ONLINE), *rows]))

    def _row(self, lang: str, agent: Agent) -> str:
        if agent.presence is Presence.PAUSED:
            state = tr(lang, PAUSED_LABEL, reason=reason_label(lang, agent.pause_reason))
        else:
            state = tr(lang, READY_LABEL)
        since = agent.presence_since.astimezone(self._zone) if agent.presence_since else None
        return tr(
            lang,
            ROW,
            name=agent.user.name,
            team=agent.team.name if agent.team is not None else tr(lang, NO_TEAM),
            state=state,
            since=since.strftime("%H:%M") if since else "?",
        )


_COMMAND = {Act.SIGN_IN: "signin", Act.SIGN_OUT: "signout", Act.PAUSE: "pause"}


def _may_see(actor: Staff, agent: Agent) -> bool:
    return allowed(actor, Act.SEE_PRESENCE, owner_of(agent))


def _reason_buttons(lang: str, agent_id: int) -> tuple[tuple[tuple[str, str], ...], ...]:
    pairs = [(tr(lang, label), callbacks.pause(agent_id, key)) for key, label in REASONS.items()]
    return tuple(tuple(pairs[i : i + 2]) for i in range(0, len(pairs), 2))


async def _refused(chat_id: int, lang: str, said: str) -> Reply:
    reply = await refuse(chat_id, lang, said)
    return Reply(text=reply.toast, toast=reply.toast, refused=True)
