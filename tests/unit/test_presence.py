"""Agents' presence on the database, with the PBX a recording double behind the real `Pbx`:
the Queue actions sent, the state written only after the PBX accepted, PresenceSpans,
rights (agent / supervisor / director), PBX events and the QueueStatus sync, the AMI
translation of QueueMember* frames, staff link codes and the pause buttons' data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.control import admin, callbacks
from gateway.pbx.actions import Pbx, queue_add, queue_pause, queue_remove, queue_status
from gateway.pbx.errors import PbxUnavailable
from gateway.pbx.translate import AmiTranslator, queue_members
from gateway.staff import people
from gateway.staff.presence import (
    NOT_SIGNED_IN,
    PAUSED,
    SIGNED_IN,
    SIGNED_OUT,
    UNREACHABLE,
    WHY,
    PresenceDesk,
)
from gateway.staff.rights import Act
from locales import tr
from models.db import AuditEntry, User
from models.events import (
    MemberAdded,
    MemberPaused,
    MemberRemoved,
    MemberStatus,
    QueueMember,
)
from models.staff import Agent, Presence, PresenceSpan

Frame = dict[str, str]
QUEUE = "frontdesk-agents"


class Link:
    """An AMI link double answering as Asterisk 22 does to the Queue actions."""

    def __init__(self) -> None:
        self.sent: list[Frame] = []
        self.members: dict[str, Frame] = {}
        self.down = False

    async def send_action(self, action: Frame, timeout: float = 5.0) -> Frame:
        self.sent.append(action)
        if self.down:
            raise PbxUnavailable("AMI not connected")
        name, interface = action["Action"], action.get("Interface", "")
        if name == "QueueAdd":
            if interface in self.members:
                return {"Response": "Error", "Message": "Unable to add interface: Already there"}
            self.members[interface] = {"Name": action["MemberName"], "Paused": "0"}
            return {"Response": "Success", "Message": "Added interface to queue"}
        if name == "QueueRemove":
            if self.members.pop(interface, None) is None:
                return {"Response": "Error", "Message": "Unable to remove interface: Not there"}
            return {"Response": "Success", "Message": "Removed interface from queue"}
        if name == "QueuePause":
            if interface not in self.members:
                return {"Response": "Error", "Message": "Interface not found"}
            paused = action["Paused"] == "true"
            self.members[interface].update(
                Paused="1" if paused else "0", PausedReason=action.get("Reason", "")
            )
            return {"Response": "Success", "Message": "Interface paused successfully"}
        return {"Response": "Error", "Message": "unexpected"}

    async def send_list_action(self, action: Frame, timeout: float = 10.0) -> list[Frame]:
        self.sent.append(action)
        if self.down:
            raise PbxUnavailable("AMI not connected")
        assert action["Action"] == "QueueStatus"
        return [
            {"Event": "QueueParams", "Queue": QUEUE},
            *(
                {
                    "Event": "QueueMember",
                    "Queue": QUEUE,
                    "Location": i,
                    "Membership": "dynamic",
                    **m,
                }
                for i, m in self.members.items()
            ),
        ]

    def actions(self) -> list[Frame]:
        return [a for a in self.sent if a["Action"] != "QueueStatus"]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)


class Desk:
    """Two teams: A led by supervisor Sofia (chat 20), with agents Maria (10) and Nikos
    (11); B with agent Eleni (12); director Dimitra (30)."""

    def __init__(self) -> None:
        self.link = Link()
        self.clock = Clock()
        self.desk = PresenceDesk(Pbx(self.link), "UTC", clock=self.clock)

    async def setup(self) -> Desk:
        sofia = await self.staff("Sofia", "supervisor", None, "PJSIP/200", 20)
        team_a = await people.add_team("A", sofia.id)
        team_b = await people.add_team("B")
        await Agent.filter(id=sofia.id).update(team_id=team_a.id)
        self.maria = await self.staff("Maria", "agent", "A", "Local/maria@agents", 10)
        self.nikos = await self.staff("Nikos", "agent", "A", "Local/nikos@agents", 11)
        self.eleni = await self.staff("Eleni", "agent", team_b.name, "Local/eleni@agents", 12)
        self.dimitra = await self.staff("Dimitra", "director", None, None, 30)
        self.sofia = sofia
        return self

    async def staff(
        self, name: str, role: str, team: str | None, interface: str | None, chat: int
    ) -> Agent:
        made = await people.add_staff(name=name, role=role, team=team, interface=interface)
        assert await people.redeem(made.link_code, chat, "en") is not None
        return made.agent

    @staticmethod
    async def state(agent: Agent) -> tuple[Presence, str]:
        row = await Agent.get(id=agent.id)
        return row.presence, row.pause_reason


@pytest.fixture
async def d(db: str) -> Desk:
    return await Desk().setup()


async def test_sign_in_pause_resume_sign_out_send_the_queue_actions_then_record(d: Desk) -> None:
    reply = await d.desk.command(10, Act.SIGN_IN, "")
    assert reply.text == tr("en", SIGNED_IN, agent="Maria")
    assert d.link.actions() == [queue_add(QUEUE, "Local/maria@agents", "Maria")]
    assert d.link.actions()[0] == {
        "Action": "QueueAdd",
        "Queue": QUEUE,
        "Interface": "Local/maria@agents",
        "MemberName": "Maria",
        "Paused": "false",
    }
    assert await d.state(d.maria) == (Presence.READY, "")

    d.clock.tick(30)
    reply = await d.desk.command(10, Act.PAUSE, "doctor's appointment")
    assert reply.text == tr("en", PAUSED, agent="Maria", reason="doctor's appointment")
    assert d.link.actions()[-1] == {
        "Action": "QueuePause",
        "Queue": QUEUE,
        "Interface": "Local/maria@agents",
        "Paused": "true",
        "Reason": "doctor's appointment",
    }
    assert await d.state(d.maria) == (Presence.PAUSED, "doctor's appointment")

    d.clock.tick(15)
    await d.desk.resume(10, "")
    assert d.link.actions()[-1] == queue_pause(QUEUE, "Local/maria@agents", False)
    assert "Reason" not in d.link.actions()[-1]
    d.clock.tick(45)
    reply = await d.desk.command(10, Act.SIGN_OUT, "")
    assert reply.text == tr("en", SIGNED_OUT, agent="Maria")
    assert d.link.actions()[-1] == queue_remove(QUEUE, "Local/maria@agents")
    assert await d.state(d.maria) == (Presence.SIGNED_OUT, "")

    spans = await PresenceSpan.filter(agent_id=d.maria.id).order_by("id")
    minutes = [
        (s.presence, s.reason, (s.ended_at - s.started_at).seconds // 60)  # type: ignore[operator]
        for s in spans
    ]
    assert minutes == [
        (Presence.READY, "", 30),
        (Presence.PAUSED, "doctor's appointment", 15),
        (Presence.READY, "", 45),
    ]
    results = await AuditEntry.filter(actor="10").values_list("command", "result")
    assert results == [
        ("/signin", "done"),
        ("/pause doctor's appointment", "done"),
        ("/resume", "done"),
        ("/signout", "done"),
    ]


async def test_pause_without_a_reason_offers_the_reasons_and_sends_nothing(d: Desk) -> None:
    await d.desk.command(10, Act.SIGN_IN, "")
    reply = await d.desk.command(10, Act.PAUSE, "")
    assert reply.text == tr("en", WHY)
    data = [b[1] for row in reply.buttons for b in row]
    assert data == [
        callbacks.pause(d.maria.id, k) for k in ("break", "lunch", "meeting", "training")
    ]
    assert len(d.link.actions()) == 1  # only the QueueAdd

    pressed = await d.desk.pause_button(10, callbacks.pause(d.maria.id, "lunch"), "el")
    assert pressed.text == tr("en", PAUSED, agent="Maria", reason="Lunch")  # her own language
    assert d.link.actions()[-1]["Reason"] == "lunch"  # the key, for the PBX and statistics
    assert await d.state(d.maria) == (Presence.PAUSED, "lunch")


async def test_an_unreachable_pbx_changes_nothing_and_says_so(d: Desk) -> None:
    d.link.down = True
    reply = await d.desk.command(10, Act.SIGN_IN, "")
    assert reply.text == tr("en", UNREACHABLE)
    assert await d.state(d.maria) == (Presence.SIGNED_OUT, "")
    assert await PresenceSpan.all().count() == 0
    assert await AuditEntry.filter(actor="10").values_list("result", flat=True) == ["failed"]


async def test_pausing_while_signed_out_is_refused_by_state_not_sent(d: Desk) -> None:
    reply = await d.desk.command(10, Act.PAUSE, "lunch")
    assert reply.text == tr("en", NOT_SIGNED_IN, agent="Maria")
    assert d.link.actions() == []


async def test_a_member_already_there_or_gone_is_the_wanted_state(d: Desk) -> None:
    d.link.members["Local/maria@agents"] = {"Name": "Maria", "Paused": "0"}
    await d.desk.command(10, Act.SIGN_IN, "")  # Asterisk: "Already there"
    assert await d.state(d.maria) == (Presence.READY, "")
    d.link.members.clear()
    await d.desk.command(10, Act.SIGN_OUT, "")  # Asterisk: "Not there"
    assert await d.state(d.maria) == (Presence.SIGNED_OUT, "")


@pytest.mark.parametrize(
    ("chat", "target", "ok"),
    [
        (10, "nikos", False),  # an agent: not a team mate
        (10, "eleni", False),
        (20, "nikos", True),  # Sofia leads team A
        (20, "eleni", False),  # but not B
        (30, "eleni", True),  # a director: anyone
        (12, "eleni", True),  # oneself, by id
    ],
)
async def test_who_may_sign_in_whom(d: Desk, chat: int, target: str, ok: bool) -> None:
    agent: Agent = getattr(d, target)
    reply = await d.desk.command(chat, Act.SIGN_IN, str(agent.id))
    assert reply.refused is not ok
    expected = Presence.READY if ok else Presence.SIGNED_OUT
    assert await d.state(agent) == (expected, "")
    assert bool(d.link.actions()) is ok  # a refusal sends nothing
    result = await AuditEntry.filter(actor=str(chat)).values_list("result", flat=True)
    assert result == ["done" if ok else "refused"]


async def test_a_supervisor_pauses_and_signs_out_a_team_member(d: Desk) -> None:
    await d.desk.command(11, Act.SIGN_IN, "")
    await d.desk.command(20, Act.PAUSE, f"{d.nikos.id} coaching")
    assert await d.state(d.nikos) == (Presence.PAUSED, "coaching")
    await d.desk.command(20, Act.SIGN_OUT, str(d.nikos.id))
    assert await d.state(d.nikos) == (Presence.SIGNED_OUT, "")
    refused = await d.desk.command(20, Act.SIGN_OUT, "99999")  # nobody: refused alike
    assert refused.refused


async def test_an_unlinked_chat_is_no_staff(d: Desk) -> None:
    reply = await d.desk.command(777, Act.SIGN_IN, "")
    assert reply.refused
    assert d.link.actions() == []
    assert (await d.desk.online(777)).refused


async def test_online_shows_what_each_may_see(d: Desk) -> None:
    for chat in (10, 11, 12, 20):
        await d.desk.command(chat, Act.SIGN_IN, "")
    await d.desk.command(11, Act.PAUSE, "lunch")

    def names(text: str) -> list[str]:
        return [line.split(" (")[0] for line in text.splitlines()[1:]]

    assert names((await d.desk.online(10)).text) == ["Maria"]  # an agent: themselves
    assert names((await d.desk.online(20)).text) == ["Sofia", "Maria", "Nikos"]
    assert names((await d.desk.online(30)).text) == ["Sofia", "Maria", "Nikos", "Eleni"]
    text = (await d.desk.online(30)).text
    assert "Nikos (A): paused, Lunch since 09:00" in text
    assert "Eleni (B): ready since 09:00" in text


async def test_pbx_events_from_elsewhere_update_the_database(d: Desk) -> None:
    maria = QueueMember(QUEUE, "Local/maria@agents", "Maria")
    await d.desk.on_event(MemberAdded(maria))
    assert await d.state(d.maria) == (Presence.READY, "")
    paused = QueueMember(QUEUE, "Local/maria@agents", "Maria", paused=True, reason="cli")
    await d.desk.on_event(MemberPaused(paused))
    assert await d.state(d.maria) == (Presence.PAUSED, "cli")
    await d.desk.on_event(MemberStatus(paused))  # the same state again: nothing new
    await d.desk.on_event(MemberRemoved(maria))
    assert await d.state(d.maria) == (Presence.SIGNED_OUT, "")
    assert await PresenceSpan.filter(agent_id=d.maria.id).count() == 2
    # Another queue's member, or a stranger: none of ours.
    await d.desk.on_event(MemberAdded(QueueMember("other", "Local/maria@agents")))
    await d.desk.on_event(MemberAdded(QueueMember(QUEUE, "PJSIP/999")))
    assert await d.state(d.maria) == (Presence.SIGNED_OUT, "")


async def test_resync_takes_the_pbx_as_the_truth(d: Desk) -> None:
    for chat in (10, 11):
        await d.desk.command(chat, Act.SIGN_IN, "")
    # The PBX restarted: Maria's membership is gone, Nikos is there paused, Eleni was
    # added from the CLI meanwhile.
    d.link.members = {
        "Local/nikos@agents": {"Name": "Nikos", "Paused": "1", "PausedReason": "lunch"},
        "Local/eleni@agents": {"Name": "Eleni", "Paused": "0"},
    }
    assert await d.desk.resync() == 3
    assert d.link.sent[-1] == queue_status()
    assert await d.state(d.maria) == (Presence.SIGNED_OUT, "")
    assert await d.state(d.nikos) == (Presence.PAUSED, "lunch")
    assert await d.state(d.eleni) == (Presence.READY, "")
    assert await d.desk.resync() == 0


def test_queue_member_frames_translate_to_domain_events() -> None:
    t = AmiTranslator()
    assert {"QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause"} <= t.event_names
    added = {  # as Asterisk 22.10.1 sends it
        "Event": "QueueMemberAdded",
        "Privilege": "agent,all",
        "Queue": QUEUE,
        "MemberName": "Maria",
        "Interface": "Local/agent9@test-agents",
        "StateInterface": "Local/agent9@test-agents",
        "Membership": "dynamic",
        "Paused": "0",
        "PausedReason": "",
    }
    member = QueueMember(QUEUE, "Local/agent9@test-agents", "Maria")
    assert t.translate(added) is None  # no call's event
    assert t.member_event(added) == MemberAdded(member)
    assert t.member_event({**added, "Event": "QueueMemberRemoved"}) == MemberRemoved(member)
    pause = {**added, "Event": "QueueMemberPause", "Paused": "1", "PausedReason": "lunch"}
    assert t.member_event(pause) == MemberPaused(
        QueueMember(QUEUE, "Local/agent9@test-agents", "Maria", paused=True, reason="lunch")
    )
    status_row = {
        "Event": "QueueMember",
        "Queue": QUEUE,
        "Name": "Local/agent1@test-agents",
        "Location": "Local/agent1@test-agents",
        "Membership": "static",
        "Paused": "0",
        "PausedReason": "",
        "ActionID": "a4",
    }
    assert queue_members([{"Event": "QueueParams", "Queue": QUEUE}, status_row]) == [
        QueueMember(QUEUE, "Local/agent1@test-agents", "Local/agent1@test-agents", dynamic=False)
    ]


async def test_a_static_member_cannot_be_removed_and_that_is_no_success() -> None:
    class Refusing(Link):
        async def send_action(self, action: Frame, timeout: float = 5.0) -> Frame:
            return {"Response": "Error", "Message": "Member not dynamic"}

    with pytest.raises(PbxUnavailable):
        await Pbx(Refusing()).queue_remove(QUEUE, "Local/agent1@test-agents")


async def test_staff_codes_link_staff_chats_and_subscriber_codes_do_not(db: str) -> None:
    team = await people.add_team("Desk")
    made = await people.add_staff(name="Maria", role="agent", team=team.name, interface="PJSIP/7")
    subscriber = await admin.add_subscriber(
        name="Dr P", ddis=["2100001"], language="en", timezone="UTC"
    )
    assert await people.link_chat(subscriber.link_code, 55, "en") is None  # not a staff code
    answer = await people.link_chat(made.link_code, 55, "el")
    assert answer is not None and "Maria" in answer
    user = await User.get(id=made.agent.user_id)  # type: ignore[attr-defined]
    assert (user.telegram_chat_id, user.language) == (55, "el")
    assert await people.link_chat(made.link_code, 56, "en") is None  # used once only
    # The subscriber's code still links a subscriber chat.
    assert (await admin.link_chat(subscriber.link_code, 57, "Dr P", "en")).name == "Dr P"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"role": "agent"}, "belongs to a team"),
        ({"role": "admin", "team": "Desk"}, "role must be"),
        ({"role": "agent", "team": "Nope"}, "no team"),
        ({"role": "agent", "team": "Desk", "interface": "agent7"}, "no queue member"),
        ({"role": "agent", "team": "Desk", "interface": "PJSIP/7"}, "another staff member"),
    ],
)
async def test_bad_staff_is_refused_plainly(db: str, kwargs: dict[str, str], error: str) -> None:
    await people.add_team("Desk")
    await people.add_staff(name="First", role="agent", team="Desk", interface="PJSIP/7")
    with pytest.raises(people.StaffError, match=error):
        await people.add_staff(name="X", **kwargs)


async def test_a_team_is_led_by_a_supervisor_only(db: str) -> None:
    await people.add_team("Desk")
    agent = await people.add_staff(name="A", role="agent", team="Desk")
    with pytest.raises(people.StaffError, match="not a supervisor"):
        await people.add_team("Other", agent.agent.id)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("pz:12:lunch", (12, "lunch")),
        ("pz:12:", None),
        ("pz:0:lunch", None),
        ("pz:12:Lunch", None),
        ("pz:x:lunch", None),
        ("zz:12:lunch", None),
        (None, None),
    ],
)
def test_pause_button_data(data: str | None, expected: tuple[int, str] | None) -> None:
    assert callbacks.unpack_pause(data) == expected
    if expected is not None:
        assert callbacks.pause(*expected) == data


def test_queue_status_of_one_queue() -> None:
    assert queue_status(QUEUE) == {"Action": "QueueStatus", "Queue": QUEUE}


@pytest.mark.parametrize("chat", [10, 20])  # an agent of team A; A's supervisor
@pytest.mark.parametrize("entry", ["signin", "signout", "pause", "resume", "pause_button"])
async def test_no_presence_entry_point_reaches_another_teams_agent(
    d: Desk, chat: int, entry: str
) -> None:
    """Every presence command and the pause buttons (forged for Eleni of team B) are
    refused for team A's agent and supervisor: nothing reaches the PBX, her state stays."""
    await d.desk.command(12, Act.SIGN_IN, "")  # Eleni is signed in, then paused
    await d.desk.command(12, Act.PAUSE, "lunch")
    before, sent = await d.state(d.eleni), len(d.link.actions())
    target = str(d.eleni.id)
    if entry == "pause_button":
        reply = await d.desk.pause_button(chat, callbacks.pause(d.eleni.id, "break"))
    elif entry == "resume":
        reply = await d.desk.resume(chat, target)
    else:
        act = {"signin": Act.SIGN_IN, "signout": Act.SIGN_OUT, "pause": Act.PAUSE}[entry]
        reply = await d.desk.command(chat, act, f"{target} coaching")
    assert reply.refused
    assert await d.state(d.eleni) == before and len(d.link.actions()) == sent
    assert await AuditEntry.filter(actor=str(chat), result="refused").count() == 1
