"""What a finished guided exchange leaves: a TakenMessage (message, request or appointment)
and the subscriber's Notification of kind `message`, written in one transaction.

One per conversation: the TakenMessage's conversation is unique, and the conversation is
claimed (`done`) in the same transaction, so a double tap or a button replayed after a
restart finds the message already taken and creates nothing. The notification goes by the
subscriber's routes (`message:taken:<id>`); an urgent one goes on every channel this
gateway has at once (one hop of them all). An appointment is booked in the subscriber's
diary by its rules first (a refused time rolls the whole transaction back).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.delivery.message_render import MessagePayload
from gateway.delivery.notices import NewNotification, Notices
from gateway.diary import appointments as diary
from models.db import Contact, Subscriber, Urgency
from models.staff import Agent, Conversation, Taken, TakenMessage
from models.vocab import CHANNELS, Channel, Kind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    taken: TakenMessage
    created: bool  # False: this conversation had already been taken down


def every_channel(notices: Notices) -> list[str]:
    """The route of an urgent message: every configured channel at once, as one hop."""
    return ["+".join(c for c in CHANNELS if c in notices.channels)]


async def take(notices: Notices, conversation: Conversation, agent: Agent, now: datetime) -> Result:
    """The message the conversation took down, and its notification. Raises the diary's
    errors (Overlap, DiaryError) for an appointment time that cannot be booked."""
    a = conversation.answers
    kind = Taken(conversation.kind)
    subscriber = await Subscriber.get(id=a["subscriber_id"])
    urgent = a.get("urgency") == Urgency.URGENT
    try:
        async with in_transaction():
            existing = await TakenMessage.get_or_none(conversation_id=conversation.id)
            if existing is not None:
                return Result(existing, False)
            claimed = await Conversation.filter(id=conversation.id, done=False).update(
                done=True, step="done"
            )
            if not claimed:
                raise _AlreadyDone
            appointment_at = None
            name = a.get("name", "")
            number = a.get("number", "")
            if kind is Taken.APPOINTMENT:
                start = datetime.fromisoformat(a["when"])
                booked = await diary.book(
                    subscriber, start, name or number, _note(number, a.get("note", "")), now=now
                )
                appointment_at = booked.starts_at
                if subscriber.email:  # the .ics invite, as the subscriber's own booking gets
                    await notices.create([diary.confirmation(booked, subscriber)], [Channel.EMAIL])
            contact_name = await _contact(subscriber, a)
            taken = await TakenMessage.create(
                kind=kind,
                subscriber=subscriber,
                agent=agent,
                linkedid=a.get("linkedid", ""),
                caller_name=name,
                caller_number=number,
                text=a.get("text") or a.get("note", ""),
                category=a.get("category", ""),
                urgency=Urgency.URGENT if urgent else Urgency.NORMAL,
                nature=a.get("nature", ""),
                handling=a.get("handling", ""),
                resolved=a.get("resolved"),
                cause=a.get("cause", ""),
                conversation=conversation,
            )
            payload = MessagePayload(
                subscriber=subscriber.name,
                at=now,
                timezone=subscriber.timezone,
                text=taken.text,
                caller_number=number,
                caller_name=name,
                contact_name=contact_name,
                taken=kind.value,
                category=taken.category,
                nature=taken.nature,
                handling=taken.handling,
                resolved=taken.resolved,
                cause=taken.cause,
                appointment_at=appointment_at,
            )
            notice = NewNotification(
                f"{Kind.MESSAGE}:taken:{taken.id}",
                subscriber,
                Kind.MESSAGE,
                taken.urgency,
                payload.to_json(),
            )
            await notices.create([notice], route=every_channel(notices) if urgent else None)
    except (_AlreadyDone, IntegrityError):  # finished meanwhile: the one taken stands
        return Result(await TakenMessage.get(conversation_id=conversation.id), False)
    conversation.done, conversation.step = True, "done"
    log.info(
        "%s %s taken for subscriber %s by agent %s%s",
        kind.value,
        taken.id,
        subscriber.id,
        agent.id,
        " (urgent)" if urgent else "",
    )
    return Result(taken, True)


class _AlreadyDone(Exception):
    pass


def _note(number: str, note: str) -> str:
    return " — ".join(p for p in (number, note) if p)


async def _contact(subscriber: Subscriber, a: dict[str, object]) -> str | None:
    """Save the caller as a new contact, or correct a known one's name, when the agent
    asked to; the contact's name as the message shows it."""
    number, name = str(a.get("number", "")), str(a.get("name", ""))
    if not number:
        return None
    contact = await Contact.get_or_none(subscriber=subscriber, number=number)
    if a.get("save_contact") and name:
        if contact is None:
            contact = await Contact.create(subscriber=subscriber, number=number, name=name)
        elif contact.name != name:
            contact.name = name
            await contact.save(update_fields=["name"])
    return contact.name if contact is not None else None
