"""Putting a live call through from its card: to the subscriber's mobile (an urgent call),
to another agent, or to an extension typed, with a note.

The card's Transfer button (`cd:<card>:xfer`) shows the targets: the subscriber's mobile,
the agents online the actor may hand a call to (their own team; a supervisor's teams;
anyone for directors) and "an extension". Picking one (`xf:<card>:<kind>:<id>`) opens a
`Conversation` of kind "transfer" (a restart keeps it); the text typed next is the
extension, then the note ("-" for none), and sending the note puts the call through.
Rights are checked on every step against the card's agent (Act.TRANSFER) and, for an
agent target, again on the target; a refusal changes nothing and is audited.

On the PBX (the dialplan's [frontdesk-transfer], deploy/asterisk/README.md):
  1. CoreShowChannels: the card's agent is on that call right now (a channel of theirs
     carries the call's Linkedid);
  2. Getvar CHANNEL(linkedid) on the caller's channel: the tracked channel name is still
     this call's (after a PBX restart names repeat), as control/lines.py checks first;
  3. Setvar FD_XFER_TO on the caller's channel: the number, interface or extension;
  4. Redirect of the caller's channel to frontdesk-transfer,<mobile|agent|extension>,1:
     out of the bridge with the agent (whose leg then hangs up), on to the target.
The note never reaches Asterisk (no speech synthesis): the receiving agent's card shows it
(`Card.transfer_note` of their (agent, linkedid) card, made ahead if the card does not
exist yet, and they are told at once), and for the mobile it goes to the subscriber in
writing through the outbox as an urgent message while the mobile rings with the
"urgent call" announcement and the caller's own number.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from gateway.admin import policy
from gateway.control import callbacks
from gateway.delivery.message_render import MessagePayload
from gateway.delivery.notices import NewNotification, Notices
from gateway.pbx.actions import Pbx
from gateway.pbx.errors import UNREACHABLE, PbxUnavailable
from gateway.staff.identity import owner_of, staff_of_chat
from gateway.staff.replies import Reply, language, not_staff, refuse
from gateway.staff.rights import Act, Owner, Staff, allowed
from locales import LANGUAGES, N_, tr
from models.db import AuditEntry, Call, CallDirection, Subscriber, Urgency
from models.events import CallSnapshot, CallStatus
from models.staff import Agent, Card, Conversation, Presence
from models.vocab import Channel, Kind, Language

log = logging.getLogger(__name__)

CONTEXT = "frontdesk-transfer"
TARGET_VARIABLE = "FD_XFER_TO"
LINKEDID = "CHANNEL(linkedid)"
KIND = "transfer"  # Conversation.kind
STEP_EXTENSION, STEP_NOTE = "extension", "note"
PENDING_FOR = timedelta(minutes=10)  # a target picked and no note sent: forgotten after
EXTENSION = re.compile(r"[0-9]{2,10}")
NOTE_MAX = 500
NO_NOTE = "-"
MOBILE, AGENT, EXTEN = "m", "a", "e"  # the kinds of callbacks.transfer_to
EXTENS = {MOBILE: "mobile", AGENT: "agent", EXTEN: "extension"}  # in frontdesk-transfer

PICK = N_("Put the call from {caller} through to:")
MOBILE_BUTTON = N_("{subscriber}'s mobile")
EXTENSION_BUTTON = N_("An extension…")
ASK_EXTENSION = N_("Type the extension to put the call through to.")
BAD_EXTENSION = N_("An extension is 2 to 10 digits; type it again.")
ASK_NOTE = N_("Type a note for {target} (or - for none): the call is put through when you send it.")
DONE = N_("Put through to {target}.")
NOTE_SENT = N_("The note went to the subscriber in writing.")
CALL_OVER = N_("This call is not on the line with you any more.")
NOT_ONLINE = N_("{name} is not online any more.")
NO_MOBILE = N_("The subscriber has no mobile number on file.")
EXTENSION_LABEL = N_("extension {number}")
TOLD = N_("A call was put through to you by {agent}: {subscriber}, caller {caller}.")
TOLD_NOTE = N_("Transfer note: {note}")
SUBSCRIBER_NOTE = N_("An urgent call was put through to your mobile by the office. Note: {note}")

CallOf = Callable[[str], CallSnapshot | None]


@dataclass(frozen=True)
class Told:
    """A message for another staff chat (the receiving agent)."""

    chat_id: int
    text: str


@dataclass(frozen=True)
class Outcome:
    reply: Reply
    tell: tuple[Told, ...] = ()
    again: bool = False  # the PBX could not be reached: the same note may be sent again


def may_receive(actor: Staff, target: Agent) -> bool:
    """Whom the actor may hand a call to: their own team's agents, the agents of the
    teams they lead, anyone for directors and admins (rights.allowed decides the last
    two, as for seeing who is online)."""
    team = target.team_id  # type: ignore[attr-defined]
    if team is not None and team == actor.team_id:
        return True
    return allowed(actor, Act.SEE_PRESENCE, Owner(team_id=team))


async def record(chat_id: int, subscriber: Subscriber | None, what: str, result: str) -> None:
    """The one audit log (models.db.AuditEntry, as gateway/control/audit.py writes it)."""
    await AuditEntry.create(
        channel=Channel.TELEGRAM,
        actor=str(chat_id),
        subscriber=subscriber,
        command=what[:500],
        result=result,
    )
    log.info("staff %s: %s -> %s", chat_id, what[:80], result)


class Transfers:
    def __init__(
        self,
        pbx: Pbx,
        call_of: CallOf,
        notices: Notices | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        region: str = "GR",
    ) -> None:
        self._pbx = pbx
        self._region = region  # the operator's country, for the outbound policy
        self._call_of = call_of  # the tracker's live call by linkedid
        self._notices = notices  # None: no written note to the subscriber
        self._clock = clock

    # -- the card's Transfer button: the targets ---------------------------------------------

    async def menu(self, chat_id: int, data: str, tg: str | None) -> Reply:
        """`cd:<card>:xfer`: the targets this call may go to."""
        found = await staff_of_chat(chat_id)
        if found is None:
            return await not_staff(chat_id, language(None, tg), data)
        agent, actor = found
        lang = language(agent, tg)
        unpacked = callbacks.unpack_card(data)
        card = await self._card(unpacked[0] if unpacked else None)
        if card is None or unpacked is None or unpacked[1] != callbacks.CARD_TRANSFER:
            return await refuse(chat_id, lang, data, why="no such card")
        if not allowed(actor, Act.TRANSFER, owner_of(card.agent)):
            return await refuse(chat_id, lang, data, card.subscriber, f"transfer card {card.id}")
        if self._live(card) is None:
            return Reply(toast=tr(lang, CALL_OVER), text=tr(lang, CALL_OVER))
        rows: list[tuple[tuple[str, str], ...]] = []
        subscriber = card.subscriber
        if subscriber is not None and _mobile(subscriber):
            label = tr(lang, MOBILE_BUTTON, subscriber=subscriber.name)
            rows.append(((label, callbacks.transfer_to(card.id, MOBILE)),))
        for other in await self._receivers(actor, card):
            rows.append(((other.user.name, callbacks.transfer_to(card.id, AGENT, other.id)),))
        rows.append(((tr(lang, EXTENSION_BUTTON), callbacks.transfer_to(card.id, EXTEN)),))
        caller = card.caller_number or "?"
        text = tr(lang, PICK, caller=caller)
        return Reply(text=text, buttons=tuple(rows), toast=text[:200])

    async def _receivers(self, actor: Staff, card: Card) -> list[Agent]:
        online = await Agent.filter(
            presence=Presence.READY, interface__isnull=False
        ).select_related("user")
        return [
            a
            for a in online
            if a.id != card.agent_id and may_receive(actor, a)  # type: ignore[attr-defined]
        ]

    # -- a target picked ---------------------------------------------------------------------

    async def choose(self, chat_id: int, data: str, tg: str | None) -> Reply:
        """`xf:<card>:<kind>:<id>`: remember the target, ask for the extension or note."""
        found = await staff_of_chat(chat_id)
        if found is None:
            return await not_staff(chat_id, language(None, tg), data)
        agent, actor = found
        lang = language(agent, tg)
        unpacked = callbacks.unpack_transfer_to(data)
        card = await self._card(unpacked[0] if unpacked else None)
        if card is None or unpacked is None:
            return await refuse(chat_id, lang, data, why="no such card")
        _, kind, target_id = unpacked
        if not allowed(actor, Act.TRANSFER, owner_of(card.agent)):
            return await refuse(chat_id, lang, data, card.subscriber, f"transfer card {card.id}")
        target_name = ""
        if kind == AGENT:
            target = await Agent.get_or_none(id=target_id).select_related("user")
            if target is None or target.id == card.agent.id or not may_receive(actor, target):
                return await refuse(
                    chat_id, lang, data, card.subscriber, f"transfer to agent {target_id}"
                )
            target_name = target.user.name
        if self._live(card) is None:
            return Reply(toast=tr(lang, CALL_OVER), text=tr(lang, CALL_OVER))
        if kind == MOBILE:
            subscriber = card.subscriber
            if subscriber is None or not _mobile(subscriber):
                return Reply(toast=tr(lang, NO_MOBILE), text=tr(lang, NO_MOBILE))
            target_name = tr(lang, MOBILE_BUTTON, subscriber=subscriber.name)
        step = STEP_EXTENSION if kind == EXTEN else STEP_NOTE
        answers: dict[str, Any] = {"kind": kind, "target": target_id, "name": target_name}
        async with in_transaction():
            await Conversation.filter(agent=agent, kind=KIND, done=False).update(
                done=True, step="cancelled"
            )
            await Conversation.create(agent=agent, card=card, kind=KIND, step=step, answers=answers)
        question = ASK_EXTENSION if step == STEP_EXTENSION else ASK_NOTE
        text = tr(lang, question, target=target_name)
        return Reply(text=text, toast=text[:200])

    # -- what is typed next: the extension, then the note ------------------------------------

    async def text(self, chat_id: int, text: str, tg: str | None) -> Outcome | None:
        """Text from a staff chat: the answer to their open transfer's question, or None
        when they have none (the text is then for the rest of the desk)."""
        found = await staff_of_chat(chat_id)
        if found is None:
            return None
        agent, actor = found
        pending = (
            await Conversation.filter(agent=agent, kind=KIND, done=False)
            .order_by("-id")
            .select_related("card__agent", "card__subscriber")
            .first()
        )
        if pending is None:
            return None
        card = pending.card
        if card is None or self._clock() - pending.updated_at > PENDING_FOR:
            await self._close(pending, "expired")
            return None
        lang = language(agent, tg)
        if self._live(card) is None:  # the call is over: the text is for someone else
            await self._close(pending, "call over")
            return None
        answers = dict(pending.answers)
        if pending.step == STEP_EXTENSION:
            number = text.strip()
            if not EXTENSION.fullmatch(number):
                return Outcome(Reply(text=tr(lang, BAD_EXTENSION)))
            answers |= {"target": number, "name": tr(lang, EXTENSION_LABEL, number=number)}
            pending.answers, pending.step = answers, STEP_NOTE
            await pending.save(update_fields=["answers", "step", "updated_at"])
            return Outcome(Reply(text=tr(lang, ASK_NOTE, target=answers["name"])))
        note = "" if text.strip() == NO_NOTE else text.strip()[:NOTE_MAX]
        outcome = await self.put_through(chat_id, agent, actor, card, answers, note, lang)
        if not outcome.again:
            await self._close(pending, "done")
        return outcome

    @staticmethod
    async def _close(pending: Conversation, why: str) -> None:
        await Conversation.filter(id=pending.id, done=False).update(done=True, step=why)

    # -- putting it through ------------------------------------------------------------------

    async def put_through(
        self,
        chat_id: int,
        agent: Agent,
        actor: Staff,
        card: Card,
        answers: dict[str, Any],
        note: str,
        lang: str,
    ) -> Outcome:
        """Check everything again, then the PBX actions; the note where it is read."""
        kind, target_key = answers.get("kind"), answers.get("target")
        what = f"transfer card {card.id} to {kind}:{target_key}"
        subscriber = card.subscriber
        if not allowed(actor, Act.TRANSFER, owner_of(card.agent)):
            return Outcome(await refuse(chat_id, lang, what, subscriber, "transfer"))
        target: Agent | None = None
        if kind == AGENT:
            target = await Agent.get_or_none(id=int(target_key or 0)).select_related("user")
            if target is None or not may_receive(actor, target):
                return Outcome(await refuse(chat_id, lang, what, subscriber, "target"))
            if target.presence is not Presence.READY or not target.interface:
                text = tr(lang, NOT_ONLINE, name=target.user.name)
                return Outcome(Reply(text=text, toast=text))
            value, label = target.interface, target.user.name
        elif kind == MOBILE:
            number = _mobile(subscriber) if subscriber is not None else ""
            if not number:
                return Outcome(Reply(text=tr(lang, NO_MOBILE), toast=tr(lang, NO_MOBILE)))
            try:  # the mobile is the far end: the subscriber's outbound policy applies
                number_class = policy.check(subscriber, number, self._region)  # type: ignore[arg-type]
            except policy.OutboundRefused as exc:
                await policy.audit_refusal(Channel.TELEGRAM, str(chat_id), subscriber, what, exc)
                text = policy.refusal(lang, exc)
                return Outcome(Reply(text=text, toast=text[:200], refused=True))
            value, label = number, str(answers.get("name") or number)
        elif kind == EXTEN and EXTENSION.fullmatch(str(target_key)):
            value, label = str(target_key), tr(lang, EXTENSION_LABEL, number=target_key)
        else:
            return Outcome(await refuse(chat_id, lang, what, subscriber, "bad target"))
        call = self._live(card)
        if call is None:
            return Outcome(Reply(text=tr(lang, CALL_OVER), toast=tr(lang, CALL_OVER)))
        try:
            moved = await self._move(card, call, value, EXTENS[kind])
        except PbxUnavailable as exc:
            log.warning("call %s: transfer failed: %s", card.linkedid, exc)
            await record(chat_id, subscriber, what, "failed")
            text = tr(lang, UNREACHABLE)
            return Outcome(Reply(text=text, toast=text), again=True)
        if not moved:
            await record(chat_id, subscriber, what, "failed")
            return Outcome(Reply(text=tr(lang, CALL_OVER), toast=tr(lang, CALL_OVER)))
        await record(chat_id, subscriber, what, "done")
        if kind == MOBILE and subscriber is not None:
            await policy.placed(subscriber, value, number_class, policy.TRANSFER)
        # The leg put through is a call of its own in the console: to the subscriber's
        # mobile outgoing, to a colleague or an extension internal.
        await Call.create(
            linkedid=f"xfer:{uuid.uuid4().hex}",
            ddi=call.ddi,
            subscriber=subscriber,
            caller_number=card.caller_number or call.caller_number,
            caller_name=label,
            status=CallStatus.SCHEDULED,
            direction=CallDirection.OUTBOUND if kind == MOBILE else CallDirection.INTERNAL,
            answered_by=agent.interface or "",
            started_at=datetime.now(UTC),
        )
        log.info("call %s put through by agent %s to %s", card.linkedid, agent.id, kind)
        lines = [tr(lang, DONE, target=label)]
        tell: tuple[Told, ...] = ()
        if target is not None:
            tell = await self._hand_over(agent, target, card, call, note)
        elif kind == MOBILE and note and subscriber is not None and self._notices is not None:
            await self._write_to(subscriber, call, note)
            lines.append(tr(lang, NOTE_SENT))
        text = "\n".join(lines)
        return Outcome(Reply(text=text, toast=lines[0][:200]), tell)

    async def _move(self, card: Card, call: CallSnapshot, value: str, exten: str) -> bool:
        """The PBX actions; False when the call is not (any more) where we think it is."""
        if await self._pbx.member_channel(card.linkedid, card.agent.interface or "") is None:
            log.warning("call %s: agent %s is not on it; not moved", card.linkedid, card.agent.id)
            return False
        channel = call.caller_channel
        if await self._pbx.getvar(channel, LINKEDID) != card.linkedid:
            log.warning("call %s: channel %s is not its own any more", card.linkedid, channel)
            return False
        await self._pbx.setvar(channel, TARGET_VARIABLE, value)
        await self._pbx.redirect(channel, CONTEXT, exten)
        return True

    async def _hand_over(
        self, agent: Agent, target: Agent, card: Card, call: CallSnapshot, note: str
    ) -> tuple[Told, ...]:
        """The note on the receiving agent's card for this call (made ahead when they
        have none yet: the cards desk fills in the rest), and word to their chat now."""
        receiving = await Card.get_or_none(agent_id=target.id, linkedid=card.linkedid)
        if receiving is None:
            receiving = await Card.create(
                agent=target,
                linkedid=card.linkedid,
                subscriber_id=card.subscriber_id,  # type: ignore[attr-defined]
                caller_number=card.caller_number,
                chat_id=target.user.telegram_chat_id or 0,
                transfer_note=note,
            )
        else:
            receiving.transfer_note = note
            await receiving.save(update_fields=["transfer_note", "updated_at"])
        chat = target.user.telegram_chat_id
        if not chat:
            return ()
        lang = target.user.language if target.user.language in LANGUAGES else Language.EN
        subscriber = card.subscriber.name if card.subscriber is not None else ""
        caller = card.caller_number or call.caller_number or "?"
        lines = [tr(lang, TOLD, agent=agent.user.name, subscriber=subscriber, caller=caller)]
        if note:
            lines.append(tr(lang, TOLD_NOTE, note=note))
        return (Told(chat, "\n".join(lines)),)

    async def _write_to(self, subscriber: Subscriber, call: CallSnapshot, note: str) -> None:
        """The note to the subscriber by their routes, urgent, while their mobile rings."""
        assert self._notices is not None
        lang = subscriber.language if subscriber.language in LANGUAGES else Language.EN
        payload = MessagePayload(
            subscriber=subscriber.name,
            caller_number=call.caller_number,
            caller_name=call.caller_name,
            at=self._clock(),
            timezone=subscriber.timezone,
            text=tr(lang, SUBSCRIBER_NOTE, note=note),
        )
        key = f"{Kind.MESSAGE}:{secrets.token_hex(8)}"
        notice = NewNotification(key, subscriber, Kind.MESSAGE, Urgency.URGENT, payload.to_json())
        async with in_transaction():
            await self._notices.create([notice])

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    async def _card(card_id: int | None) -> Card | None:
        if not card_id:
            return None
        return await Card.get_or_none(id=card_id).select_related(
            "agent__user", "agent__team", "subscriber"
        )

    def _live(self, card: Card) -> CallSnapshot | None:
        """The card's call if it is up and answered, with the caller's channel known."""
        call = self._call_of(card.linkedid)
        if call is None or call.ended or call.answered_at is None or not call.caller_channel:
            return None
        return call


def _mobile(subscriber: Subscriber) -> str:
    """Where an urgent call for the subscriber goes: their mobile, else where their lines
    forward ("urgent → call forwarding → subscriber")."""
    return subscriber.mobile or subscriber.forward_target or ""
