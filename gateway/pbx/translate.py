"""The one table from AMI frames to domain events. AMI field names stop here.

Each translator reads a frame and returns a domain event, or None for a frame that
carries nothing for us. `EVENT_NAMES` is what the wire parser keeps; everything else is
dropped before decoding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from gateway.pbx.wire import Frame
from models.events import (
    CallerIdentified,
    CallFellBack,
    CallFinished,
    CallRouted,
    ChannelClosed,
    ChannelOpened,
    DialEnded,
    DialStarted,
    LiveChannel,
    MemberAdded,
    MemberEvent,
    MemberPaused,
    MemberRemoved,
    MemberStatus,
    PbxEvent,
    QueueMember,
    VoicemailWaiting,
)

Translator = Callable[[Frame], PbxEvent | None]

# Asterisk names a channel <tech>/<resource>-<8 hex digits>, plus ;1/;2 for Local halves.
_CHANNEL_SEQUENCE = re.compile(r"-[0-9a-fA-F]+(;[12])?$")


def member_interface(channel: str) -> str:
    """The queue member interface behind an agent's leg: the channel name without its
    sequence ('Local/agent7@agents-0000001a;1' -> 'Local/agent7@agents')."""
    return _CHANNEL_SEQUENCE.sub("", channel)


def _linkedid(f: Frame) -> str:
    # DialBegin/DialEnd from an originate have no source channel, only Dest* headers.
    return f.get("Linkedid") or f.get("DestLinkedid", "")


def _channel_opened(f: Frame) -> ChannelOpened:
    return ChannelOpened(
        linkedid=f.get("Linkedid", ""),
        uniqueid=f.get("Uniqueid", ""),
        channel=f.get("Channel", ""),
        exten=f.get("Exten", ""),
        context=f.get("Context", ""),
        caller_number=f.get("CallerIDNum", ""),
        caller_name=f.get("CallerIDName", ""),
    )


def _caller_identified(f: Frame) -> CallerIdentified:
    return CallerIdentified(
        linkedid=f.get("Linkedid", ""),
        uniqueid=f.get("Uniqueid", ""),
        caller_number=f.get("CallerIDNum", ""),
        caller_name=f.get("CallerIDName", ""),
    )


def _dial_started(f: Frame) -> DialStarted:
    dest_channel = f.get("DestChannel", "")
    return DialStarted(
        linkedid=_linkedid(f),
        uniqueid=f.get("Uniqueid", ""),
        dest_uniqueid=f.get("DestUniqueid", ""),
        dest_channel=dest_channel,
        dial_string=f.get("DialString", ""),
        dest_interface=member_interface(dest_channel),
    )


def _dial_ended(f: Frame) -> DialEnded:
    return DialEnded(
        linkedid=_linkedid(f),
        uniqueid=f.get("Uniqueid", ""),
        dest_uniqueid=f.get("DestUniqueid", ""),
        status=f.get("DialStatus", ""),
    )


def _channel_closed(f: Frame) -> ChannelClosed:
    return ChannelClosed(
        linkedid=f.get("Linkedid", ""), uniqueid=f.get("Uniqueid", ""), cause=f.get("Cause", "")
    )


def _message_waiting(f: Frame) -> VoicemailWaiting:
    return VoicemailWaiting(
        linkedid=f.get("Linkedid", ""),
        mailbox=f.get("Mailbox", ""),
        waiting=f.get("Waiting", "0") not in {"0", "no", "No", ""},
        new=_int(f.get("New", "0")),
        old=_int(f.get("Old", "0")),
    )


def _queue_member(f: Frame) -> QueueMember:
    """A QueueMember* event, or a QueueStatus QueueMember row (which names the interface
    `Location` and the member `Name`)."""
    return QueueMember(
        queue=f.get("Queue", ""),
        interface=f.get("Interface") or f.get("Location", ""),
        name=f.get("MemberName") or f.get("Name", ""),
        paused=f.get("Paused", "0").lower() in {"1", "true", "yes"},
        reason=f.get("PausedReason", ""),
        dynamic=f.get("Membership", "dynamic") != "static",
    )


def queue_members(rows: Iterable[Frame]) -> list[QueueMember]:
    """The QueueMember rows of a QueueStatus list (QueueParams and QueueEntry rows skipped)."""
    return [_queue_member(f) for f in rows if f.get("Event") == "QueueMember"]


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _user_event_table(prefix: str) -> dict[str, Translator]:
    """Our dialplan's UserEvents; the prefix is configurable (ami.userevent_prefix)."""

    def routed(f: Frame) -> CallRouted:
        return CallRouted(
            linkedid=f.get("Linkedid", ""),
            ddi=f.get("DDI", ""),
            scenario=f.get("Scenario", ""),
            mailbox=f.get("Mailbox", ""),
            forward_to=f.get("ForwardTo", ""),
            caller_number=f.get("CallerIDNum", ""),
            caller_name=f.get("CallerIDName", ""),
            channel=f.get("Channel", ""),
            uniqueid=f.get("Uniqueid", ""),
        )

    def fell_back(f: Frame) -> CallFellBack:
        return CallFellBack(
            linkedid=f.get("Linkedid", ""),
            ddi=f.get("DDI", ""),
            dial_status=f.get("DialStatus", ""),
        )

    def finished(f: Frame) -> CallFinished:
        return CallFinished(
            linkedid=f.get("Linkedid", ""),
            ddi=f.get("DDI", ""),
            scenario=f.get("Scenario", ""),
            dial_status=f.get("DialStatus", ""),
            vm_status=f.get("VMStatus", ""),
            answered=f.get("Answered"),  # absent (None) from dialplans older than the field
            answered_by=f.get("AnsweredBy", ""),
        )

    return {f"{prefix}Call": routed, f"{prefix}Fallback": fell_back, f"{prefix}CallEnd": finished}


def live_calls(rows: Iterable[Frame]) -> dict[str, list[LiveChannel]]:
    """CoreShowChannel list items, grouped by call (Linkedid)."""
    calls: dict[str, list[LiveChannel]] = {}
    for f in rows:
        if f.get("Event") != "CoreShowChannel" or not f.get("Linkedid"):
            continue
        channel = LiveChannel(
            linkedid=f["Linkedid"], uniqueid=f.get("Uniqueid", ""), channel=f.get("Channel", "")
        )
        calls.setdefault(channel.linkedid, []).append(channel)
    return calls


class AmiTranslator:
    """Frame -> domain event, by the frame's Event name (and UserEvent name)."""

    def __init__(self, userevent_prefix: str = "Frontdesk") -> None:
        self._table: dict[str, Translator] = {
            "Newchannel": _channel_opened,
            "NewCallerid": _caller_identified,
            "DialBegin": _dial_started,
            "DialEnd": _dial_ended,
            "Hangup": _channel_closed,
            "MessageWaiting": _message_waiting,
        }
        # Queue members: agents' presence, not calls (no Linkedid): `member_event`.
        self._members: dict[str, Callable[[Frame], MemberEvent]] = {
            "QueueMemberAdded": lambda f: MemberAdded(_queue_member(f)),
            "QueueMemberRemoved": lambda f: MemberRemoved(_queue_member(f)),
            "QueueMemberPause": lambda f: MemberPaused(_queue_member(f)),
            "QueueMemberStatus": lambda f: MemberStatus(_queue_member(f)),
        }
        self._user_events = _user_event_table(userevent_prefix)

    @property
    def event_names(self) -> frozenset[str]:
        return frozenset([*self._table, *self._members, "UserEvent"])

    def translate(self, frame: Frame) -> PbxEvent | None:
        name = frame.get("Event", "")
        if name == "UserEvent":
            user = self._user_events.get(frame.get("UserEvent", ""))
            return user(frame) if user is not None else None
        translator = self._table.get(name)
        return translator(frame) if translator is not None else None

    def member_event(self, frame: Frame) -> MemberEvent | None:
        """A QueueMember* frame as a presence event; None for any other frame."""
        translator = self._members.get(frame.get("Event", ""))
        return translator(frame) if translator is not None else None
