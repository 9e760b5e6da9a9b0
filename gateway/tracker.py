"""Call tracker: one CallSnapshot per Linkedid, from channel events to console status.

Every channel of a call (Local halves, queue legs, the forward leg) shares the Linkedid,
so the call ends when its last channel hangs up, and one call gives one outcome however
many legs rang. Our dialplan's UserEvents tell the DDI and scenario; the standard
events tell who answered. Pure and synchronous: it is on the AMI hot path.
"""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from collections.abc import Callable

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
    PbxEvent,
    VoicemailWaiting,
)

Listener = Callable[[CallSnapshot], None]
_UNKNOWN_CALLER = {"", "<unknown>"}
_RECENTLY_ENDED = 10_000


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


class CallTracker:
    def __init__(self, listener: Listener, clock: Callable[[], float] = time.time) -> None:
        self._listener = listener
        self._clock = clock
        self.calls: dict[str, CallSnapshot] = {}
        self._legs: dict[str, dict[str, str]] = {}  # linkedid -> dest uniqueid -> agent|forward
        self._touched: dict[str, float] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
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
        linkedid = event.linkedid
        if not linkedid or linkedid in self._ended:
            return  # late frames of an ended call (Cdr-era stragglers) change nothing
        call = self.calls.get(linkedid)
        if call is None:
            if not isinstance(event, ChannelOpened | CallRouted):
                return  # a call that began before we connected and that we cannot place
            call = self.calls[linkedid] = CallSnapshot(linkedid=linkedid, started_at=self._clock())
            self._legs[linkedid] = {}
        self._touched[linkedid] = self._clock()
        before = (call.status, call.ddi, call.caller_number)
        self._handlers[type(event)](call, event)
        if call.ended:
            self._finish(call)
        elif (call.status, call.ddi, call.caller_number) != before:
            self._emit(call)

    # -- one small handler per event ---------------------------------------------------

    def _on_channel_opened(self, call: CallSnapshot, e: ChannelOpened) -> None:
        call.channels.add(e.uniqueid)
        if e.uniqueid == call.linkedid:
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
        if call.status is CallStatus.NOT_STARTED:
            call.status = CallStatus.WAITING

    def _on_dial_started(self, call: CallSnapshot, e: DialStarted) -> None:
        if not e.uniqueid:
            return  # an originate creating the call itself, not a leg of it
        fwd = _digits(call.forward_to)
        is_forward = bool(fwd) and (fwd in _digits(e.dial_string) or fwd in _digits(e.dest_channel))
        self._legs[call.linkedid][e.dest_uniqueid] = "forward" if is_forward else "agent"
        call.legs_rung += 1
        if call.answered_at is None:
            call.status = CallStatus.FORWARDED if is_forward else CallStatus.WAITING

    def _on_dial_ended(self, call: CallSnapshot, e: DialEnded) -> None:
        leg = self._legs[call.linkedid].get(e.dest_uniqueid)
        if leg is None or e.status != "ANSWER" or call.answered_at is not None:
            return
        self._answered(call, leg, e.dest_uniqueid)

    def _on_fell_back(self, call: CallSnapshot, e: CallFellBack) -> None:
        call.fell_back = True
        if call.answered_at is None:
            call.status = CallStatus.WAITING

    def _on_voicemail(self, call: CallSnapshot, e: VoicemailWaiting) -> None:
        if e.waiting:
            call.voicemail_left = True

    def _on_finished(self, call: CallSnapshot, e: CallFinished) -> None:
        call.ddi = e.ddi or call.ddi
        if e.vm_status == "SUCCESS":
            call.voicemail_left = True
        if e.dial_status == "ANSWER" and call.answered_at is None:
            # We missed the DialEnd (reconnect); the dialplan still knows who answered.
            via = "forward" if call.scenario == "forward" and not call.fell_back else "agent"
            self._answered(call, via, "")

    def _on_channel_closed(self, call: CallSnapshot, e: ChannelClosed) -> None:
        call.channels.discard(e.uniqueid)
        if not call.channels:
            call.ended_at = self._clock()

    # -- helpers -----------------------------------------------------------------------

    def _answered(self, call: CallSnapshot, via: str, channel: str) -> None:
        call.answered_at = self._clock()
        call.answered_via, call.answered_by = via, channel
        call.status = CallStatus.FORWARDED if via == "forward" else CallStatus.IN_PROGRESS

    @staticmethod
    def _set_caller(call: CallSnapshot, number: str, name: str) -> None:
        if number not in _UNKNOWN_CALLER:
            call.caller_number = number
        if name not in _UNKNOWN_CALLER:
            call.caller_name = name

    def _finish(self, call: CallSnapshot) -> None:
        if call.answered_via == "agent":
            call.outcome, call.status = CallOutcome.ANSWERED, CallStatus.ANSWERED
        elif call.answered_via == "forward":
            call.outcome, call.status = CallOutcome.FORWARDED, CallStatus.FORWARDED
        elif call.voicemail_left:
            call.outcome, call.status = CallOutcome.VOICEMAIL, CallStatus.NOT_ANSWERED
        else:
            call.outcome, call.status = CallOutcome.ABANDONED, CallStatus.LOST
        del self.calls[call.linkedid]
        del self._legs[call.linkedid]
        self._touched.pop(call.linkedid, None)
        self._ended[call.linkedid] = None
        if len(self._ended) > _RECENTLY_ENDED:
            self._ended.popitem(last=False)
        self._emit(call)

    def _emit(self, call: CallSnapshot) -> None:
        snapshot = copy.copy(call)
        snapshot.channels = set()
        self._listener(snapshot)

    def expire(self, max_idle: float) -> int:
        """End calls silent for max_idle seconds (their hangups were lost in a disconnect)."""
        cutoff = self._clock() - max_idle
        stale = [lid for lid, at in self._touched.items() if at < cutoff]
        for linkedid in stale:
            call = self.calls[linkedid]
            call.ended_at = self._clock()
            self._finish(call)
        return len(stale)
