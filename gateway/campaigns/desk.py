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
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from gateway.admin import policy
from gateway.campaigns import buttons, lists, render, work
from gateway.pbx.actions import Pbx
from gateway.pbx.errors import UNREACHABLE, PbxUnavailable
from gateway.staff.identity import staff_of_chat
from gateway.staff.replies import Reply, language, not_staff, refuse
from gateway.staff.rights import Act, Staff, allowed
from gateway.staff.tasks import NO_INTERFACE, placed_call, ring_agent_first
from locales import tr
from models.campaigns import Campaign, CampaignEntry
from models.db import Subscriber
from models.staff import Agent
from models.vocab import Channel

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
CALLING = "Calling: your phone rings first."  # the tasks' own msgid, translated there


def utcnow() -> datetime:
    return datetime.now(UTC)


def _who(entry: CampaignEntry) -> str:
    return " ".join(p for p in (entry.name, entry.number) if p)


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
        replies = []
        for campaign in await lists.open_to(actor, self.clock()):
            counts = await work.counters(campaign.id)
            text, rows = render.campaign_card(lang, campaign, campaign.subscriber, counts)
            replies.append(Reply(text, rows))
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
            entry = await CampaignEntry.get_or_none(id=target)
            campaign = await Campaign.get_or_none(id=entry.campaign_id) if entry else None  # type: ignore[attr-defined]
        else:
            campaign = await Campaign.get_or_none(id=target)
        if campaign is None:
            return await refuse(chat_id, lang, data, why="no such call list")
        subscriber = await Subscriber.get(id=campaign.subscriber_id)  # type: ignore[attr-defined]
        if not allowed(actor, Act.PLACE_CALL, lists.owner(campaign)):
            return await refuse(chat_id, lang, data, subscriber, why=f"call list {campaign.id}")
        now = self.clock()
        if action == buttons.PREVIOUS:
            before = entry.position if entry is not None else None
            return await self._previous(campaign, subscriber, agent, lang, before)
        if entry is not None and action != buttons.CALL_AGAIN:
            return await self._record(campaign, subscriber, agent, lang, entry, action, now)
        if not lists.is_open(campaign, subscriber, now):
            return Reply(toast=tr(lang, render.CLOSED))
        if entry is not None:
            return await self._call_again(campaign, subscriber, agent, lang, entry, now)
        return await self._next(campaign, subscriber, agent, actor, lang, now)

    async def _next(
        self,
        campaign: Campaign,
        subscriber: Subscriber,
        agent: Agent,
        actor: Staff,
        lang: str,
        now: datetime,
    ) -> Reply:
        """Claim the next contact and call it; a refused number is skipped on the way."""
        held = await work.held(campaign.id, agent.id)
        if held is not None:
            return await self._entry(
                campaign, subscriber, held, lang, tr(lang, render.RECORD_FIRST)
            )
        if not agent.interface or self._pbx is None:
            return Reply(toast=tr(lang, NO_INTERFACE))
        skipped: list[str] = []
        while (entry := await work.claim_next(campaign.id, agent.id, now)) is not None:
            refusal = await self._refused(campaign, subscriber, agent, entry, lang, now)
            if refusal is None:
                break
            skipped.append(tr(lang, render.SKIPPED, contact=_who(entry)))
        note = "\n".join(skipped)
        if entry is None:
            counts = await work.counters(campaign.id)
            none_left = tr(lang, render.NONE_LEFT)
            text, rows = render.campaign_card(
                lang, campaign, subscriber, counts, "\n".join([*skipped, none_left])
            )
            return Reply(text, rows, none_left)
        return await self._dial(campaign, subscriber, agent, lang, entry, now, note)

    async def _call_again(
        self,
        campaign: Campaign,
        subscriber: Subscriber,
        agent: Agent,
        lang: str,
        entry: CampaignEntry,
        now: datetime,
    ) -> Reply:
        held = await work.held(campaign.id, agent.id)
        if held is not None and held.id != entry.id:
            return await self._entry(
                campaign, subscriber, held, lang, tr(lang, render.RECORD_FIRST)
            )
        if not agent.interface or self._pbx is None:
            return Reply(toast=tr(lang, NO_INTERFACE))
        if not await work.retake(entry.id, agent.id, now):
            return Reply(toast=tr(lang, render.NOT_YOURS))
        entry = await CampaignEntry.get(id=entry.id)
        if await self._refused(campaign, subscriber, agent, entry, lang, now) is not None:
            entry = await CampaignEntry.get(id=entry.id)
            note = tr(lang, render.SKIPPED, contact=_who(entry))
            return await self._entry(campaign, subscriber, entry, lang, note)
        return await self._dial(campaign, subscriber, agent, lang, entry, now)

    async def _refused(
        self,
        campaign: Campaign,
        subscriber: Subscriber,
        agent: Agent,
        entry: CampaignEntry,
        lang: str,
        now: datetime,
    ) -> str | None:
        """None when the subscriber's policy lets us call the entry; else its refusal (the
        entry is marked refused and the refusal audited)."""
        try:
            policy.check(subscriber, entry.number, self._region)
        except policy.OutboundRefused as exc:
            what = f"call list {campaign.id} entry {entry.id}: call {entry.number}"
            chat = str(agent.user.telegram_chat_id)
            await policy.audit_refusal(Channel.TELEGRAM, chat, subscriber, what, exc)
            await work.refuse(entry.id, agent.id, exc.number_class.value, now)
            return policy.refusal(lang, exc)
        return None

    async def _dial(
        self,
        campaign: Campaign,
        subscriber: Subscriber,
        agent: Agent,
        lang: str,
        entry: CampaignEntry,
        now: datetime,
        note: str = "",
    ) -> Reply:
        """The agent's phone rings first, then the contact (the tasks' path)."""
        assert self._pbx is not None and agent.interface
        number_class = policy.classify(entry.number, self._region)
        try:
            ddi = await ring_agent_first(self._pbx, agent.interface, subscriber, entry.number)
        except PbxUnavailable as exc:
            log.warning("call list %s entry %s: not placed: %s", campaign.id, entry.id, exc)
            await work.release(entry.id, agent.id, now)
            return Reply(toast=tr(lang, UNREACHABLE))
        async with in_transaction():
            await work.dialled(entry.id)
            await placed_call(agent, subscriber, ddi, entry.number, entry.name, now)
        await policy.placed(subscriber, entry.number, number_class, policy.TASK)
        log.info("call list %s entry %s placed from %s", campaign.id, entry.id, agent.interface)
        entry = await CampaignEntry.get(id=entry.id)
        reply = await self._entry(campaign, subscriber, entry, lang, note)
        return Reply(reply.text, reply.buttons, tr(lang, CALLING))

    async def _record(
        self,
        campaign: Campaign,
        subscriber: Subscriber,
        agent: Agent,
        lang: str,
        entry: CampaignEntry,
        outcome: str,
        now: datetime,
    ) -> Reply:
        if not await work.record(entry.id, agent.id, outcome, now):
            return Reply(toast=tr(lang, render.NOT_YOURS))
        entry = await CampaignEntry.get(id=entry.id)
        reply = await self._entry(campaign, subscriber, entry, lang)
        return Reply(reply.text, reply.buttons, tr(lang, render.OUTCOME_LABELS[outcome]))

    async def _previous(
        self,
        campaign: Campaign,
        subscriber: Subscriber,
        agent: Agent,
        lang: str,
        before: int | None,
    ) -> Reply:
        entry = await work.previous(campaign.id, agent.id, before)
        if entry is None:
            return Reply(toast=tr(lang, render.NO_PREVIOUS))
        return await self._entry(campaign, subscriber, entry, lang)

    async def _entry(
        self,
        campaign: Campaign,
        subscriber: Subscriber,
        entry: CampaignEntry,
        lang: str,
        note: str = "",
    ) -> Reply:
        counts = await work.counters(campaign.id)
        text, rows = render.entry_card(lang, campaign, subscriber, entry, counts, note)
        return Reply(text, rows, note.splitlines()[0][:200] if note else "")
