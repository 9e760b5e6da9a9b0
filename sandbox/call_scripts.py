"""The AMI event frames of realistic calls through our dialplan, for AmiServer.play().

Modelled on captures from a real Asterisk 22.10.1: the same events, header names and
header order, including the noise a consumer must ignore (Newexten, VarSet,
DeviceStateChange, queue events, Cdr). A caller arrives on the trunk as
PJSIP/pstn-0000000N in context from-pstn with the DDI as exten; every channel of the call
carries the caller channel's Uniqueid as Linkedid. Our dialplan adds three UserEvents:
FrontdeskCall (routing decided), FrontdeskFallback (forward/agents unanswered) and
FrontdeskCallEnd (from the hangup handler, just before the caller's Hangup; with
`answered_fields` it says who answered, as the current dialplan does).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Frame = dict[str, str]

QUEUE = "reception"
TRUNK = "pstn"
STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
CAUSE_TXT = {0: "Unknown", 16: "Normal Clearing", 26: "Answered elsewhere"}
_BRIDGE_NAMESPACE = uuid.UUID("6f3c2b1e-55a4-4f8e-9a0d-1c2b3a4d5e6f")

# Seconds the simulated calls spend in each phase (Cdr times and Uniqueid epochs follow).
RING_SECONDS = 6
TALK_SECONDS = 42
MESSAGE_SECONDS = 18
GREETING_SECONDS = 4


@dataclass
class _Channel:
    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    cid_num: str = "<unknown>"
    cid_name: str = "<unknown>"
    conn_num: str = "<unknown>"
    conn_name: str = "<unknown>"
    state: int = 0
    priority: int = 1

    def headers(self, prefix: str = "") -> Frame:
        """The channel snapshot every channel event carries, optionally as Dest*."""
        values = (
            ("Channel", self.name),
            ("ChannelState", str(self.state)),
            ("ChannelStateDesc", STATE_DESC[self.state]),
            ("CallerIDNum", self.cid_num),
            ("CallerIDName", self.cid_name),
            ("ConnectedLineNum", self.conn_num),
            ("ConnectedLineName", self.conn_name),
            ("Language", "en"),
            ("AccountCode", ""),
            ("Context", self.context),
            ("Exten", self.exten),
            ("Priority", str(self.priority)),
            ("Uniqueid", self.uniqueid),
            ("Linkedid", self.linkedid),
        )
        return {prefix + key: value for key, value in values}


def _clock(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


class _Call:
    """Accumulates the frames of one call; each method is one step of the dialplan."""

    def __init__(
        self, factory: CallFactory, ddi: str, caller_num: str, caller_name: str, mailbox: str
    ) -> None:
        self.factory = factory
        self.ddi = ddi
        self.mailbox = mailbox
        self.began = self.now = factory.clock
        self.answered = 0  # epoch the caller's channel was answered; 0 = never
        self.bridge = ""
        self.frames: list[Frame] = []
        self.caller = factory.new_channel(TRUNK, "from-pstn", ddi, self.now)
        self.caller.state = 4
        self.caller.cid_num, self.caller.cid_name = caller_num, caller_name
        self._priority = 0

    # -- primitives ------------------------------------------------------------------------

    def emit(
        self,
        event: str,
        cls: str,
        chan: _Channel | None = None,
        extra: Mapping[str, str] | None = None,
        dest: _Channel | None = None,
    ) -> None:
        frame: Frame = {"Event": event, "Privilege": f"{cls},all"}
        frame.update(chan.headers() if chan else {})
        frame.update(dest.headers("Dest") if dest else {})
        frame.update(extra or {})
        self.frames.append(frame)

    def app(self, application: str, data: str) -> None:
        """The caller's channel runs the next dialplan priority."""
        self._priority += 1
        self.caller.priority = self._priority
        extra = {"Extension": self.caller.exten, "Application": application, "AppData": data}
        self.emit("Newexten", "dialplan", self.caller, extra)

    def var(self, name: str, value: str, chan: _Channel | None = None) -> None:
        self.emit("VarSet", "dialplan", chan or self.caller, {"Variable": name, "Value": value})

    def device(self, device: str, state: str) -> None:
        self.frames.append(
            {
                "Event": "DeviceStateChange",
                "Privilege": "call,all",
                "Device": device,
                "State": state,
            }
        )

    def user_event(self, name: str, fields: Mapping[str, str]) -> None:
        self.app("UserEvent", ",".join([name, *(f"{k}: {v}" for k, v in fields.items())]))
        self.emit("UserEvent", "user", self.caller, {"UserEvent": name, **fields})

    def state(self, chan: _Channel, state: int) -> None:
        chan.state = state
        self.emit("Newstate", "call", chan)

    def hangup(self, chan: _Channel, cause: int) -> None:
        self.emit("Hangup", "call", chan, {"Cause": str(cause), "Cause-txt": CAUSE_TXT[cause]})

    def caller_hangs_up(self) -> None:
        """The far end sends BYE: Asterisk queues a hangup on the trunk channel."""
        self.emit("HangupRequest", "call", self.caller, {"Cause": "16"})

    def enter(self, context: str, exten: str) -> None:
        """The caller's channel goes on at priority 1 elsewhere (an AMI Redirect)."""
        self.caller.context, self.caller.exten, self._priority = context, exten, 0

    def answer_caller(self) -> None:
        if self.caller.state != 6:
            self.state(self.caller, 6)
            self.answered = self.now

    def bridge_event(self, event: str, members: int, chan: _Channel | None = None) -> None:
        frame: Frame = {
            "Event": event,
            "Privilege": "call,all",
            "BridgeUniqueid": self.bridge,
            "BridgeType": "basic",
            "BridgeTechnology": "simple_bridge",
            "BridgeCreator": "<unknown>",
            "BridgeName": "<unknown>",
            "BridgeNumChannels": str(members),
            "BridgeVideoSourceMode": "none",
        }
        self.frames.append({**frame, **(chan.headers() if chan else {})})

    def cdr(self, dest: _Channel | None, app: str, data: str, start: int, answer: int) -> None:
        """cdr_manager's record: 'UniqueID' spelt so, and no Linkedid."""
        c = self.caller
        extra = {
            "AccountCode": "",
            "Source": c.cid_num,
            "Destination": self.ddi,
            "DestinationContext": "from-pstn",
            "CallerID": f'"{c.cid_name}" <{c.cid_num}>',
            "Channel": c.name,
            "DestinationChannel": dest.name if dest else "",
            "LastApplication": app,
            "LastData": data,
            "StartTime": _clock(start),
            "AnswerTime": _clock(answer) if answer else "",
            "EndTime": _clock(self.now),
            "Duration": str(self.now - start),
            "BillableSeconds": str(self.now - answer if answer else 0),
            "Disposition": "ANSWERED" if answer else "NO ANSWER",
            "AMAFlags": "DOCUMENTATION",
            "UniqueID": c.uniqueid,
            "UserField": "",
        }
        self.emit("Cdr", "cdr", extra=extra)

    # -- dialplan steps --------------------------------------------------------------------

    def begin(self, scenario: str, forward_to: str = "") -> None:
        """The trunk call arrives, the dialplan looks up the DDI and announces the route."""
        c, ring = self.caller, str(self.factory.ring_time)
        self.emit("Newchannel", "call", c)
        self.device(f"PJSIP/{TRUNK}", "INUSE")
        self.app("NoOp", f'Inbound DDI {self.ddi} from "{c.cid_name}" <{c.cid_num}>')
        settings = {"DDI": self.ddi, "SCENARIO": scenario, "MAILBOX": self.mailbox}
        for name, value in {**settings, "RINGTIME": ring, "FWD": forward_to}.items():
            self.app("Set", f"{name}={value}")
            self.var(name, value)
        fields = {"DDI": self.ddi, "Scenario": scenario, "Mailbox": self.mailbox}
        self.user_event("FrontdeskCall", {**fields, "ForwardTo": forward_to, "RingTime": ring})

    def ring(self, endpoint: str, context: str, dialstring: str) -> _Channel:
        """Dial/Queue creates an outgoing leg and it starts ringing."""
        leg = self.factory.new_channel(endpoint, context, self.ddi, self.now, self.caller.uniqueid)
        self.emit("Newchannel", "call", leg)
        # app_dial presents the caller's exten as number and the caller as connected line.
        leg.cid_num, leg.cid_name = self.ddi, self.caller.cid_name
        leg.conn_num, leg.conn_name = self.caller.cid_num, self.caller.cid_name
        self.emit("DialBegin", "call", self.caller, {"DialString": dialstring}, dest=leg)
        self.state(leg, 5)
        self.emit("DialState", "call", self.caller, {"DialStatus": "RINGING"}, dest=leg)
        return leg

    def dial_end(self, leg: _Channel, status: str) -> None:
        self.emit("DialEnd", "call", self.caller, {"DialStatus": status}, dest=leg)

    def drop_leg(self, leg: _Channel, status: str, cause: int) -> None:
        self.dial_end(leg, status)
        self.hangup(leg, cause)

    def connect(self, leg: _Channel, number: str, name: str = "") -> None:
        """The leg answers and is bridged with the caller, who now sees who answered."""
        self.state(leg, 6)
        self.dial_end(leg, "ANSWER")
        self.answer_caller()
        self.caller.conn_num, self.caller.conn_name = number, name or number
        self.emit("NewConnectedLine", "call", self.caller)
        self.bridge = self.factory.new_bridge()
        self.bridge_event("BridgeCreate", 0)
        self.bridge_event("BridgeEnter", 1, leg)
        self.bridge_event("BridgeEnter", 2, self.caller)

    def talk(self, leg: _Channel, seconds: int) -> None:
        self.var("BRIDGEPEER", self.caller.name, leg)
        self.var("BRIDGEPEER", leg.name, self.caller)
        self.now += seconds

    def unbridge(self, leg: _Channel) -> None:
        """The caller hung up: the bridge dissolves and Asterisk hangs up the other leg."""
        self.bridge_event("BridgeLeave", 1, self.caller)
        self.emit("SoftHangupRequest", "call", leg, {"Cause": "16"})
        self.bridge_event("BridgeLeave", 0, leg)
        self.bridge_event("BridgeDestroy", 0)
        self.hangup(leg, 16)

    def voicemail(self, leave: bool, options: str = "u") -> str:
        """VoiceMail() answers; the caller leaves a message or hangs up during the greeting.

        Returns VMSTATUS: SUCCESS, or FAILED when the caller hangs up before the beep
        (app_voicemail's leave_voicemail returns -1 then; USEREXIT is only for '*'/'#').
        """
        data = f"{self.mailbox}@default,{options}"
        self.app("VoiceMail", data)
        self.answer_caller()
        start = self.now
        self.now += MESSAGE_SECONDS if leave else GREETING_SECONDS
        self.caller_hangs_up()
        self.cdr(None, "VoiceMail", data, start, start)  # Cdr before Hangup, as captured
        if leave:
            waiting = self.factory.new_message(self.mailbox)
            self.emit("MessageWaiting", "call", self.caller, waiting)
        status = "SUCCESS" if leave else "FAILED"
        self.var("VMSTATUS", status)
        return status

    def end(
        self,
        scenario: str,
        dial_status: str,
        vm_status: str,
        answered: str = "",
        answered_by: str = "",
    ) -> list[Frame]:
        """The hangup handler reports the outcome, then the caller's channel is gone."""
        self.caller.exten, self._priority = "h", 0
        fields = {"DDI": self.ddi, "Scenario": scenario, "DialStatus": dial_status}
        fields["VMStatus"] = vm_status
        if self.factory.answered_fields:
            fields.update({"Answered": answered, "AnsweredBy": answered_by})
        self.user_event("FrontdeskCallEnd", fields)
        self.caller.priority += 1
        self.hangup(self.caller, 16)
        self.device(f"PJSIP/{TRUNK}", "NOT_INUSE")
        self.factory.clock = self.now + 30  # the next call starts a little later
        return self.frames

    # -- queue -----------------------------------------------------------------------------

    def queue_ring(self, agents: Sequence[str]) -> list[_Channel]:
        self.app("Queue", f"{QUEUE},r,,,{self.factory.ring_time}")
        queued = {"Queue": QUEUE, "Position": "1", "Count": "1"}
        self.emit("QueueCallerJoin", "agent", self.caller, queued)
        legs = []
        for agent in agents:
            leg = self.ring(f"agent{agent}", "from-internal", f"agent{agent}")
            self.emit("AgentCalled", "agent", self.caller, _member(agent), dest=leg)
            self.device(f"PJSIP/agent{agent}", "RINGING")
            legs.append(leg)
        self.now += RING_SECONDS
        return legs

    def queue_connect(self, agents: Sequence[str], legs: list[_Channel], index: int) -> None:
        chosen = legs[index]
        for agent, leg in zip(agents, legs, strict=True):
            if leg is not chosen:  # ringall: the others stop, "answered elsewhere"
                self.drop_leg(leg, "CANCEL", 26)
                self.device(f"PJSIP/agent{agent}", "NOT_INUSE")
        self.connect(chosen, agents[index], _member(agents[index])["MemberName"])
        self.device(f"PJSIP/agent{agents[index]}", "INUSE")
        waited = {"HoldTime": str(RING_SECONDS), "RingTime": str(RING_SECONDS)}
        self.emit(
            "AgentConnect", "agent", self.caller, {**_member(agents[index]), **waited}, chosen
        )
        left = {"Queue": QUEUE, "Position": "1", "Count": "0"}
        self.emit("QueueCallerLeave", "agent", self.caller, left)


def _member(agent: str) -> Frame:
    return {"Queue": QUEUE, "Interface": f"PJSIP/agent{agent}", "MemberName": f"Agent {agent}"}


class CallFactory:
    """Builds call scripts; Uniqueids, channel names and bridges never repeat within one.

    Uniqueid is "<epoch>.<seq>" like Asterisk's: the epoch follows a simulated clock that
    starts at start_epoch, seq counts every channel created.
    """

    def __init__(
        self, start_epoch: int = 1795339700, ring_time: int = 20, answered_fields: bool = True
    ) -> None:
        self.ring_time = ring_time
        self.answered_fields = answered_fields  # False: a dialplan older than Answered(By)
        self.clock = start_epoch
        self._channels = 0  # the Uniqueid sequence
        self._pjsip = 0  # chan_pjsip's channel name suffix
        self._bridges = 0
        self._messages: dict[str, int] = {}  # mailbox -> new messages so far

    # -- ids -------------------------------------------------------------------------------

    def new_channel(
        self, endpoint: str, context: str, exten: str, epoch: int, linkedid: str = ""
    ) -> _Channel:
        uniqueid = f"{epoch}.{self._channels}"
        name = f"PJSIP/{endpoint}-{self._pjsip:08x}"
        self._channels += 1
        self._pjsip += 1
        return _Channel(name, uniqueid, linkedid or uniqueid, context, exten)

    def new_bridge(self) -> str:
        self._bridges += 1
        return str(uuid.uuid5(_BRIDGE_NAMESPACE, f"{self.clock}/{self._bridges}"))

    def new_message(self, mailbox: str) -> Frame:
        """MessageWaiting's fields after one more message lands in the mailbox."""
        self._messages[mailbox] = self._messages.get(mailbox, 0) + 1
        new = str(self._messages[mailbox])
        return {"Mailbox": f"{mailbox}@default", "Waiting": "1", "New": new, "Old": "0"}

    # -- scenarios -------------------------------------------------------------------------

    def agent_answered(
        self,
        ddi: str,
        caller_num: str,
        caller_name: str,
        agents: Sequence[str] = ("101",),
        answered_by_index: int = 0,
        talk: bool = True,
        mailbox: str = "1001",
    ) -> list[Frame]:
        """The queue rings every agent, one answers, the caller hangs up after talking
        (talk=False: right after the agent answers)."""
        call = _Call(self, ddi, caller_num, caller_name, mailbox)
        call.begin("agent")
        legs = call.queue_ring(agents)
        call.queue_connect(agents, legs, answered_by_index)
        chosen = legs[answered_by_index]
        call.talk(chosen, TALK_SECONDS if talk else 1)
        queue_data = f"{QUEUE},r,,,{self.ring_time}"
        return self._after_talk(
            call, chosen, "agent", "Queue", queue_data, agents[answered_by_index]
        )

    def missed(
        self,
        ddi: str,
        caller_num: str,
        caller_name: str,
        agents: Sequence[str] = ("101", "102"),
        mailbox: str = "1001",
    ) -> list[Frame]:
        """Every agent rings; the caller gives up before anyone answers."""
        call = _Call(self, ddi, caller_num, caller_name, mailbox)
        call.begin("agent")
        legs = call.queue_ring(agents)
        call.caller_hangs_up()
        held = {"Position": "1", "OriginalPosition": "1", "HoldTime": str(RING_SECONDS)}
        call.emit("QueueCallerAbandon", "agent", call.caller, {"Queue": QUEUE, **held})
        for agent, leg in zip(agents, legs, strict=True):
            call.drop_leg(leg, "CANCEL", 0)
            call.device(f"PJSIP/agent{agent}", "NOT_INUSE")
        call.cdr(legs[0], "Queue", f"{QUEUE},r,,,{self.ring_time}", call.began, 0)
        return call.end("agent", "CANCEL", "")

    def voicemail_left(
        self, ddi: str, caller_num: str, caller_name: str, mailbox: str = "1001"
    ) -> list[Frame]:
        """Straight to voicemail; the caller leaves a message."""
        call = _Call(self, ddi, caller_num, caller_name, mailbox)
        call.begin("voicemail")
        return call.end("voicemail", "", call.voicemail(leave=True))

    def forward_no_answer(
        self,
        ddi: str,
        caller_num: str,
        caller_name: str,
        forward_to: str,
        then: Literal["hangup", "voicemail"] = "hangup",
        mailbox: str = "1001",
    ) -> list[Frame]:
        """The mobile rings out (NOANSWER), the call falls back to voicemail, where the
        caller hangs up during the greeting (VMStatus FAILED) or leaves a message."""
        if then not in ("hangup", "voicemail"):
            raise ValueError(f"then must be 'hangup' or 'voicemail', not {then!r}")
        call = _Call(self, ddi, caller_num, caller_name, mailbox)
        call.begin("forward", forward_to)
        leg = self._ring_forward(call, forward_to)
        call.now += self.ring_time - RING_SECONDS
        call.drop_leg(leg, "NOANSWER", 0)
        call.var("DIALSTATUS", "NOANSWER")
        call.cdr(leg, "Dial", f"PJSIP/{TRUNK}/{forward_to},{self.ring_time}", call.began, 0)
        fallback = {"DDI": ddi, "DialStatus": "NOANSWER", "Mailbox": mailbox}
        call.user_event("FrontdeskFallback", fallback)
        return call.end("forward", "NOANSWER", call.voicemail(leave=then == "voicemail"))

    def moved_answered(
        self,
        ddi: str,
        caller_num: str,
        caller_name: str,
        mobile: str,
        agents: Sequence[str] = ("101", "102"),
        mailbox: str = "1001",
    ) -> tuple[list[Frame], list[Frame]]:
        """The agents ring; "Forward calls to me" redirects the caller to [frontdesk-moved],
        which dials the mobile; it answers, they talk, the caller hangs up. Returns the
        frames before the Redirect and those after it."""
        call = _Call(self, ddi, caller_num, caller_name, mailbox)
        call.begin("agent")
        legs = call.queue_ring(agents)
        before = len(call.frames)
        # The Redirect pulls the caller out of Queue(): the agents stop ringing.
        left = {"Queue": QUEUE, "Position": "1", "Count": "0"}
        call.emit("QueueCallerLeave", "agent", call.caller, left)
        for agent, leg in zip(agents, legs, strict=True):
            call.drop_leg(leg, "CANCEL", 0)
            call.device(f"PJSIP/agent{agent}", "NOT_INUSE")
        call.enter("frontdesk-moved", mobile)
        leg = self._ring_forward(call, mobile)
        call.connect(leg, mobile)
        call.talk(leg, TALK_SECONDS)
        dial_data = f"PJSIP/{TRUNK}/{mobile},{self.ring_time}"
        frames = self._after_talk(call, leg, "agent", "Dial", dial_data, answered_by=mobile)
        return frames[:before], frames[before:]

    def forward_answered(
        self, ddi: str, caller_num: str, caller_name: str, forward_to: str, mailbox: str = "1001"
    ) -> list[Frame]:
        """The mobile answers; they talk; the caller hangs up."""
        call = _Call(self, ddi, caller_num, caller_name, mailbox)
        call.begin("forward", forward_to)
        leg = self._ring_forward(call, forward_to)
        call.connect(leg, forward_to)
        call.talk(leg, TALK_SECONDS)
        dial_data = f"PJSIP/{TRUNK}/{forward_to},{self.ring_time}"
        return self._after_talk(call, leg, "forward", "Dial", dial_data, answered_by=forward_to)

    def closed(
        self, ddi: str, caller_num: str, caller_name: str, mailbox: str = "1001"
    ) -> list[Frame]:
        """Out of hours: the announcement plays, then voicemail; the caller hangs up
        without leaving a message."""
        call = _Call(self, ddi, caller_num, caller_name, mailbox)
        call.begin("closed")
        call.app("Answer", "")
        call.answer_caller()
        call.app("Playback", "custom/closed")
        call.now += GREETING_SECONDS
        call.var("PLAYBACKSTATUS", "SUCCESS")
        return call.end("closed", "", call.voicemail(leave=False, options="s"))

    # -- shared tails ----------------------------------------------------------------------

    def _ring_forward(self, call: _Call, forward_to: str) -> _Channel:
        call.app("Dial", f"PJSIP/{TRUNK}/{forward_to},{self.ring_time}")
        leg = call.ring(TRUNK, "from-pstn", f"{TRUNK}/{forward_to}")
        call.now += RING_SECONDS
        return leg

    def _after_talk(
        self,
        call: _Call,
        leg: _Channel,
        scenario: str,
        app: str,
        data: str,
        agent: str = "",
        answered_by: str = "",
    ) -> list[Frame]:
        """The caller hangs up a bridged call; Cdr before the caller's Hangup. An agent
        answered, or else the number `answered_by` (forward or moved)."""
        call.caller_hangs_up()
        call.unbridge(leg)
        if agent:
            talked = {"HoldTime": str(RING_SECONDS), "TalkTime": str(call.now - call.answered)}
            done = {**_member(agent), **talked, "Reason": "caller"}
            call.emit("AgentComplete", "agent", call.caller, done, leg)
            call.device(f"PJSIP/agent{agent}", "NOT_INUSE")
        call.var("DIALSTATUS", "ANSWER")
        call.cdr(leg, app, data, call.began, call.answered)
        if agent:
            return call.end(scenario, "ANSWER", "", "agent", _member(agent)["Interface"])
        return call.end(scenario, "ANSWER", "", "forward", answered_by)
