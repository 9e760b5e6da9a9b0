"""Router: call snapshots in, Call rows and outbox Delivery rows out, in one transaction.

A missed call (nobody answered and no voicemail) gives exactly one notification per
recipient: routing happens once, when the call ends, and each Delivery has a dedupe key.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from gateway import messages
from models.db import Call, Contact, Ddi, Delivery, DeliveryStatus, Role, Subscriber, User
from models.events import CallOutcome, CallSnapshot
from models.phone import caller_e164

log = logging.getLogger(__name__)


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def coalesce(snaps: list[CallSnapshot]) -> list[CallSnapshot]:
    """Keep the newest snapshot of each call: a burst of status changes is one write."""
    latest: dict[str, CallSnapshot] = {}
    for snap in snaps:
        latest.pop(snap.linkedid, None)
        latest[snap.linkedid] = snap
    return list(latest.values())


class Router:
    def __init__(self, on_deliveries: Callable[[], None], default_region: str = "GR") -> None:
        self._on_deliveries = on_deliveries
        self._region = default_region
        self.calls_routed = 0

    async def on_call(self, snap: CallSnapshot) -> None:
        await self.on_calls([snap])

    async def on_calls(self, snaps: list[CallSnapshot]) -> None:
        """Route a batch in one transaction, with a fixed number of set-based queries
        (not a few per status change): a burst of calls costs a handful of round trips."""
        snaps = coalesce(snaps)
        subscribers = await self._subscribers({s.ddi for s in snaps if s.ddi})
        numbers = {
            s.linkedid: caller_e164(s.caller_number, self._region) or s.caller_number for s in snaps
        }
        missed = [
            s
            for s in snaps
            if s.ended and s.outcome is CallOutcome.ABANDONED and s.ddi in subscribers
        ]
        async with in_transaction():
            calls = await self._save_calls(snaps, subscribers, numbers)
            created = await self._missed_calls(missed, calls, subscribers, numbers)
        for snap in snaps:
            if snap.ended:
                self.calls_routed += 1
                if snap.ddi not in subscribers:
                    log.warning(
                        "call %s on unknown DDI %r: nobody to tell", snap.linkedid, snap.ddi
                    )
        if created:
            self._on_deliveries()

    @staticmethod
    async def _subscribers(numbers: set[str]) -> dict[str, Subscriber]:
        if not numbers:
            return {}
        ddis = await Ddi.filter(number__in=numbers).select_related("subscriber")
        return {d.number: d.subscriber for d in ddis}

    @staticmethod
    async def _save_calls(
        snaps: list[CallSnapshot], subscribers: dict[str, Subscriber], numbers: dict[str, str]
    ) -> dict[str, Call]:
        linkedids = [s.linkedid for s in snaps]
        known = {c.linkedid: c for c in await Call.filter(linkedid__in=linkedids)}
        fresh: list[Call] = []
        for snap in snaps:
            subscriber = subscribers.get(snap.ddi)
            values = {
                "ddi": snap.ddi,
                "subscriber_id": subscriber.id if subscriber is not None else None,
                "caller_number": numbers[snap.linkedid],
                "caller_name": snap.caller_name,
                "scenario": snap.scenario,
                "status": snap.status,
                "outcome": snap.outcome,
                "answered_by": snap.answered_by,
                "legs_rung": snap.legs_rung,
                "started_at": _dt(snap.started_at),
                "answered_at": _dt(snap.answered_at),
                "ended_at": _dt(snap.ended_at),
            }
            call = known.get(snap.linkedid)
            if call is None:
                fresh.append(Call(linkedid=snap.linkedid, **values))
            else:
                for name, value in values.items():
                    setattr(call, name, value)
        if known:
            await Call.bulk_update(list(known.values()), fields=CALL_FIELDS)
        if fresh:
            await Call.bulk_create(fresh)
            # bulk_create does not return ids on every backend; read them back in one query.
            known.update(
                {c.linkedid: c for c in await Call.filter(linkedid__in=[c.linkedid for c in fresh])}
            )
        return known

    async def _missed_calls(
        self,
        missed: list[CallSnapshot],
        calls: dict[str, Call],
        subscribers: dict[str, Subscriber],
        numbers: dict[str, str],
    ) -> int:
        """One Delivery per linked chat of each missed call; a dead one when nobody is linked."""
        if not missed:
            return 0
        owners = {subscribers[s.ddi].id for s in missed}
        recipients: dict[int, list[User]] = defaultdict(list)
        for user in await User.filter(
            subscriber_id__in=owners, role=Role.SUBSCRIBER, telegram_chat_id__isnull=False
        ).order_by("id"):
            recipients[user.subscriber_id].append(user)  # type: ignore[attr-defined]
        contacts = {
            (c.subscriber_id, c.number): c.name  # type: ignore[attr-defined]
            for c in await Contact.filter(
                subscriber_id__in=owners, number__in={n for n in numbers.values() if n}
            )
        }
        now = datetime.now(UTC)
        rows: list[Delivery] = []
        for snap in missed:
            subscriber, call = subscribers[snap.ddi], calls[snap.linkedid]
            users = recipients.get(subscriber.id, [])
            if not users:
                # Nothing is lost silently: the admin sees a dead delivery saying why.
                log.warning("missed call for %s but no Telegram chat is linked", subscriber.name)
                rows.append(_undeliverable(call, subscriber, now))
                continue
            number = numbers[snap.linkedid]
            contact = contacts.get((subscriber.id, number)) if number else None
            for user in users:
                rows.append(_missed_call(call, subscriber, user, snap, number, contact, now))
        # The dedupe key makes a call reported twice (a replay, a restart) tell nobody twice.
        done = set(
            await Delivery.filter(dedupe_key__in=[r.dedupe_key for r in rows]).values_list(
                "dedupe_key", flat=True
            )
        )
        rows = [r for r in rows if r.dedupe_key not in done]
        if rows:
            await Delivery.bulk_create(rows)
        return sum(1 for r in rows if r.status is DeliveryStatus.PENDING)


CALL_FIELDS = [
    "ddi",
    "subscriber_id",
    "caller_number",
    "caller_name",
    "scenario",
    "status",
    "outcome",
    "answered_by",
    "legs_rung",
    "started_at",
    "answered_at",
    "ended_at",
]


def _missed_call(
    call: Call,
    subscriber: Subscriber,
    user: User,
    snap: CallSnapshot,
    number: str,
    contact: str | None,
    now: datetime,
) -> Delivery:
    lang = user.language or subscriber.language
    text = messages.missed_call(
        lang=lang,
        subscriber=subscriber.name,
        caller=messages.caller_label(lang, number, snap.caller_name, contact),
        when=messages.local_time(lang, subscriber.timezone, call.started_at),
        ddi=snap.ddi,
    )
    buttons = messages.call_buttons(lang, call.id, can_call_back=bool(number))
    return Delivery(
        dedupe_key=f"missed_call:{snap.linkedid}:telegram:{user.telegram_chat_id}",
        kind="missed_call",
        channel="telegram",
        address=str(user.telegram_chat_id),
        subscriber=subscriber,
        call=call,
        text=text,
        buttons=[[{"text": b.text, "data": b.data} for b in row] for row in buttons],
        status=DeliveryStatus.PENDING,
        next_attempt_at=now,
    )


def _undeliverable(call: Call, subscriber: Subscriber, now: datetime) -> Delivery:
    return Delivery(
        dedupe_key=f"missed_call:{call.linkedid}:none",
        kind="missed_call",
        channel="telegram",
        address="",
        subscriber=subscriber,
        call=call,
        text="",
        status=DeliveryStatus.DEAD,
        last_error="no Telegram chat linked to this subscriber",
        next_attempt_at=now,
    )
