"""Calls taken back from the database after a crash or a takeover (CallTracker.restore)."""

from __future__ import annotations

from gateway.calls.tracker import CallTracker
from models.events import (
    CallFinished,
    CallOutcome,
    CallSnapshot,
    CallStatus,
    ChannelClosed,
    LiveChannel,
)

LID = "1795339700.1"


def restored() -> tuple[CallTracker, list[CallSnapshot]]:
    seen: list[CallSnapshot] = []
    tracker = CallTracker(seen.append, clock=lambda: 1_795_339_800.0)
    snap = CallSnapshot(linkedid=LID, started_at=1_795_339_700.0, ddi="2100001")
    snap.status = CallStatus.WAITING
    assert tracker.restore([snap]) == 1
    return tracker, seen


def closed(uniqueid: str) -> ChannelClosed:
    return ChannelClosed(linkedid=LID, uniqueid=uniqueid, cause="16")


def test_a_hangup_before_the_listing_does_not_end_a_restored_call_half_known() -> None:
    tracker, seen = restored()
    tracker.handle(closed("1795339700.2"))  # an agent leg: the caller's channel lives on
    assert LID in tracker.calls and seen == []


def test_channels_closed_while_the_listing_was_on_its_way_are_not_brought_back() -> None:
    """The listing was asked before the hangups and answered after them: it still names
    the channels. The call ends (by its journalled end), not waits for hangups gone by."""
    tracker, seen = restored()
    before = tracker.channel_view()
    for uid in (LID, "1795339700.2"):
        tracker.handle(closed(uid))
    live = {LID: [LiveChannel(LID, LID, "PJSIP/trunk-1"), LiveChannel(LID, "1795339700.2", "x")]}
    end = CallFinished(LID, "2100001", "", "NOANSWER", "", answered="", answered_by="")
    assert tracker.reconcile(live, before, {LID: end}) == 1
    [last] = seen
    assert last.outcome is CallOutcome.ABANDONED and not tracker.calls


def test_a_call_whose_hangups_and_end_came_after_the_journal_was_read_ended_as_seen() -> None:
    """The listing and the journal were read before the call ended; its hangups and the
    dialplan's end came before they were applied. Its end was seen: alerted, not unknown."""
    tracker, seen = restored()
    before = tracker.channel_view()
    live = {LID: [LiveChannel(LID, LID, "PJSIP/trunk-1"), LiveChannel(LID, "1795339700.2", "x")]}
    journal: dict[str, CallFinished] = {}  # read before the end was written
    tracker.handle(closed("1795339700.2"))
    tracker.handle(CallFinished(LID, "2100001", "", "NOANSWER", "", answered="", answered_by=""))
    tracker.handle(closed(LID))
    assert tracker.reconcile(live, before, journal) == 1
    [last] = seen
    assert last.outcome is CallOutcome.ABANDONED and last.status is CallStatus.LOST


def test_a_call_gone_with_no_end_heard_nor_journalled_ends_unknown() -> None:
    tracker, seen = restored()
    assert tracker.reconcile({}, tracker.channel_view(), {}) == 1
    [last] = seen
    assert last.outcome is CallOutcome.UNKNOWN  # it may have been answered: no alert
