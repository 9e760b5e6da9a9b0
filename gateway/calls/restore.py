"""What the tracker knew, read back from the database after a crash or a change of leader.

The router writes each call's every status change (Call rows), so the calls a dead
process was following are the rows without an end. The tracker takes them back
(`CallTracker.restore`) and the reconciliation with the PBX tells which are still live.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from models.db import Call, CallDirection
from models.events import CallSnapshot, CallStatus

# Statuses of a call that is ringing or talking (not a scheduled call back, nor one that
# was never routed); older than HORIZON it is the tracker's expiry's, not ours.
LIVE = (CallStatus.WAITING, CallStatus.IN_PROGRESS, CallStatus.FORWARDED)
HORIZON = timedelta(hours=4)
CHUNK = 5000  # linkedids per query (SQLite binds at most 32,766 parameters)


def _ts(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None


def snapshot(call: Call) -> CallSnapshot:
    answered_at = _ts(call.answered_at)
    via = ""
    if answered_at is not None:
        via = "forward" if call.status is CallStatus.FORWARDED else "agent"
    return CallSnapshot(
        linkedid=call.linkedid,
        started_at=call.started_at.timestamp(),
        ddi=call.ddi,
        scenario=call.scenario,
        caller_number=call.caller_number,
        caller_name=call.caller_name,
        status=call.status,
        answered_at=answered_at,
        answered_by=call.answered_by,
        answered_via=via,
        legs_rung=call.legs_rung,
    )


async def unfinished_calls(now: datetime | None = None) -> list[CallSnapshot]:
    """Inbound calls the database has as ringing or talking, oldest first."""
    since = (now or datetime.now(UTC)) - HORIZON
    rows = await Call.filter(
        ended_at__isnull=True,
        direction=CallDirection.INBOUND,
        status__in=LIVE,
        started_at__gte=since,
    ).order_by("started_at")
    return [snapshot(row) for row in rows]


async def ended_linkedids(linkedids: Collection[str]) -> set[str]:
    """Those of the calls the database has ended."""
    wanted, found = list(linkedids), set[str]()
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        rows = await Call.filter(linkedid__in=chunk, ended_at__isnull=False).values_list(
            "linkedid", flat=True
        )
        found.update(str(row) for row in rows)
    return found
