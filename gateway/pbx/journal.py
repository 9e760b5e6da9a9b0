"""The dialplan's end journal: each call's FrontdeskCallEnd, also kept in AstDB.

A UserEvent reaches only the AMI sessions logged in when it is sent: a call that ends while
no gateway listens (the gateway killed and restarting, a standby taking the lead) would
leave no trace of how it ended, and its missed-call alert would be lost. So the hangup
handler also writes the end to AstDB, family `frontdesk_end`, key the call's Linkedid:

    <epoch>|<DDI>|<DialStatus>|<VMStatus>|<Answered>|<AnsweredBy>

(the FrontdeskCallEnd fields; `|` never occurs in them, the dialplan filters each). The
leading gateway reads the journal in one DBGetTree when it logs in or takes the lead,
ends the calls that are gone by it, and deletes the entries of calls the database has
ended, so the journal holds only the last moments' calls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection

from gateway.pbx.actions import Pbx
from gateway.pbx.errors import PbxUnavailable
from models.events import CallFinished

log = logging.getLogger(__name__)

FAMILY = "frontdesk_end"
SEPARATOR = "|"
KEEP_UNKNOWN = 24 * 3600.0  # an entry of a call the database never knew: dropped after a day


def parse(linkedid: str, value: str) -> tuple[float, CallFinished] | None:
    """One journal entry: when it was written and the end it tells; None if malformed."""
    parts = value.split(SEPARATOR)
    if len(parts) != 6:
        return None
    epoch, ddi, dial_status, vm_status, answered, answered_by = parts
    try:
        at = float(epoch)
    except ValueError:
        return None
    end = CallFinished(
        linkedid=linkedid,
        ddi=ddi,
        scenario="",
        dial_status=dial_status,
        vm_status=vm_status,
        answered=answered,
        answered_by=answered_by,
    )
    return at, end


def encode(at: float, end: CallFinished) -> str:
    """An entry as the dialplan writes it (the sandbox PBX writes it this way too)."""
    fields = (end.ddi, end.dial_status, end.vm_status, end.answered or "", end.answered_by)
    return SEPARATOR.join((str(int(at)), *fields))


async def read(pbx: Pbx) -> dict[str, tuple[float, CallFinished]]:
    """Every journalled end, by Linkedid (one DBGetTree)."""
    entries = {}
    for linkedid, value in (await pbx.db_tree(FAMILY)).items():
        if (parsed := parse(linkedid, value)) is not None:
            entries[linkedid] = parsed
        else:
            log.warning("end journal: entry %s unreadable: %r", linkedid, value[:80])
    return entries


async def prune(
    pbx: Pbx,
    entries: dict[str, tuple[float, CallFinished]],
    ended: Collection[str],
    now: float | None = None,
) -> int:
    """Delete the entries of calls the database has ended, and of calls it never knew
    once a day old. Returns how many were deleted; a lost link leaves them to next time."""
    now = time.time() if now is None else now
    doomed = [lid for lid, (at, _) in entries.items() if lid in ended or now - at > KEEP_UNKNOWN]
    try:
        await pbx.db_write(FAMILY, ((lid, None) for lid in doomed))
    except PbxUnavailable as exc:
        log.warning(
            "end journal: %d entries not deleted (%s); next login retries", len(doomed), exc
        )
        return 0
    return len(doomed)
