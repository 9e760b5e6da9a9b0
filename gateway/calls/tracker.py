"""Call tracker: one CallSnapshot per Linkedid, from channel events to console status.

Every channel of a call (Local halves, queue legs, the forward leg) shares the Linkedid,
so the call ends when its last channel hangs up, and one call gives one outcome however
many legs rang. Our dialplan's UserEvents tell the DDI and scenario; the standard
events tell who answered. Pure and synchronous: it is on the AMI hot path.

A call exists only once our dialplan's FrontdeskCall (CallRouted) is seen: anything else
(malformed frames, the gateway's own call-back Originate) never becomes a call. What came
before it for a linkedid (Newchannel's caller name, channels) waits in a small, expiring
LRU table of pending calls and is replayed when FrontdeskCall arrives; `unrouted` lists
the calls whose first channel is open there (the console's `not_started`).

After every AMI login `reconcile` compares what is tracked with what the PBX lists: calls
it no longer has ended while we could not see them (a PBX restart or crash sends no
Hangup). Their outcome is what the dialplan's end journal says (the FrontdeskCallEnd it
also kept in AstDB, read at login), else `unknown` unless an answer or a message was seen.

A gateway that starts (after a crash) or takes the lead (another gateway died) `restore`s
the calls the database has as unfinished before it reconciles: the router writes every
status change, so what the tracker knew survives the process.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from models.events import (
    CallerIdentified,
    CallFellBack,
    CallFinished,
    CallOutcome,
    CallRouted,
    CallSnapshot,
    CallStatus,
    ChannelClosed,
    ChannelOpened,
    DialEnded,
    DialStarted,
    LiveChannel,
    PbxEvent,
    VoicemailWaiting,
)

log = logging.getLogger(__name__)

Listener = Callable[[CallSnapshot], None]
_UNKNOWN_CALLER = {"", "<unknown>"}
_RECENTLY_ENDED = 10_000
# Pending linkedids (seen opening, no FrontdeskCall yet): FrontdeskCall follows Newchannel
# within a second on a real call, so a small table that forgets after a minute is ample.
PENDING_MAX = 256
PENDING_EVENTS_MAX = 32  # per linkedid: a real call sends a handful before FrontdeskCall
PENDING_TTL = 60.0
_DIALPLAN_ANSWERED = {"agent", "forward", ""}  # CallEnd's Answered values we act on


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _dials(dialled: tuple[str, ...], number: str) -> bool:
    """Whether a leg dialled the number (dial strings add tech and host around it)."""
    digits = _digits(number)
    return bool(digits) and any(digits in _digits(text) for text in dialled)


@dataclass(slots=True)
class _Leg:
    """One dialled leg: an agent's (via "agent", who = member interface) or the forward
    target's (via "forward", who = the number)."""

    via: str
    who: str
    dialled: tuple[str, ...]  # its dial string and channel: how a moved call's leg is found
    answered: bool = False
    ended: bool = False  # its DialEnd (any status) or its channel's Hangup was seen


ChannelView = Mapping[str, Collection[str]]  # linkedid -> uniqueids of its channels


@dataclass(slots=True)
class _Pending:
    """What was seen of a linkedid before its FrontdeskCall, to replay into the call."""

    seen_at: float
    events: list[PbxEvent]
    open: set[str]  # uniqueids opened and not closed yet


@dataclass(frozen=True, slots=True)
class Unrouted:
    """A channel that opens a call our dialplan has not routed yet: the console's
    `not_started` (it becomes a call on its FrontdeskCall, or is forgotten)."""

    linkedid: str
    seen_at: float
    opened: ChannelOpened


class _PendingCalls:
    """Linkedids not (yet) calls: bounded (LRU, PENDING_MAX), each forgotten after
    PENDING_TTL, so a flood of frames for calls that never start cannot grow memory."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._table: OrderedDict[str, _Pending] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def note(self, event: PbxEvent) -> None:
        """Keep an event of a linkedid that is not a call; only an opening one starts an
        entry (others for an unseen linkedid are of calls we cannot place)."""
        now = self._clock()
        self._expire(now)
        entry = self._table.get(event.linkedid)
        if entry is None:
            if not isinstance(event, ChannelOpened):
                return
            entry = self._table[event.linkedid] = _Pending(now, [], set())
            if len(self._table) > PENDING_MAX:
                self._table.popitem(last=False)
        self._table.move_to_end(event.linkedid)
        if isinstance(event, ChannelOpened):
            entry.open.add(event.uniqueid)
        elif isinstance(event, ChannelClosed):
            entry.open.discard(event.uniqueid)
            if not entry.open:  # all its channels gone without FrontdeskCall: not a call
                del self._table[event.linkedid]
                return
        if len(entry.events) < PENDING_EVENTS_MAX:
            entry.events.append(event)

    def unrouted(self) -> list[Unrouted]:
        """Calls whose first channel is open and not routed yet, oldest first."""
        self._expire(self._clock())
        found = []
        for linkedid, entry in self._table.items():
            opened = next(
                (
                    e
                    for e in entry.events
                    if isinstance(e, ChannelOpened) and e.uniqueid == linkedid
                ),
                None,
            )
            if opened is not None and linkedid in entry.open:
                found.append(Unrouted(linkedid, entry.seen_at, opened))
        return sorted(found, key=lambda u: u.seen_at)

    def take(self, linkedid: str) -> _Pending | None:
        self._expire(self._clock())
        return self._table.pop(linkedid, None)

    def _expire(self, now: float) -> None:
        # Oldest first in LRU order is not oldest by seen_at, but close enough: stop early.
        while self._table:
            linkedid, entry = next(iter(self._table.items()))
            if now - entry.seen_at <= PENDING_TTL:
                return
            del self._table[linkedid]


class CallTracker:
    def __init__(self, listener: Listener, clock: Callable[[], float] = time.time) -> None:
        self._listener = listener
        self._clock = clock
        self.calls: dict[str, CallSnapshot] = {}
        self._legs: dict[str, dict[str, _Leg]] = {}  # linkedid -> dest uniqueid -> leg
        # linkedid -> Uniqueid of the channel that runs our dialplan (sent FrontdeskCall)
        self._caller_uid: dict[str, str] = {}
        self._touched: dict[str, float] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        # Restored calls whose channels the PBX has not listed yet: until it has, a hangup
        # of one channel must not end the call (its other channels are unknown to us).
        self._unlisted: set[str] = set()
        # Channels of such calls seen closing meanwhile: a listing taken before their
        # Hangup must not bring them back (linkedid -> uniqueids).
        self._closed_unlisted: dict[str, set[str]] = {}
        # Calls whose dialplan end (FrontdeskCallEnd) came as an event: if the listing then
        # finds them gone, their end was seen though the journal, read earlier, lacked it.
        self._finish_heard: set[str] = set()
        self.pending = _PendingCalls(clock)
        self._handlers: dict[type, Callable[[CallSnapshot, object], None]] = {
            ChannelOpened: self._on_channel_opened,  # type: ignore[dict-item]
            CallerIdentified: self._on_caller_identified,  # type: ignore[dict-item]
            CallRouted: self._on_routed,  # type: ignore[dict-item]
            DialStarted: self._on_dial_started,  # type: ignore[dict-item]
            DialEnded: self._on_dial_ended,  # type: ignore[dict-item]
            CallFellBack: self._on_fell_back,  # type: ignore[dict-item]
            VoicemailWaiting: self._on_voicemail,  # type: ignore[dict-item]
            CallFinished: self._on_finished,  # type: ignore[dict-item]
            ChannelClosed: self._on_channel_closed,  # type: ignore[dict-item]
        }

    def handle(self, event: PbxEvent) -> None:
        # Events of no call (a queue member's, which the gateway hands to the presence desk)
        # carry no linkedid and change nothing here.
        linkedid = getattr(event, "linkedid", "")
        if not linkedid or linkedid in self._ended:
            return  # late frames of an ended call (Cdr-era stragglers) change nothing
        call = self.calls.get(linkedid)
        if call is None:
            if not isinstance(event, CallRouted):
                self.pending.note(event)
                return
            call = self._start(linkedid)
        self._touched[linkedid] = self._clock()
        before = (call.status, call.ddi, call.caller_number, call.ringing)
        self._handlers[type(event)](call, event)
        if call.ended:
            self._finish(call)
        elif (call.status, call.ddi, call.caller_number, call.ringing) != before:
            self._emit(call)

    def _start(self, linkedid: str) -> CallSnapshot:
        """A call, from its FrontdeskCall on, with what was seen of it before replayed."""
        seen = self.pending.take(linkedid)
        started_at = seen.seen_at if seen is not None else self._clock()  # its Newchannel
        call = self.calls[linkedid] = CallSnapshot(linkedid=linkedid, started_at=started_at)
        self._legs[linkedid] = {}
        for earlier in seen.events if seen is not None else ():
            self._handlers[type(earlier)](call, earlier)
        return call

    # -- one small handler per event ---------------------------------------------------

    def _on_channel_opened(self, call: CallSnapshot, e: ChannelOpened) -> None:
        call.channels.add(e.uniqueid)
        if e.uniqueid == call.linkedid:
            if call.linkedid not in self._caller_uid:  # until our dialplan names its channel
                call.caller_channel = e.channel
            call.ddi = call.ddi or e.exten  # until our dialplan names the DDI
            self._set_caller(call, e.caller_number, e.caller_name)

    def _on_caller_identified(self, call: CallSnapshot, e: CallerIdentified) -> None:
        # Only the originating channel carries the caller; other legs show the DDI.
        if e.uniqueid == call.linkedid:
            self._set_caller(call, e.caller_number, e.caller_name)

    def _on_routed(self, call: CallSnapshot, e: CallRouted) -> None:
        call.ddi, call.scenario, call.forward_to = e.ddi, e.scenario, e.forward_to
        self._set_caller(call, e.caller_number, e.caller_name)
        if e.channel and e.uniqueid:
            call.caller_channel, self._caller_uid[call.linkedid] = e.channel, e.uniqueid
        if call.status is CallStatus.NOT_STARTED:
            call.status = CallStatus.WAITING

    def _on_dial_started(self, call: CallSnapshot, e: DialStarted) -> None:
        if not e.uniqueid:
            return  # an originate creating the call itself, not a leg of it
        dialled = (e.dial_string, e.dest_channel)
        number = next((n for n in (call.moved_to, call.forward_to) if _dials(dialled, n)), "")
        who = number or e.dest_interface
        self._legs[call.linkedid][e.dest_uniqueid] = _Leg(
            "forward" if number else "agent", who, dialled
        )
        call.legs_rung += 1
        if call.answered_at is None:
            call.status = CallStatus.FORWARDED if number else CallStatus.WAITING
        self._note_ringing(call)

    def _on_dial_ended(self, call: CallSnapshot, e: DialEnded) -> None:
        leg = self._legs[call.linkedid].get(e.dest_uniqueid)
        if leg is not None and not leg.ended:
            leg.ended = True
            self._note_ringing(call)
        if leg is None or e.status != "ANSWER" or call.answered_at is not None:
            return
        leg.answered = True
        self._answered(call, leg.via, leg.who)

    def _on_fell_back(self, call: CallSnapshot, e: CallFellBack) -> None:
        call.fell_back = True
        if call.answered_at is None:
            call.status = CallStatus.WAITING

    def _on_voicemail(self, call: CallSnapshot, e: VoicemailWaiting) -> None:
        if e.waiting:
            call.voicemail_left = True

    def _on_finished(self, call: CallSnapshot, e: CallFinished) -> None:
        self._finish_heard.add(call.linkedid)
        call.ddi = e.ddi or call.ddi
        if e.vm_status == "SUCCESS":
            call.voicemail_left = True
        if e.answered is not None and e.answered in _DIALPLAN_ANSWERED:
            self._answered_per_dialplan(call, e.answered, e.answered_by)
        elif e.dial_status == "ANSWER" and call.answered_at is None:
            # We missed the DialEnd (reconnect); the dialplan still knows who answered.
            number = "" if call.fell_back else call.moved_to or call.forward_to
            self._answered(call, "forward" if number else "agent", number)

    def _answered_per_dialplan(self, call: CallSnapshot, via: str, by: str) -> None:
        """The dialplan's CallEnd says who answered; it wins over our reading of the legs
        (a call moved to the mobile and answered there is `forward`, not an agent's)."""
        if not via:
            call.answered_at, call.answered_via, call.answered_by = None, "", ""
            return
        if call.answered_at is None:
            call.answered_at = self._clock()
        if via != call.answered_via:  # the leg we credited was not the one that answered
            number = call.moved_to or call.forward_to
            call.answered_by = number if via == "forward" else ""
        call.answered_via = via
        call.answered_by = by or call.answered_by

    def _on_channel_closed(self, call: CallSnapshot, e: ChannelClosed) -> None:
        call.channels.discard(e.uniqueid)
        leg = self._legs[call.linkedid].get(e.uniqueid)
        if leg is not None and not leg.ended:  # its DialEnd was lost
            leg.ended = True
            self._note_ringing(call)
        if call.linkedid in self._unlisted:
            self._closed_unlisted.setdefault(call.linkedid, set()).add(e.uniqueid)
        elif not call.channels:
            call.ended_at = self._clock()

    # -- helpers -----------------------------------------------------------------------

    def _note_ringing(self, call: CallSnapshot) -> None:
        """The agents' interfaces ringing now (a leg re-dialled by the queue counts once)."""
        legs = self._legs[call.linkedid].values()
        ringing = (leg.who for leg in legs if leg.via == "agent" and leg.who and not leg.ended)
        call.ringing = tuple(dict.fromkeys(ringing))

    def _answered(self, call: CallSnapshot, via: str, who: str) -> None:
        call.answered_at = self._clock()
        call.answered_via, call.answered_by = via, who
        call.status = CallStatus.FORWARDED if via == "forward" else CallStatus.IN_PROGRESS

    @staticmethod
    def _set_caller(call: CallSnapshot, number: str, name: str) -> None:
        if number not in _UNKNOWN_CALLER:
            call.caller_number = number
        if name not in _UNKNOWN_CALLER:
            call.caller_name = name

    def _finish(self, call: CallSnapshot, end_seen: bool = True) -> None:
        if call.answered_via == "agent":
            call.outcome, call.status = CallOutcome.ANSWERED, CallStatus.ANSWERED
        elif call.answered_via == "forward":
            call.outcome, call.status = CallOutcome.FORWARDED, CallStatus.FORWARDED
        elif call.voicemail_left:
            call.outcome, call.status = CallOutcome.VOICEMAIL, CallStatus.NOT_ANSWERED
        elif end_seen:
            call.outcome, call.status = CallOutcome.ABANDONED, CallStatus.LOST
        else:  # never alert on a call whose end we did not see: it may well have been taken
            call.outcome, call.status = CallOutcome.UNKNOWN, CallStatus.UNKNOWN
        call.ringing = ()
        del self.calls[call.linkedid]
        del self._legs[call.linkedid]
        self._caller_uid.pop(call.linkedid, None)
        self._touched.pop(call.linkedid, None)
        self._unlisted.discard(call.linkedid)
        self._closed_unlisted.pop(call.linkedid, None)
        self._finish_heard.discard(call.linkedid)
        self._ended[call.linkedid] = None
        if len(self._ended) > _RECENTLY_ENDED:
            self._ended.popitem(last=False)
        self._emit(call)

    def _emit(self, call: CallSnapshot) -> None:
        snapshot = copy.copy(call)
        snapshot.channels = set()
        self._listener(snapshot)

    def _end_unseen(self, call: CallSnapshot) -> None:
        call.ended_at = self._clock()
        self._finish(call, end_seen=False)

    def expire(self, max_idle: float) -> int:
        """End calls silent for max_idle seconds (their hangups were lost in a disconnect)."""
        cutoff = self._clock() - max_idle
        stale = [lid for lid, at in self._touched.items() if at < cutoff]
        for linkedid in stale:
            self._end_unseen(self.calls[linkedid])
        return len(stale)

    # -- "Forward calls to me" and reconciliation --------------------------------------

    def moved(self, linkedid: str, number: str) -> None:
        """A ringing call was redirected to `number` (the subscriber's mobile): the leg
        that dials it is the forward, whether its DialBegin came before this or after."""
        call = self.calls.get(linkedid)
        if call is None or not number:
            return
        before = call.status
        call.moved_to, call.fell_back = number, False
        for leg in self._legs[linkedid].values():
            if _dials(leg.dialled, number):
                leg.via, leg.who = "forward", number
                if leg.answered:  # its answer came in before we were told of the move
                    call.answered_via, call.answered_by = "forward", number
        self._note_ringing(call)
        if call.answered_at is None or call.answered_via == "forward":
            call.status = CallStatus.FORWARDED
        if call.status is not before:
            self._emit(call)

    def restore(self, calls: Iterable[CallSnapshot]) -> int:
        """Track again calls a previous process (or leader) tracked and did not see end,
        as the database has them; their channels come from the next `reconcile`. Calls
        tracked or ended here already are left alone. Returns how many were taken."""
        taken = 0
        for snap in calls:
            if snap.linkedid in self.calls or snap.linkedid in self._ended:
                continue
            call = self.calls[snap.linkedid] = copy.copy(snap)
            call.channels = set()
            self._unlisted.add(snap.linkedid)
            self._legs[snap.linkedid] = {}
            self._touched[snap.linkedid] = self._clock()
            taken += 1
        return taken

    def forget_all(self) -> None:
        """Another gateway leads now: the calls are its to follow and to route."""
        self.calls.clear()
        self._legs.clear()
        self._caller_uid.clear()
        self._touched.clear()
        self._unlisted.clear()
        self._closed_unlisted.clear()
        self._finish_heard.clear()

    def unrouted(self) -> list[Unrouted]:
        """Channels opening calls not routed yet (no FrontdeskCall so far)."""
        return self.pending.unrouted()

    def channel_view(self) -> dict[str, frozenset[str]]:
        """The channels of every tracked call now; `reconcile` takes it as `before`."""
        return {lid: frozenset(call.channels) for lid, call in self.calls.items()}

    def reconcile(
        self,
        live: Mapping[str, Collection[LiveChannel]],
        before: ChannelView | None = None,
        ends: Mapping[str, CallFinished] | None = None,
    ) -> int:
        """Make the tracked calls agree with what the PBX lists (linkedid -> its channels);
        returns how many tracked calls were ended because the PBX no longer has them.

        `before` is `channel_view()` from just before the listing was asked for: calls
        that began since are left alone, and channel changes seen since are applied on top
        of the listing (its answer may come after events that are newer than it).
        `ends` is the dialplan's end journal: a gone call found there ended as it says.
        """
        before = self.channel_view() if before is None else before
        ended = 0
        for linkedid in [lid for lid in self.calls if lid in before]:
            call = self.calls[linkedid]
            self._unlisted.discard(linkedid)
            rows = live.get(linkedid, ())
            opened = call.channels - set(before[linkedid])
            closed = set(before[linkedid]) - call.channels
            closed |= self._closed_unlisted.pop(linkedid, set())
            channels = ({row.uniqueid for row in rows} | opened) - closed
            if not channels:
                end = (ends or {}).get(linkedid)
                if end is not None:  # its end was journalled: as good as seen
                    self._on_finished(call, end)
                if end is None and linkedid not in self._finish_heard:
                    log.info("call %s gone from the PBX, its end not journalled", linkedid)
                    self._end_unseen(call)
                else:  # or its hangups came after the journal was read, its end with them
                    call.ended_at = self._clock()
                    self._finish(call)
                ended += 1
                continue
            call.channels = channels
            caller = self._caller_uid.get(linkedid, linkedid)
            call.caller_channel = next(
                (row.channel for row in rows if row.uniqueid == caller),
                call.caller_channel if caller in opened else "",
            )
            self._touched[linkedid] = self._clock()
        return ended
