"""Domain events: what happened on the PBX, in our words, free of AMI field names.

The AMI adapter (gateway/pbx/translate.py) is the only place that knows how these map to
AMI frames; everything downstream sees only these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class CallStatus(StrEnum):
    """The console's statuses: live ones first, then the final ones."""

    NOT_STARTED = "not_started"  # channel exists, dialplan has not routed it yet
    WAITING = "waiting"  # ringing agents / queued
    IN_PROGRESS = "in_progress"  # an agent is talking to the caller
    FORWARDED = "forwarded"  # ringing or connected to the subscriber's mobile
    ANSWERED = "answered"  # ended after an agent answered
    NOT_ANSWERED = "not_answered"  # ended unanswered, but a voicemail was left
    LOST = "lost"  # ended unanswered and no message: a missed call
    UNKNOWN = "unknown"  # ended unseen (PBX restart, hangup lost): how is not known
    SCHEDULED = "scheduled"  # a call back has been booked


class CallOutcome(StrEnum):
    ANSWERED = "answered"
    VOICEMAIL = "voicemail"
    FORWARDED = "forwarded"
    ABANDONED = "abandoned"
    UNKNOWN = "unknown"  # its end was never seen: nobody is told of a missed call


@dataclass(frozen=True, slots=True)
class ChannelOpened:
    linkedid: str
    uniqueid: str
    channel: str
    exten: str
    context: str
    caller_number: str
    caller_name: str


@dataclass(frozen=True, slots=True)
class CallerIdentified:
    linkedid: str
    uniqueid: str
    caller_number: str
    caller_name: str


@dataclass(frozen=True, slots=True)
class DialStarted:
    linkedid: str
    uniqueid: str  # the dialling channel; empty for an originate
    dest_uniqueid: str
    dest_channel: str
    dial_string: str
    dest_interface: str = ""  # dest_channel without its sequence: a queue member's interface


@dataclass(frozen=True, slots=True)
class DialEnded:
    linkedid: str
    uniqueid: str
    dest_uniqueid: str
    status: str  # ANSWER, NOANSWER, BUSY, CANCEL, CHANUNAVAIL, CONGESTION


@dataclass(frozen=True, slots=True)
class ChannelClosed:
    linkedid: str
    uniqueid: str
    cause: str


@dataclass(frozen=True, slots=True)
class CallRouted:
    """Our dialplan decided what to do with an inbound call on a DDI."""

    linkedid: str
    ddi: str
    scenario: str
    mailbox: str
    forward_to: str
    caller_number: str
    caller_name: str
    # The channel running our dialplan (what a Redirect must move): the trunk's channel,
    # or the ;2 half when the call comes in through a Local channel.
    channel: str = ""
    uniqueid: str = ""


@dataclass(frozen=True, slots=True)
class CallFellBack:
    linkedid: str
    ddi: str
    dial_status: str


@dataclass(frozen=True, slots=True)
class CallFinished:
    linkedid: str
    ddi: str
    scenario: str
    dial_status: str
    vm_status: str
    # Who answered, by the dialplan: "agent", "forward" or "" (nobody); None from a dialplan
    # too old to say. answered_by: the agent's member interface or the number dialled.
    answered: str | None = None
    answered_by: str = ""


@dataclass(frozen=True, slots=True)
class VoicemailWaiting:
    linkedid: str  # empty when Asterisk reports it outside a call
    mailbox: str
    waiting: bool
    new: int
    old: int


@dataclass(frozen=True, slots=True)
class LiveChannel:
    """One channel the PBX has right now (from a listing after an AMI login)."""

    linkedid: str
    uniqueid: str
    channel: str


PbxEvent = (
    ChannelOpened
    | CallerIdentified
    | DialStarted
    | DialEnded
    | ChannelClosed
    | CallRouted
    | CallFellBack
    | CallFinished
    | VoicemailWaiting
)


@dataclass(slots=True)
class CallSnapshot:
    """What the tracker knows about one call (one Linkedid) at a moment."""

    linkedid: str
    started_at: float
    ddi: str = ""
    scenario: str = ""
    caller_number: str = ""
    caller_name: str = ""
    forward_to: str = ""
    status: CallStatus = CallStatus.NOT_STARTED
    outcome: CallOutcome | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    answered_by: str = ""  # who picked up: the agent's queue member interface or a number
    answered_via: str = ""  # "agent" or "forward"
    legs_rung: int = 0
    fell_back: bool = False
    voicemail_left: bool = False
    channels: set[str] = field(default_factory=set)
    caller_channel: str = ""  # the caller's channel in our dialplan: what a Redirect moves
    moved_to: str = ""  # the mobile "Forward calls to me" moved this ringing call to
    # The agents' queue member interfaces whose legs ring now (dialled, not yet ended), in
    # the order they were dialled: what the screen-pop cards follow.
    ringing: tuple[str, ...] = ()

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


# -- queue members: the agents' presence as the PBX has it (not call events: no Linkedid) ----


@dataclass(frozen=True, slots=True)
class QueueMember:
    """One member of a queue as the PBX reports it (an event, or a QueueStatus row)."""

    queue: str
    interface: str  # what the PBX rings, e.g. Local/agent7@agents or PJSIP/207
    name: str = ""
    paused: bool = False
    reason: str = ""  # why paused ("" when not)
    dynamic: bool = True  # added at run time (QueueAdd); False: static, from queues.conf


@dataclass(frozen=True, slots=True)
class MemberAdded:
    member: QueueMember


@dataclass(frozen=True, slots=True)
class MemberRemoved:
    member: QueueMember


@dataclass(frozen=True, slots=True)
class MemberPaused:
    """Paused or unpaused (member.paused says which)."""

    member: QueueMember


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """The member's device or call state changed; it is still a member, paused or not."""

    member: QueueMember


MemberEvent = MemberAdded | MemberRemoved | MemberPaused | MemberStatus
MEMBER_EVENTS = (MemberAdded, MemberRemoved, MemberPaused, MemberStatus)
