"""Putting calls through and listening in, below the bot: the button data, the typed AMI
actions, whom a call may be handed to, and the checks before the PBX is asked to move a
channel (gateway/staff/transfer.py, monitor.py) over a recording AMI double."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.control import callbacks
from gateway.pbx import actions
from gateway.pbx.actions import Pbx
from gateway.staff.rights import Staff
from gateway.staff.transfer import Transfers, may_receive
from models.db import Role, Subscriber, User
from models.events import CallSnapshot
from models.staff import Agent, Card, Presence, Team

LINKEDID = "1795339700.0"
CALLER_CHANNEL = "PJSIP/pstn-00000000"
AGENT_CHANNEL = "PJSIP/agent101-00000001"


# -- button data ------------------------------------------------------------------------------


def test_transfer_data_round_trips() -> None:
    for kind, target in (("m", 0), ("a", 17), ("e", 0)):
        data = callbacks.transfer_to(42, kind, target)
        assert len(data.encode()) <= 64
        assert callbacks.unpack_transfer_to(data) == (42, kind, target)


@pytest.mark.parametrize(
    "data",
    [
        None,
        "",
        "xf:",
        "xf:42",
        "xf:42:a:0",  # an agent target needs an id
        "xf:42:m:3",  # the mobile names none
        "xf:42:e:x",
        "xf:42:z:0",
        "xf:0:m:0",
        "xf:042:m:0",
        "xf:42:m:0:extra",
        "xf:99999999999:m:0",
        "xf:²:m:0",
        "cd:42:xfer",
    ],
)
def test_forged_transfer_data_reads_as_nothing(data: str | None) -> None:
    assert callbacks.unpack_transfer_to(data) is None


# -- the typed actions ------------------------------------------------------------------------


def test_spy_and_setvar_actions() -> None:
    assert actions.setvar("PJSIP/a-1", "FD_XFER_TO", "207") == {
        "Action": "Setvar",
        "Channel": "PJSIP/a-1",
        "Variable": "FD_XFER_TO",
        "Value": "207",
    }
    listen = actions.originate_spy("PJSIP/sup", AGENT_CHANNEL, whisper=False, caller_name="Anna")
    assert listen == {
        "Action": "Originate",
        "Channel": "PJSIP/sup",
        "Application": "ChanSpy",
        "Data": f"{AGENT_CHANNEL},qE",
        "CallerID": '"Anna" <>',
        "Async": "true",
    }
    whisper = actions.originate_spy("PJSIP/sup", AGENT_CHANNEL, whisper=True)
    assert whisper["Data"] == f"{AGENT_CHANNEL},qEw"


class Link:
    """An AMI link double: records every action; answers from `getvar` and `channels`."""

    def __init__(self, channels: list[tuple[str, str]], getvar: str = LINKEDID) -> None:
        self.sent: list[dict[str, str]] = []
        self.channels = channels  # (linkedid, channel name)
        self.getvar_value = getvar

    async def send_action(self, action: dict[str, str], timeout: float = 5.0) -> dict[str, str]:
        self.sent.append(action)
        if action["Action"] == "Getvar":
            return {"Response": "Success", "Value": self.getvar_value}
        return {"Response": "Success"}

    async def send_list_action(
        self, action: dict[str, str], timeout: float = 10.0
    ) -> list[dict[str, str]]:
        self.sent.append(action)
        return [
            {"Event": "CoreShowChannel", "Linkedid": lid, "Uniqueid": f"u{i}", "Channel": name}
            for i, (lid, name) in enumerate(self.channels)
        ]

    def names(self) -> list[str]:
        return [a["Action"] for a in self.sent]


async def test_member_channel_finds_the_agents_leg_of_that_call() -> None:
    link = Link(
        [
            (LINKEDID, CALLER_CHANNEL),
            (LINKEDID, "Local/agent7@agents-0000000a;2"),
            (LINKEDID, "Local/agent7@agents-0000000a;1"),
            ("other", "PJSIP/agent101-00000009"),
            (LINKEDID, "PJSIP/agent1010-00000004"),  # another member whose name extends it
        ]
    )
    pbx = Pbx(link)
    assert await pbx.member_channel(LINKEDID, "Local/agent7@agents") == (
        "Local/agent7@agents-0000000a;1"
    )
    assert await pbx.member_channel(LINKEDID, "PJSIP/agent101") is None


# -- whom to, and the checks before the PBX moves anything --------------------------------------


def test_may_receive_own_team_led_teams_or_anyone_for_directors() -> None:
    def target(team: int | None) -> Agent:
        agent = Agent(id=9, interface="PJSIP/9")
        agent.team_id = team
        return agent

    agent = Staff(agent_id=1, role=Role.AGENT, team_id=10)
    supervisor = Staff(agent_id=1, role=Role.SUPERVISOR, team_id=10, leads=frozenset({20}))
    director = Staff(agent_id=1, role=Role.DIRECTOR)
    assert may_receive(agent, target(10)) and not may_receive(agent, target(20))
    assert not may_receive(agent, target(None))
    assert may_receive(supervisor, target(10)) and may_receive(supervisor, target(20))
    assert not may_receive(supervisor, target(30))
    assert all(may_receive(director, target(t)) for t in (10, 20, None))


async def _desk(db: str) -> tuple[Agent, Agent, Card, Staff]:
    team = await Team.create(name="North")
    subscriber = await Subscriber.create(name="Dr P", mobile="+306944000001")
    anna_user = await User.create(name="Anna", role=Role.AGENT, telegram_chat_id=501)
    boris_user = await User.create(name="Boris", role=Role.AGENT, telegram_chat_id=502)
    anna = await Agent.create(
        user=anna_user, team=team, interface="PJSIP/agent101", presence=Presence.READY
    )
    boris = await Agent.create(
        user=boris_user, team=team, interface="PJSIP/agent102", presence=Presence.READY
    )
    card = await Card.create(
        agent=anna, linkedid=LINKEDID, subscriber=subscriber, caller_number="+30210", chat_id=501
    )
    card = await Card.get(id=card.id).select_related("agent__user", "subscriber")
    actor = Staff(agent_id=anna.id, role=Role.AGENT, team_id=team.id)
    await anna.fetch_related("user")
    await boris.fetch_related("user")
    return anna, boris, card, actor


def _answered(**changes: Any) -> CallSnapshot:
    call = CallSnapshot(linkedid=LINKEDID, started_at=0.0, caller_channel=CALLER_CHANNEL)
    call.answered_at = 1.0
    for name, value in changes.items():
        setattr(call, name, value)
    return call


async def test_an_agent_transfer_sends_the_guarded_actions_and_leaves_the_note(db: str) -> None:
    anna, boris, card, actor = await _desk(db)
    link = Link([(LINKEDID, CALLER_CHANNEL), (LINKEDID, AGENT_CHANNEL)])
    desk = Transfers(Pbx(link), {LINKEDID: _answered()}.get)
    answers = {"kind": "a", "target": boris.id, "name": "Boris"}
    outcome = await desk.put_through(501, anna, actor, card, answers, "VIP", "en")
    assert outcome.reply.text == "Put through to Boris."
    assert link.names() == ["CoreShowChannels", "Getvar", "Setvar", "Redirect"]
    assert link.sent[2]["Value"] == "PJSIP/agent102"
    assert (link.sent[3]["Context"], link.sent[3]["Exten"]) == ("frontdesk-transfer", "agent")
    made = await Card.get(agent_id=boris.id, linkedid=LINKEDID)
    assert (made.transfer_note, made.text, made.message_id) == ("VIP", "", None)
    [told] = outcome.tell
    assert told.chat_id == 502 and "VIP" in told.text and "Anna" in told.text


@pytest.mark.parametrize(
    ("call", "channels", "getvar", "sent"),
    [
        (None, [], LINKEDID, []),  # the call is over
        (_answered(answered_at=None), [], LINKEDID, []),  # still ringing: nobody to move from
        (_answered(), [(LINKEDID, CALLER_CHANNEL)], LINKEDID, ["CoreShowChannels"]),  # Anna left
        (  # after a PBX restart the name is another call's
            _answered(),
            [(LINKEDID, AGENT_CHANNEL)],
            "1795339999.5",
            ["CoreShowChannels", "Getvar"],
        ),
    ],
)
async def test_nothing_moves_unless_the_call_is_up_with_the_agent_on_it(
    db: str,
    call: CallSnapshot | None,
    channels: list[tuple[str, str]],
    getvar: str,
    sent: list[str],
) -> None:
    anna, boris, card, actor = await _desk(db)
    link = Link(channels, getvar)
    desk = Transfers(Pbx(link), {LINKEDID: call}.get if call else lambda _: None)
    answers = {"kind": "a", "target": boris.id, "name": "Boris"}
    outcome = await desk.put_through(501, anna, actor, card, answers, "VIP", "en")
    assert "not on the line" in outcome.reply.text
    assert link.names() == sent
    assert not await Card.filter(agent_id=boris.id).exists()


async def test_a_target_gone_offline_or_of_another_team_is_not_rung(db: str) -> None:
    anna, boris, card, actor = await _desk(db)
    link = Link([(LINKEDID, AGENT_CHANNEL)])
    desk = Transfers(Pbx(link), {LINKEDID: _answered()}.get, clock=lambda: datetime.now(UTC))
    boris.presence = Presence.SIGNED_OUT
    await boris.save()
    answers = {"kind": "a", "target": boris.id, "name": "Boris"}
    outcome = await desk.put_through(501, anna, actor, card, answers, "", "en")
    assert "not online" in outcome.reply.text
    other = await Team.create(name="South")
    boris.team, boris.presence = other, Presence.READY
    await boris.save()
    outcome = await desk.put_through(501, anna, actor, card, answers, "", "en")
    assert outcome.reply.refused
    assert link.sent == []
