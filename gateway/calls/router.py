"""Router: call snapshots in; Call rows, and a Notification (with its first outbox
Delivery rows) for each missed call, out, in one transaction.

A missed call (nobody answered and no voicemail) gives exactly one Notification however
many legs rang: routing happens when the call ends and the notification has a dedupe key
(`missed_call:<linkedid>`), so a replayed or re-reported end changes nothing. The voicemail
desk tells a message too short to be one as a missed call with the same key; a call it has
told so ends abandoned here, whichever of the two came first.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from gateway.calls.render import MissedCallPayload
from gateway.delivery.notices import NewNotification, Notices
from models.db import Call, Contact, Ddi, Notification, Subscriber, Urgency
from models.events import CallOutcome, CallSnapshot, CallStatus
from models.phone import caller_e164
from models.vocab import Kind

log = logging.getLogger(__name__)


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def missed_call_key(linkedid: str) -> str:
    """The one missed-call notification of a call, whoever tells it."""
    return f"{Kind.MISSED_CALL}:{linkedid}"


def missed_call_notice(
    key: str,
    subscriber: Subscriber,
    *,
    ddi: str,
    number: str,
    caller_name: str,
    contact_name: str | None,
    at: datetime,
    call_id: int | None,
) -> NewNotification:
    """A missed-call notification: the router's, or the voicemail desk's for a message too
    short to be one. Without a call (none could be tied) it has no call buttons."""
    payload = MissedCallPayload(
        subscriber=subscriber.name,
        caller_number=number,
        caller_name=caller_name,
        contact_name=contact_name,
        at=at,
        timezone=subscriber.timezone,
        ddi=ddi,
        call_id=call_id,
    )
    return NewNotification(
        dedupe_key=key,
        subscriber=subscriber,
        kind=Kind.MISSED_CALL,
        urgency=Urgency.NORMAL,
        payload=payload.to_json(),
        call_id=call_id,
    )


def coalesce(snaps: list[CallSnapshot]) -> list[CallSnapshot]:
    """Keep the newest snapshot of each call: a burst of status changes is one write."""
    latest: dict[str, CallSnapshot] = {}
    for snap in snaps:
        latest.pop(snap.linkedid, None)
        latest[snap.linkedid] = snap
    return list(latest.values())


class Router:
    def __init__(self, notices: Notices, default_region: str = "GR") -> None:
        self._notices = notices
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
        async with in_transaction():
            snaps = await self._told_missed(snaps)
            missed = [
                s
                for s in snaps
                if s.ended and s.outcome is CallOutcome.ABANDONED and s.ddi in subscribers
            ]
            calls = await self._save_calls(snaps, subscribers, numbers)
            if missed:
                notices = await self._missed_calls(missed, calls, subscribers, numbers)
                await self._notices.create(notices)
        for snap in snaps:
            if snap.ended:
                self.calls_routed += 1
                if snap.ddi not in subscribers:
                    log.warning(
                        "call %s on unknown DDI %r: nobody to tell", snap.linkedid, snap.ddi
                    )

    @staticmethod
    async def _told_missed(snaps: list[CallSnapshot]) -> list[CallSnapshot]:
        """A call whose message the voicemail desk found too short, and told as a missed
        call before the call's end came here, ended abandoned (the tracker saw VMSTATUS
        SUCCESS and says voicemail)."""
        keys = {
            missed_call_key(s.linkedid)
            for s in snaps
            if s.ended and s.outcome is CallOutcome.VOICEMAIL
        }
        if not keys:
            return snaps
        told = set(
            await Notification.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True)
        )
        return [
            replace(s, outcome=CallOutcome.ABANDONED, status=CallStatus.LOST)
            if missed_call_key(s.linkedid) in told
            else s
            for s in snaps
        ]

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

    @staticmethod
    async def _missed_calls(
        missed: list[CallSnapshot],
        calls: dict[str, Call],
        subscribers: dict[str, Subscriber],
        numbers: dict[str, str],
    ) -> list[NewNotification]:
        owners = {subscribers[s.ddi].id for s in missed}
        contacts = {
            (c.subscriber_id, c.number): c.name  # type: ignore[attr-defined]
            for c in await Contact.filter(
                subscriber_id__in=owners, number__in={n for n in numbers.values() if n}
            )
        }
        notices = []
        for snap in missed:
            subscriber, call = subscribers[snap.ddi], calls[snap.linkedid]
            number = numbers[snap.linkedid]
            notices.append(
                missed_call_notice(
                    missed_call_key(snap.linkedid),
                    subscriber,
                    ddi=snap.ddi,
                    number=number,
                    caller_name=snap.caller_name,
                    contact_name=contacts.get((subscriber.id, number)) if number else None,
                    at=call.started_at,
                    call_id=call.id,
                )
            )
        return notices


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
