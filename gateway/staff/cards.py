"""Screen-pop cards: when a call rings an agent, their chat gets the call's card within a
second, and the card is edited in place as the call goes on.

The tracker's snapshots reach `CardDesk.see` beside the router (gateway/app.py). A
snapshot naming a queue member interface in `ringing` that belongs to an agent with a
linked chat pops that agent's card: one per (agent, call), kept in `models.staff.Card`
(unique), so a re-dialled leg, a replayed snapshot or a restart never sends a second one,
and edits after a restart find the message. When the call is answered (by this agent or
another, named) or ends unanswered, each card of the call is edited: its status line
changes and the buttons that make no sense any more go.

Cards go straight to the Bot API (`CardSender`, notifiers/telegram.TelegramCards), not
through the outbox: they must arrive within a second and be edited. A failed send or edit
is logged and tried once more; nothing here ever waits on the AMI path (`see` only
queues). Each call's snapshots are worked in order by a task of its own, so one slow
chat or call holds up no other; the cards of one call are sent at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from tortoise.exceptions import IntegrityError

from gateway.staff import card_render, history
from gateway.staff.card_render import CardFacts, Shown
from locales import LANGUAGES
from models.db import Call, Ddi, Subscriber
from models.events import CallOutcome, CallSnapshot, CallStatus
from models.phone import caller_e164
from models.staff import Agent, Card, CardState
from models.vocab import Language
from notifiers.base import Button, PermanentError

log = logging.getLogger(__name__)

RETRY_DELAY = 0.3  # seconds before the one retry of a failed send or edit
RETRY_MAX = 2.0  # a longer "retry after" from Telegram is not waited for
RECOVER_SINCE = timedelta(hours=4)  # cards older than this are left as they are
# The interfaces of agents with a linked chat are re-read at most once a second: a call
# that rings none of them costs no worker and no query (most calls, on a big PBX). An agent
# who links a chat gets cards from the calls that ring them a second later at most.
POPPABLE_TTL = 1.0

T = TypeVar("T")
Rows = list[list[Button]]


class CardSender(Protocol):
    """Sends a card to a chat (its message id back) and edits it in place; raises
    notifiers.base.TransientError or PermanentError."""

    async def send(self, chat_id: int, text: str, buttons: Rows) -> int: ...

    async def edit(self, chat_id: int, message_id: int, text: str, buttons: Rows) -> None: ...


@dataclass(frozen=True)
class Status:
    """What a card shows of its call now."""

    state: CardState
    shown: Shown
    name: str = ""  # who answered, for ANSWERED_BY
    live_for_you: bool = False  # ringing, or you are on the call: every button
    ended: bool = False


def status_of(
    card_interface: str | None,
    *,
    answered_via: str,
    answered_by: str,
    outcome: CallOutcome | None,
    ended: bool,
    names: dict[str, str],
) -> Status:
    """A card's status from what is known of its call (a snapshot, or a Call row)."""
    if answered_via == "agent" and answered_by:
        if answered_by == card_interface:
            return Status(CardState.ANSWERED, Shown.ANSWERED_BY_YOU, "", not ended, ended)
        # Its end changes nothing on a card someone else's call: no second edit then.
        name = names.get(answered_by, answered_by)
        return Status(CardState.TAKEN, Shown.ANSWERED_BY, name)
    if answered_via == "forward":
        return Status(CardState.TAKEN, Shown.FORWARDED)
    if not ended:
        return Status(CardState.RINGING, Shown.RINGING, "", True, False)
    if outcome is CallOutcome.VOICEMAIL:
        return Status(CardState.ABANDONED, Shown.VOICEMAIL, "", False, True)
    if outcome is CallOutcome.ABANDONED:
        return Status(CardState.ABANDONED, Shown.HUNG_UP, "", False, True)
    return Status(CardState.ABANDONED, Shown.ENDED, "", False, True)


def agent_language(agent: Agent) -> str:
    lang = agent.user.language or Language.EN
    return lang if lang in LANGUAGES else Language.EN


@dataclass
class _CallCards:
    """One call's worker: its snapshots in order, the cards shown and what they show."""

    linkedid: str
    queue: asyncio.Queue[CallSnapshot] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    seen: set[str] = field(default_factory=set)  # interfaces already looked at
    facts: CardFacts | None = None
    subscriber_id: int | None = None
    number: str = ""
    shown: dict[int, Status] = field(default_factory=dict)  # card id -> status on screen
    names: dict[str, str] = field(default_factory=dict)  # interface -> agent's name


class CardDesk:
    def __init__(
        self,
        region: str = "GR",
        sender: CardSender | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.region = region
        self.sender = sender  # None: no Telegram, no cards
        self.clock = clock
        self._queue: asyncio.Queue[CallSnapshot] = asyncio.Queue()
        self._calls: dict[str, _CallCards] = {}
        self._recovered = False
        self._poppable: frozenset[str] | None = None  # None: unknown, every one may pop
        self._poppable_at = -POPPABLE_TTL

    # -- in: the tracker's snapshots (sync, on the AMI path) ---------------------------

    def see(self, snap: CallSnapshot) -> None:
        if self.sender is not None:
            self._queue.put_nowait(snap)

    async def run(self) -> None:
        """The desk's loop: each snapshot to its call's worker (supervised)."""
        if not self._recovered:
            self._recovered = True
            try:
                await self.recover()
            except Exception:
                log.exception("cards: finishing the cards left from before a restart failed")
        try:
            while True:
                snap = await self._queue.get()
                try:
                    await self._refresh_poppable()
                    self._dispatch(snap)
                finally:
                    self._queue.task_done()
        finally:
            for worker in list(self._calls.values()):
                if worker.task is not None:
                    worker.task.cancel()
            self._calls.clear()

    async def drain(self) -> None:
        """Until every snapshot seen so far has been worked (tests, shutdown)."""
        await self._queue.join()
        for worker in list(self._calls.values()):
            await worker.queue.join()

    async def _refresh_poppable(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._poppable_at < POPPABLE_TTL:
            return
        self._poppable_at = now
        try:
            interfaces = await Agent.filter(user__telegram_chat_id__isnull=False).values_list(
                "interface", flat=True
            )
        except Exception as exc:  # the database busy: look at every call meanwhile
            log.warning("cards: cannot read the agents with a chat (%r)", exc)
            self._poppable = None
            return
        self._poppable = frozenset(str(i) for i in interfaces)

    def _dispatch(self, snap: CallSnapshot) -> None:
        worker = self._calls.get(snap.linkedid)
        if worker is None:
            if not snap.ringing:
                return  # no agent rings (yet): nothing to show
            poppable = self._poppable
            if poppable is not None and poppable.isdisjoint(snap.ringing):
                return  # nobody with a chat rings (yet)
            worker = self._calls[snap.linkedid] = _CallCards(snap.linkedid)
            worker.task = asyncio.get_running_loop().create_task(
                self._work(worker), name=f"cards:{snap.linkedid}"
            )
        worker.queue.put_nowait(snap)

    async def _work(self, worker: _CallCards) -> None:
        try:
            while True:
                snap = await worker.queue.get()
                try:
                    await self._on_snapshot(worker, snap)
                except Exception:
                    log.exception("cards: call %s failed", worker.linkedid)
                finally:
                    worker.queue.task_done()
                if snap.ended:
                    return
        finally:
            if self._calls.get(worker.linkedid) is worker:
                del self._calls[worker.linkedid]

    # -- one call ----------------------------------------------------------------------

    async def _on_snapshot(self, worker: _CallCards, snap: CallSnapshot) -> None:
        fresh = [i for i in snap.ringing if i not in worker.seen]
        if fresh and not snap.ended:
            worker.seen.update(fresh)
            agents = await Agent.filter(
                interface__in=fresh, user__telegram_chat_id__isnull=False
            ).select_related("user")
            if snap.answered_at is not None:
                # Answered already: a colleague rings because the call is being put
                # through to them; only the card the transfer made ahead (its note) pops.
                ahead = set(
                    await Card.filter(
                        linkedid=snap.linkedid,
                        message_id__isnull=True,
                        agent_id__in=[a.id for a in agents],
                    ).values_list("agent_id", flat=True)
                )
                agents = [a for a in agents if a.id in ahead]
            if agents:
                if worker.facts is None:
                    await self._read_facts(worker, snap)
                if worker.facts is not None:
                    await asyncio.gather(*(self._pop(worker, snap, agent) for agent in agents))
        if snap.answered_at is not None or snap.ended:
            await self._follow(worker, snap)

    async def _read_facts(self, worker: _CallCards, snap: CallSnapshot) -> None:
        line = await Ddi.get_or_none(number=snap.ddi).select_related("subscriber")
        if line is None:
            log.info("cards: call %s on unknown DDI %r: no card", snap.linkedid, snap.ddi)
            return
        s: Subscriber = line.subscriber
        number = caller_e164(snap.caller_number, self.region) or snap.caller_number
        now = self.clock()
        worker.subscriber_id, worker.number = s.id, number
        worker.facts = CardFacts(
            subscriber=s.name,
            subscriber_language=s.language,
            timezone=s.timezone,
            greeting=s.greeting,
            instructions=s.instructions,
            scenario=snap.scenario or s.scenario,
            diary=await history.today(s, now),
            caller_number=number,
            caller_name=snap.caller_name,
            contact=await history.contact_name(s.id, number),
            history=await history.interactions(s.id, number, skip_linkedid=snap.linkedid),
            tasks=await history.open_tasks(s.id, number),
            at=now,
        )

    async def _pop(self, worker: _CallCards, snap: CallSnapshot, agent: Agent) -> None:
        assert worker.facts is not None
        lang = agent_language(agent)
        body = card_render.body(lang, worker.facts)
        card = await Card.get_or_none(agent_id=agent.id, linkedid=snap.linkedid)
        if card is None:
            try:
                card = await Card.create(
                    agent=agent,
                    linkedid=snap.linkedid,
                    subscriber_id=worker.subscriber_id,
                    caller_number=worker.number,
                    chat_id=agent.user.telegram_chat_id,
                    text=body,
                )
            except IntegrityError:  # shown meanwhile (another gateway, a replay)
                return
        elif card.message_id is not None or card.state is not CardState.RINGING:
            return  # already on the agent's screen: never twice
        elif not card.text:  # made ahead (a transfer's note): the body is ours to write
            card.text = body
            await card.save(update_fields=["text", "updated_at"])
        status = Status(CardState.RINGING, Shown.RINGING, live_for_you=True)
        text, rows = self._render(card, lang, status)
        message_id = await self._twice(
            f"sending card {card.id}", lambda: self._send(card.chat_id, text, rows)
        )
        if message_id is None:
            return
        card.message_id = message_id
        await card.save(update_fields=["message_id", "updated_at"])
        worker.shown[card.id] = status

    async def _send(self, chat_id: int, text: str, rows: Rows) -> int:
        assert self.sender is not None
        return await self.sender.send(chat_id, text, rows)

    async def _follow(self, worker: _CallCards, snap: CallSnapshot) -> None:
        """Edit every card of the call whose status changed."""
        cards = await Card.filter(linkedid=snap.linkedid, message_id__isnull=False).select_related(
            "agent__user"
        )
        if not cards:
            return
        if snap.answered_via == "agent" and snap.answered_by not in worker.names:
            worker.names[snap.answered_by] = await self._name_of(snap.answered_by)
        edits = []
        for card in cards:
            status = status_of(
                card.agent.interface,
                answered_via=snap.answered_via,
                answered_by=snap.answered_by,
                outcome=snap.outcome,
                ended=snap.ended,
                names=worker.names,
            )
            if worker.shown.get(card.id) != status:
                edits.append(self._edit(card, status, worker))
        await asyncio.gather(*edits)

    @staticmethod
    async def _name_of(interface: str) -> str:
        if not interface:
            return ""
        agent = await Agent.get_or_none(interface=interface).select_related("user")
        return agent.user.name if agent is not None else interface

    async def _edit(self, card: Card, status: Status, worker: _CallCards | None = None) -> None:
        assert self.sender is not None and card.message_id is not None
        sender, message_id = self.sender, card.message_id
        text, rows = self._render(card, agent_language(card.agent), status)

        async def edit() -> bool:
            await sender.edit(card.chat_id, message_id, text, rows)
            return True

        if not await self._twice(f"editing card {card.id}", edit):
            return
        if worker is not None:
            worker.shown[card.id] = status
        if card.state is not status.state:
            card.state = status.state
            await card.save(update_fields=["state", "updated_at"])

    @staticmethod
    def _render(card: Card, lang: str, status: Status) -> tuple[str, Rows]:
        line = card_render.status_line(lang, status.shown, status.name, status.ended)
        text = card_render.text(card.text, line, card.transfer_note, lang)
        return text, card_render.buttons(lang, card.id, status.live_for_you)

    @staticmethod
    async def _twice(what: str, attempt: Callable[[], Awaitable[T]]) -> T | None:
        """The attempt, and once more if it fails (not for a permanent refusal)."""
        for tries in (1, 2):
            try:
                return await attempt()
            except PermanentError as exc:
                log.warning("cards: %s refused: %s", what, exc)
                return None
            except Exception as exc:
                log.warning("cards: %s failed (try %d of 2): %s", what, tries, exc)
                if tries == 2:
                    return None
                wait = getattr(exc, "retry_after", None) or RETRY_DELAY
                await asyncio.sleep(min(wait, RETRY_MAX))
        return None

    # -- after a restart ---------------------------------------------------------------

    async def recover(self) -> int:
        """Cards still ringing on screen from before a restart whose calls have ended
        since (the router stored the end) get their final status. Returns how many."""
        if self.sender is None:
            return 0
        since = self.clock() - RECOVER_SINCE
        cards = await Card.filter(
            state=CardState.RINGING, message_id__isnull=False, created_at__gte=since
        ).select_related("agent__user")
        ends = {
            c.linkedid: c
            for c in await Call.filter(
                linkedid__in={card.linkedid for card in cards}, ended_at__isnull=False
            )
        }
        names: dict[str, str] = {}
        edited = 0
        for card in cards:
            call = ends.get(card.linkedid)
            if call is None or call.status in (CallStatus.WAITING, CallStatus.IN_PROGRESS):
                continue
            via = {CallOutcome.ANSWERED: "agent", CallOutcome.FORWARDED: "forward"}
            answered_via = via.get(call.outcome, "") if call.outcome else ""
            if answered_via == "agent" and call.answered_by not in names:
                names[call.answered_by] = await self._name_of(call.answered_by)
            status = status_of(
                card.agent.interface,
                answered_via=answered_via,
                answered_by=call.answered_by,
                outcome=call.outcome,
                ended=True,
                names=names,
            )
            await self._edit(card, status)
            edited += 1
        return edited
