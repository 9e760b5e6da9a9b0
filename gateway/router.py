"""Router: call snapshots in, Call rows and outbox Delivery rows out, in one transaction.

A missed call (nobody answered and no voicemail) gives exactly one notification per
recipient: routing happens once, when the call ends, and each Delivery has a dedupe key.
"""

from __future__ import annotations

import logging
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
        """Route a batch in one transaction (one commit, not one per status change)."""
        snaps = coalesce(snaps)
        subscribers = await self._subscribers({s.ddi for s in snaps if s.ddi})
        created = 0
        async with in_transaction():
            for snap in snaps:
                subscriber = subscribers.get(snap.ddi)
                number = caller_e164(snap.caller_number, self._region) or snap.caller_number
                call = await self._save_call(snap, subscriber, number)
                if snap.ended and snap.outcome is CallOutcome.ABANDONED and subscriber is not None:
                    created += await self._missed_call(call, subscriber, snap, number)
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

    async def _save_call(
        self, snap: CallSnapshot, subscriber: Subscriber | None, number: str
    ) -> Call:
        values = {
            "ddi": snap.ddi,
            "subscriber": subscriber,
            "caller_number": number,
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
        call, _ = await Call.update_or_create(values, linkedid=snap.linkedid)
        return call

    async def _missed_call(
        self, call: Call, subscriber: Subscriber, snap: CallSnapshot, number: str
    ) -> int:
        contact = (
            await Contact.get_or_none(subscriber=subscriber, number=number) if number else None
        )
        recipients = await User.filter(
            subscriber=subscriber, role=Role.SUBSCRIBER, telegram_chat_id__isnull=False
        )
        now = datetime.now(UTC)
        if not recipients:
            await self._undeliverable(call, subscriber, now)
            return 0
        created = 0
        for user in recipients:
            lang = user.language or subscriber.language
            key = f"missed_call:{snap.linkedid}:telegram:{user.telegram_chat_id}"
            if await Delivery.exists(dedupe_key=key):
                continue
            text = messages.missed_call(
                lang=lang,
                subscriber=subscriber.name,
                caller=messages.caller_label(
                    lang, number, snap.caller_name, contact.name if contact else None
                ),
                when=messages.local_time(lang, subscriber.timezone, call.started_at),
                ddi=snap.ddi,
            )
            buttons = messages.call_buttons(lang, call.id, can_call_back=bool(number))
            await Delivery.create(
                dedupe_key=key,
                kind="missed_call",
                channel="telegram",
                address=str(user.telegram_chat_id),
                subscriber=subscriber,
                call=call,
                text=text,
                buttons=[[{"text": b.text, "data": b.data} for b in row] for row in buttons],
                next_attempt_at=now,
            )
            created += 1
        return created

    async def _undeliverable(self, call: Call, subscriber: Subscriber, now: datetime) -> None:
        # Nothing is lost silently: the admin sees a dead delivery saying why.
        key = f"missed_call:{call.linkedid}:none"
        if await Delivery.exists(dedupe_key=key):
            return
        log.warning("missed call for %s but no Telegram chat is linked", subscriber.name)
        await Delivery.create(
            dedupe_key=key,
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
