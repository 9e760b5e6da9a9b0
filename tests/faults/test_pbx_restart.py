"""The PBX (the sandbox Asterisk) restarting while calls ring: each call ends once, with
the right outcome, and alerts exactly the calls whose abandonment was seen.

Calls that rang across the restart were never seen to end: `unknown`, no alert (nobody
knows whether the caller gave up or the PBX cut them). Calls answered before it keep
`answered`. Calls abandoned before it, and new calls after it (whose channel names the
new Asterisk run reuses), alert once each. Both a clean restart (a Shutdown event first)
and a crash (the connection simply drops)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from models.db import Call as CallRow
from models.db import Delivery, Notification
from models.events import CallOutcome, CallSnapshot, CallStatus
from sandbox.call_scripts import CallFactory
from tests.faults.conftest import Report
from tests.faults.office import DDI, office
from tests.stack import health

Frame = dict[str, str]
ABANDONED_BEFORE, RINGING, ANSWERED, ABANDONED_AFTER = 2, 6, 2, 2
WAIT = 20.0


def _before_hangup(frames: list[Frame]) -> list[Frame]:
    """The call's frames while it is still up (before the first HangupRequest)."""
    return frames[: next(i for i, f in enumerate(frames) if f["Event"] == "HangupRequest")]


class Ends:
    """Every snapshot the gateway routes, and waits on them."""

    def __init__(self) -> None:
        self.seen: list[CallSnapshot] = []
        self._changed = asyncio.Event()

    def observe(self, snapshot: CallSnapshot) -> None:
        self.seen.append(snapshot)
        self._changed.set()

    def ended(self, linkedid: str) -> list[CallSnapshot]:
        return [s for s in self.seen if s.linkedid == linkedid and s.ended]

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


@pytest.mark.parametrize("clean", [True, False], ids=["shutdown", "crash"])
async def test_pbx_restart_mid_call(fault_db: Path, fault_report: Report, clean: bool) -> None:
    async with office(fault_db) as here:
        await here.route("telegram")  # the office's default route for missed calls too
        ends = Ends()
        gateway = here.runtime.gateway
        gateway.observers.append(ends.observe)
        before = CallFactory()  # ringing first: the calls after the restart reuse their names
        ringing = [
            _before_hangup(before.missed(DDI, f"+30210000200{n}", "Ρ")) for n in range(RINGING)
        ]
        answered = [
            _before_hangup(before.agent_answered(DDI, f"+30210000300{n}", "Ο"))
            for n in range(ANSWERED)
        ]
        abandoned = [before.missed(DDI, f"+30210000100{n}", "Α") for n in range(ABANDONED_BEFORE)]
        live = [frames[0]["Linkedid"] for frames in ringing + answered]
        for frames in abandoned + ringing + answered:
            await here.ami.play(frames)
        await ends.until(lambda: set(live) <= set(gateway.tracker.calls))
        logins = here.ami.logged_in

        await here.ami.restart(shutdown_event=clean)
        await ends.until(lambda: all(ends.ended(linkedid) for linkedid in live))
        await here.ami.wait_logged_in(logins, timeout=WAIT)
        # The new run numbers its channels from the start again: the same names, new calls.
        after = CallFactory(start_epoch=1795400000)
        later = [after.missed(DDI, f"+30210000400{n}", "Ν") for n in range(ABANDONED_AFTER)]
        assert later[0][0]["Channel"] == ringing[0][0]["Channel"]
        for frames in later:
            await here.ami.play(frames)
        told = [frames[0]["Linkedid"] for frames in abandoned + later]
        await ends.until(lambda: all(ends.ended(linkedid) for linkedid in told))
        await asyncio.wait_for(gateway.drain(), WAIT)

        notified = await Notification.filter(kind="missed_call").count()
        deliveries = dict(await Delivery.filter(kind="missed_call").values_list("id", "channel"))
        settled = True
        try:
            await here.until(lambda: here.finished(deliveries) == len(deliveries))
        except TimeoutError:
            settled = False
        tally = await here.tally(f"pbx_restart({'shutdown' if clean else 'crash'})")
        alerted = set(
            await Notification.filter(kind="missed_call").values_list("call__linkedid", flat=True)
        )
        rows = {r.linkedid: (r.status, r.outcome) for r in await CallRow.all()}
        _, healthz = await health(here.healthz)
    fault_report(tally)

    assert settled, tally.detail()
    # Each call ended once, with the outcome its part of the story gives it.
    outcomes = {}
    for linkedid in told + live:
        [end] = ends.ended(linkedid)
        outcomes[linkedid] = end.outcome
    expected = {
        **{f[0]["Linkedid"]: CallOutcome.ABANDONED for f in abandoned + later},
        **{f[0]["Linkedid"]: CallOutcome.UNKNOWN for f in ringing},
        **{f[0]["Linkedid"]: CallOutcome.ANSWERED for f in answered},
    }
    assert outcomes == expected and healthz["calls_in_progress"] == 0
    assert all(rows[f[0]["Linkedid"]] == (CallStatus.UNKNOWN, CallOutcome.UNKNOWN) for f in ringing)
    # Alerts: exactly the abandoned calls, once each; nothing lost, nothing twice.
    assert alerted == set(told) and notified == len(told)
    assert tally.lost == [] and tally.duplicated == 0, tally.detail()
    assert tally.sent == len(told), tally.detail()
