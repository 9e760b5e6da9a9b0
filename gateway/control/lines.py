"""Control actions: what subscribers' commands do on the PBX and in the database.

AstDB keys (family `frontdesk`) are read by deploy/asterisk/extensions_frontdesk.conf:
scenario/<ddi>, forward/<ddi>, mailbox/<ddi> (ringtime/ and fallback/ are the operator's).

The database is the truth: a change is written to AstDB first and saved only if the PBX
took it all; if either step fails, the old values go back to AstDB (and every AMI login
re-asserts the database's values anyway), so the two never disagree for long.

The re-assert at login (`reassert_all`) reads what the PBX holds (one DBGetTree per owned
subtree, gateway/control/astdb.py), reads every DDI in one query, and sends only the keys
that differ, pipelined (Pbx.db_write). It runs beside the AMI reader, never in its way:
events keep being handled while it runs. A key pushed by a command meanwhile is left to
that fresher write.

A channel action (Redirect) first asks the PBX whose the channel is: after a PBX restart
channel names are counted from -00000000 again, so a name we tracked may now be another
subscriber's caller.

The PBX is reached through gateway.pbx.actions.Pbx (typed actions); every failure there is
a PbxUnavailable.

Every number the gateway makes the PBX call (a call back's caller, the number ringing calls
are moved or forwarded to) passes the subscriber's outbound policy first
(gateway/admin/policy.py): a refusal is OutboundRefused and nothing is changed or dialled.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.admin import policy
from gateway.admin.policy import OutboundRefused
from gateway.control import astdb
from gateway.pbx.actions import AmiLink, Pbx
from gateway.pbx.errors import PbxUnavailable
from models.db import Call, CallDirection, Ddi, Subscriber
from models.events import CallSnapshot, CallStatus
from models.vocab import Scenario

log = logging.getLogger(__name__)

ASTDB_FAMILY = "frontdesk"
CALLBACK_CONTEXT = "frontdesk-callback"
MOVED_CONTEXT = "frontdesk-moved"  # rings the mobile (the extension), then voicemail
LINKEDID = "CHANNEL(linkedid)"
PAGE = 5000  # DDIs read per query at a re-assert (one slice of the event loop each)


class NoMobileNumber(ValueError):
    """The subscriber has no forward/mobile number on file."""


@dataclass(frozen=True, slots=True)
class Forwarded:
    """What "Forward calls to me" did: the number the lines now forward to, and how many
    calls ringing at that moment were moved there. Formats as the number."""

    number: str
    moved: int

    def __str__(self) -> str:
        return self.number


def _waiting(call: CallSnapshot) -> bool:
    return not call.ended and call.answered_at is None and bool(call.caller_channel)


class Control:
    def __init__(
        self,
        pbx: Pbx | AmiLink,
        ringing: Callable[[], Iterable[CallSnapshot]] = tuple,
        on_moved: Callable[[str, str], None] = lambda linkedid, number: None,
        region: str = "GR",
    ) -> None:
        # An AMI link (a test double recording frames) gets the typed actions over it.
        self._pbx = pbx if isinstance(pbx, Pbx) else Pbx(pbx)
        self._ringing = ringing  # the tracker's calls in progress (live objects)
        self._on_moved = on_moved  # told (linkedid, number) of each call moved to a mobile
        self._region = region  # the operator's country: what the outbound policy calls home
        # Keys written since each running re-assert read the database (it skips them),
        # and a lock that keeps a change (AstDB write, then save) from straddling that read.
        self._fresh: list[set[str]] = []
        self._snapshot = asyncio.Lock()

    async def _db_put(self, key: str, value: str) -> None:
        for fresh in self._fresh:
            fresh.add(key)
        await self._pbx.db_put(ASTDB_FAMILY, key, value)

    async def push_lines(self, subscriber: Subscriber) -> None:
        """Write the subscriber's scenario and forward number for each of its DDIs."""
        for ddi in await Ddi.filter(subscriber=subscriber):
            await self._db_put(f"scenario/{ddi.number}", subscriber.scenario.value)
            await self._db_put(f"forward/{ddi.number}", subscriber.forward_target or "")
            if ddi.mailbox:
                await self._db_put(f"mailbox/{ddi.number}", ddi.mailbox)

    async def _commit(self, subscriber: Subscriber, **changes: Any) -> None:
        """Apply `changes`, write the lines to AstDB, then save. On any failure the old
        values are put back, in memory and (best effort) in AstDB, and the error raised."""
        async with self._snapshot:
            old = {name: getattr(subscriber, name) for name in changes}
            for name, value in changes.items():
                setattr(subscriber, name, value)
            try:
                await self.push_lines(subscriber)
                await subscriber.save(update_fields=list(changes))
            except Exception:
                for name, value in old.items():
                    setattr(subscriber, name, value)
                await self._restore_lines(subscriber)
                raise

    async def _restore_lines(self, subscriber: Subscriber) -> None:
        try:
            await self.push_lines(subscriber)
        except PbxUnavailable as exc:
            # Not connected or refused: the next AMI login writes the database's values.
            log.warning("subscriber %s: AstDB not restored yet (%s)", subscriber.id, exc)

    async def set_scenario(
        self, subscriber: Subscriber, scenario: Scenario, until: datetime | None = None
    ) -> None:
        """Switch the lines now; with `until`, the scenario in force now returns by itself
        then (revert_due). Forwarding needs a number the outbound policy allows."""
        if scenario is Scenario.FORWARD and subscriber.forward_target:
            policy.check(subscriber, subscriber.forward_target, self._region)
        if until is None:
            after = None
        else:  # a timed switch during a timed switch returns to the original scenario
            after = subscriber.scenario_after or subscriber.scenario
        await self._commit(
            subscriber, scenario=scenario, scenario_until=until, scenario_after=after
        )
        log.info("subscriber %s: scenario %s until %s", subscriber.id, scenario.value, until)

    async def set_forward(self, subscriber: Subscriber, number: str | None) -> None:
        """The number calls are forwarded to (None: the mobile; with no mobile either, the
        forward scenario falls back at once, as the dialplan documents)."""
        if number:
            policy.check(subscriber, number, self._region)
        await self._commit(subscriber, forward_number=number)

    async def revert_due(self, now: datetime) -> int:
        """Timed scenarios whose time is up return to what was in force before."""
        reverted = 0
        for subscriber in await Subscriber.filter(scenario_until__lte=now):
            back = subscriber.scenario_after or Scenario.AGENT
            try:
                await self.set_scenario(subscriber, back)
            except OutboundRefused:  # the policy changed meanwhile: the agents answer
                await self.set_scenario(subscriber, Scenario.AGENT)
            reverted += 1
        return reverted

    async def redirect_ringing(self, subscriber: Subscriber) -> int:
        """Move the subscriber's calls that are ringing right now to its mobile (Redirect
        of the caller's channel to the moved context, which dials the number); returns how
        many were moved. A call that cannot be moved is logged and skipped."""
        number = subscriber.forward_target  # where the lines forward now
        if not number:
            return 0
        try:
            number_class = policy.check(subscriber, number, self._region)
        except OutboundRefused:
            return 0  # the forward scenario itself was refused; nothing to move
        lines = set(await Ddi.filter(subscriber=subscriber).values_list("number", flat=True))
        calls = [c for c in self._ringing() if _waiting(c) and c.ddi in lines]
        moved = 0
        for call in calls:
            if await self._move(call, number):
                moved += 1
                await policy.placed(subscriber, number, number_class, policy.FORWARD)
        if calls:
            log.info(
                "subscriber %s: %d of %d ringing call(s) moved to mobile",
                subscriber.id,
                moved,
                len(calls),
            )
        return moved

    async def _move(self, call: CallSnapshot, number: str) -> bool:
        linkedid, channel = call.linkedid, call.caller_channel
        try:
            if not await self._channel_is(channel, linkedid):
                log.warning(
                    "call %s: channel %s is not its own any more; not moved", linkedid, channel
                )
                return False
            if not _waiting(call):  # answered or ended while we asked
                return False
            await self._pbx.redirect(channel, MOVED_CONTEXT, number)
        except PbxUnavailable as exc:
            log.warning("call %s could not be moved to %s: %s", linkedid, number, exc)
            return False
        self._on_moved(linkedid, number)
        return True

    async def _channel_is(self, channel: str, linkedid: str) -> bool:
        """Whether the PBX's channel of that name belongs to that call right now (a gone
        channel belongs to none)."""
        return await self._pbx.getvar(channel, LINKEDID) == linkedid

    async def forward_to_mobile(self, subscriber: Subscriber) -> Forwarded:
        """Forward the subscriber's lines to its mobile and move the calls ringing now
        there. The switch stands whether or not each call could be moved."""
        number = subscriber.mobile
        if not number:
            raise NoMobileNumber(subscriber.name)
        policy.check(subscriber, number, self._region)
        # "To me": the lines forward to the mobile (no other target), the ringing calls too.
        await self._commit(subscriber, scenario=Scenario.FORWARD, forward_number=None)
        moved = await self.redirect_ringing(subscriber)
        log.info("subscriber %s: calls forwarded to mobile", subscriber.id)
        return Forwarded(number, moved)

    async def call_back(self, subscriber: Subscriber, call: Call) -> None:
        """Ring the subscriber's mobile first, then connect the caller (whom the outbound
        policy must allow calling: OutboundRefused otherwise)."""
        if not subscriber.mobile:
            raise NoMobileNumber(subscriber.name)
        number_class = policy.check(subscriber, call.caller_number, self._region)
        await self._pbx.originate_callback(
            subscriber.mobile, call.caller_number, CALLBACK_CONTEXT, subscriber.name, call.ddi
        )
        await policy.placed(subscriber, call.caller_number, number_class, policy.CALLBACK)
        # The console lists it as an outgoing call: placed, its progress not followed
        # (the tracker keeps no call of our own Originate).
        await Call.create(
            linkedid=f"out:{uuid.uuid4().hex}",
            ddi=call.ddi,
            subscriber=subscriber,
            caller_number=call.caller_number,
            caller_name=call.caller_name,
            direction=CallDirection.OUTBOUND,
            status=CallStatus.SCHEDULED,
            started_at=datetime.now(UTC),
        )

    async def reassert_all(self) -> Reasserted:
        """After Asterisk (re)connects, make AstDB agree with our database: read what the
        PBX holds, write only what differs (pipelined), delete the owned keys of DDIs we
        no longer have. One owned subtree at a time, each dropped before the next: at
        300,000 DDIs a copy of every key at once would cost hundreds of MB, and Python
        seldom gives that back to the system."""
        started = time.perf_counter()
        fresh: set[str] = set()
        ddis = written = deleted = 0
        known = True  # what the PBX holds could be read
        refused: list[PbxUnavailable] = []
        try:
            # The database with no change half made (in AstDB, not yet saved); a key written
            # after that read began is skipped below, so the PBX is read alongside it.
            async with self._snapshot:
                self._fresh.append(fresh)
                holding = asyncio.ensure_future(self._held(astdb.SCENARIO))
                try:
                    wants = await wanted_in_database()
                except BaseException:
                    holding.cancel()
                    raise
            ddis = len(wants[astdb.SCENARIO])  # one scenario key per DDI
            for subtree in astdb.OWNED:
                if subtree != astdb.SCENARIO:
                    holding = asyncio.ensure_future(self._held(subtree) if known else _none())
                held = await holding
                del holding  # a done task keeps its result: the held keys, until dropped
                known = held is not None
                change = astdb.diff(wants.pop(subtree), held, under=f"{subtree}/")
                del held
                try:
                    await self._pbx.db_write(ASTDB_FAMILY, change.changes(skip=fresh))
                except PbxUnavailable as exc:  # refused: the other subtrees are still written
                    refused.append(exc)
                written, deleted = written + len(change.puts), deleted + len(change.deletes)
                del change
        finally:
            self._fresh = [f for f in self._fresh if f is not fresh]
        if refused:
            raise refused[0] if len(refused) == 1 else PbxUnavailable("; ".join(map(str, refused)))
        done = Reasserted(ddis, written, deleted, time.perf_counter() - started)
        log.info(
            "AstDB re-asserted for %d DDIs: %d written, %d deleted, in %.2fs%s",
            done.ddis,
            done.written,
            done.deleted,
            done.seconds,
            "" if known else " (what the PBX held was unknown)",
        )
        return done

    async def _held(self, subtree: str) -> dict[str, str] | None:
        """What the PBX holds under an owned subtree, by key within it; None when it cannot
        be read (an Asterisk older than 16.28 has no DBGetTree): then everything is
        written."""
        try:
            return await self._pbx.db_tree(ASTDB_FAMILY, subtree, within_key=True)
        except PbxUnavailable as exc:
            log.warning("cannot read AstDB (%s): writing every key", exc)
            return None


async def _none() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Reasserted:
    """What a re-assert did: DDIs looked at, keys written and deleted, how long it took."""

    ddis: int
    written: int
    deleted: int
    seconds: float


async def wanted_in_database() -> dict[str, dict[str, str]]:
    """Owned subtree -> DDI -> the value of its key there (astdb.wanted), for every DDI:
    one joined query per PAGE DDIs (never one per subscriber), in pages so that no slice
    of the event loop turns 300,000 rows into objects at once while AMI events wait, and
    no row outlives its page (the three subtrees share each DDI's string)."""
    want: dict[str, dict[str, str]] = {subtree: {} for subtree in astdb.OWNED}
    last = 0
    while True:
        page = (
            await Ddi.filter(id__gt=last)
            .order_by("id")
            .limit(PAGE)
            .values_list(
                "id",
                "number",
                "mailbox",
                "subscriber__scenario",
                "subscriber__forward_number",
                "subscriber__mobile",
            )
        )
        rows = [
            astdb.LineRow(number, _value(scenario), forward or mobile or "", mailbox or "")
            for _, number, mailbox, scenario, forward, mobile in page
        ]
        for subtree, keys in want.items():
            keys.update(astdb.wanted(rows, subtree))
        if len(page) < PAGE:
            return want
        last = page[-1][0]


def _value(scenario: Scenario | str) -> str:
    # Scenario(...) costs microseconds each: 30,000 of them are felt at every login.
    return scenario.value if isinstance(scenario, Scenario) else Scenario(scenario).value
