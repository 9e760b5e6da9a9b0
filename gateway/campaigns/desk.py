"""The agent's side of call lists, from their Telegram chat: /campaigns lists the lists
open to them today; Next claims the next contact and places the call (agent first, as a
task's "Call now": gateway/staff/tasks.py), an outcome button records it, Previous goes
back to their last contact, Call again redials one. Every press is checked here (who the
chat is, their rights on the list, the list's window, the entry being theirs) before
anything changes; a number the subscriber's outbound policy refuses is skipped, marked
`refused` and audited, and the next contact is taken instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from gateway.admin import policy
from gateway.campaigns import buttons, lists, render, work
from gateway.pbx.actions import Pbx
from gateway.pbx.errors import UNREACHABLE, PbxUnavailable
from gateway.staff.identity import staff_of_chat
from gateway.staff.replies import Reply, language, not_staff, refuse
from gateway.staff.rights import Act, allowed
from gateway.staff.tasks import NO_INTERFACE, placed_call, ring_agent_first
from locales import tr
from models.campaigns import Campaign, CampaignEntry
from models.db import NumberClass, Subscriber
from models.staff import Agent
from models.vocab import Channel

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
CALLING = "Calling: your phone rings first."  # the tasks' own msgid, translated there


def utcnow() -> datetime:
    return datetime.now(UTC)


def _who(entry: CampaignEntry) -> str:
    return " ".join(p for p in (entry.name, entry.number) if p)


@dataclass(frozen=True)
class _Press:
    """A press that passed the checks: on which list, by whom, in which language, when."""

    campaign: Campaign
    subscriber: Subscriber
    agent: Agent
    lang: str
    now: datetime


class CampaignDesk:
    def __init__(self, pbx: Pbx | None, region: str = "GR", clock: Clock = utcnow) -> None:
        self._pbx = pbx
        self._region = region  # the operator's country, for the outbound policy
        self.clock = clock  # replaceable: tests set the day

    # -- /campaigns --------------------------------------------------------------------------

    async def listing(self, chat_id: int, telegram_lang: str | None) -> list[Reply]:
        found = await staff_of_chat(chat_id)
        if found is None:
            return [await not_staff(chat_id, language(None, telegram_lang), "/campaigns")]
        agent, actor = found
        lang = language(agent, telegram_lang)
        campaigns = await lists.open_to(actor, self.clock())
        counts = await work.counters_of([c.id for c in campaigns])
        replies = [
            Reply(*render.campaign_card(lang, c, c.subscriber, counts[c.id])) for c in campaigns
        ]
        return replies or [Reply(tr(lang, render.NO_CAMPAIGNS))]

    # -- the buttons -------------------------------------------------------------------------

    async def press(self, chat_id: int, data: str, telegram_lang: str | None) -> Reply:
        found = await staff_of_chat(chat_id)
        if found is None:
            return await not_staff(chat_id, language(None, telegram_lang), data)
        agent, actor = found
        lang = language(agent, telegram_lang)
        unpacked = buttons.unpack(data)
        if unpacked is None:
            return await refuse(chat_id, lang, data, why="bad call list button")
        kind, target, action = unpacked
        entry = None
        if kind == buttons.ENTRY:
            entry = await CampaignEntry.get_or_none(id=target).select_related(
                "campaign__subscriber"
            )
            campaign = entry.campaign if entry is not None else None
        else:
            campaign = await Campaign.get_or_none(id=target).select_related("subscriber")
        if campaign is None:
            return await refuse(chat_id, lang, data, why="no such call list")
        subscriber = campaign.subscriber
        if not allowed(actor, Act.PLACE_CALL, lists.owner(campaign)):
            return await refuse(chat_id, lang, data, subscriber, why=f"call list {campaign.id}")
        p = _Press(campaign, subscriber, agent, lang, self.clock())
        if action == buttons.PREVIOUS:
            return await self._previous(p, entry.position if entry is not None else None)
        if entry is not None and action != buttons.CALL_AGAIN:
            return await self._record(p, entry, action)
        if not lists.is_open(campaign, subscriber, p.now):
            return Reply(toast=tr(lang, render.CLOSED))
        if entry is not None:
            return await self._call_again(p, entry)
        return await self._next(p)

    async def _next(self, p: _Press) -> Reply:
        """Claim the next contact and call it; a refused number is skipped on the way."""
        if (blocked := await self._blocked(p)) is not None:
            return blocked
        skipped: list[str] = []
        while (entry := await work.claim_next(p.campaign.id, p.agent.id, p.now)) is not None:
            number_class = await self._allowed(p, entry)
            if number_class is not None:
                return await self._dial(p, entry, number_class, "\n".join(skipped))
            skipped.append(tr(p.lang, render.SKIPPED, contact=_who(entry)))
        counts = await work.counters(p.campaign.id)
        none_left = tr(p.lang, render.NONE_LEFT)
        text, rows = render.campaign_card(
            p.lang, p.campaign, p.subscriber, counts, "\n".join([*skipped, none_left])
        )
        return Reply(text, rows, none_left)

    async def _call_again(self, p: _Press, entry: CampaignEntry) -> Reply:
        if (blocked := await self._blocked(p, entry)) is not None:
            return blocked
        if not await work.retake(entry.id, p.agent.id, p.now):
            return Reply(toast=tr(p.lang, render.NOT_YOURS))
        number_class = await self._allowed(p, entry)
        if number_class is None:
            entry = await CampaignEntry.get(id=entry.id)
            return await self._entry(p, entry, tr(p.lang, render.SKIPPED, contact=_who(entry)))
        return await self._dial(p, entry, number_class)

    async def _blocked(self, p: _Press, redial: CampaignEntry | None = None) -> Reply | None:
        """Why no call can be placed now: the outcome of another contact the agent holds
        is due first, or they have no phone to ring; None when nothing stands in the way."""
        held = await work.held(p.campaign.id, p.agent.id)
        if held is not None and (redial is None or held.id != redial.id):
            return await self._entry(p, held, tr(p.lang, render.RECORD_FIRST))
        if not p.agent.interface or self._pbx is None:
            return Reply(toast=tr(p.lang, NO_INTERFACE))
        return None

    async def _allowed(self, p: _Press, entry: CampaignEntry) -> NumberClass | None:
        """The entry's number class when the subscriber's policy lets us call it; else None
        (the entry is marked refused and the refusal audited)."""
        try:
            return policy.check(p.subscriber, entry.number, self._region)
        except policy.OutboundRefused as exc:
            what = f"call list {p.campaign.id} entry {entry.id}: call {entry.number}"
            chat = str(p.agent.user.telegram_chat_id)
            await policy.audit_refusal(Channel.TELEGRAM, chat, p.subscriber, what, exc)
            await work.refuse(entry.id, p.agent.id, exc.number_class.value, p.now)
            return None

    async def _dial(
        self, p: _Press, entry: CampaignEntry, number_class: NumberClass, note: str = ""
    ) -> Reply:
        """The agent's phone rings first, then the contact (the tasks' path)."""
        assert self._pbx is not None and p.agent.interface
        try:
            ddi = await ring_agent_first(self._pbx, p.agent.interface, p.subscriber, entry.number)
        except PbxUnavailable as exc:
            log.warning("call list %s entry %s: not placed: %s", p.campaign.id, entry.id, exc)
            await work.release(entry.id, p.agent.id, p.now)
            return Reply(toast=tr(p.lang, UNREACHABLE))
        async with in_transaction():
            await work.dialled(entry.id)
            await placed_call(p.agent, p.subscriber, ddi, entry.number, entry.name, p.now)
        await policy.placed(p.subscriber, entry.number, number_class, policy.TASK)
        log.info("call list %s entry %s placed from %s", p.campaign.id, entry.id, p.agent.interface)
        reply = await self._entry(p, await CampaignEntry.get(id=entry.id), note)
        return Reply(reply.text, reply.buttons, tr(p.lang, CALLING))

    async def _record(self, p: _Press, entry: CampaignEntry, outcome: str) -> Reply:
        if not await work.record(entry.id, p.agent.id, outcome, p.now):
            return Reply(toast=tr(p.lang, render.NOT_YOURS))
        reply = await self._entry(p, await CampaignEntry.get(id=entry.id))
        return Reply(reply.text, reply.buttons, tr(p.lang, render.OUTCOME_LABELS[outcome]))

    async def _previous(self, p: _Press, before: int | None) -> Reply:
        entry = await work.previous(p.campaign.id, p.agent.id, before)
        if entry is None:
            return Reply(toast=tr(p.lang, render.NO_PREVIOUS))
        return await self._entry(p, entry)

    async def _entry(self, p: _Press, entry: CampaignEntry, note: str = "") -> Reply:
        counts = await work.counters(p.campaign.id)
        text, rows = render.entry_card(p.lang, p.campaign, p.subscriber, entry, counts, note)
        return Reply(text, rows, note.splitlines()[0][:200] if note else "")
