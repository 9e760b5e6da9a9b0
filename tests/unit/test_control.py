"""Control against a scripted PBX: channel ownership before a Redirect, one failed Redirect
never aborting "Forward calls to me", and AstDB agreeing with the database whatever fails."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from gateway.control import admin
from gateway.control.lines import MOVED_CONTEXT, Control, Forwarded
from gateway.pbx.errors import PbxUnavailable
from models.db import Subscriber
from models.events import CallSnapshot, CallStatus
from models.vocab import Scenario

MOBILE = "+306944000001"
DDI = "2100001"
OTHER_DDI = "2100077"


Frame = dict[str, str]


def refused(message: str) -> Frame:
    """Asterisk's answer to an action it refuses."""
    return {"Response": "Error", "Message": message}


class FakePbx:
    """An AMI link: AstDB as a dict, live channels as name -> linkedid, and failures
    scripted per (action, key or channel): an error answer, or an exception (not sent)."""

    def __init__(self) -> None:
        self.astdb: dict[str, str] = {}
        self.channels: dict[str, str] = {}
        self.actions: list[dict[str, str]] = []
        self.failures: dict[tuple[str, str], Exception | Frame] = {}
        self.on_getvar: Callable[[str], None] = lambda channel: None

    async def send_action(self, action: dict[str, str], timeout: float = 5.0) -> dict[str, str]:
        self.actions.append(action)
        name, target = action["Action"], action.get("Channel") or action.get("Key", "")
        if isinstance(failure := self.failures.get((name, target)), Exception):
            raise failure
        if failure is not None:
            return failure
        if name == "DBPut":
            self.astdb[action["Key"]] = action["Val"]
        elif name == "DBDel" and self.astdb.pop(action["Key"], None) is None:
            return refused("Database entry could not be deleted")
        elif name == "Getvar":
            self.on_getvar(target)
            if target not in self.channels:
                return refused("No such channel")
            return {
                "Response": "Success",
                "Variable": action["Variable"],
                "Value": self.channels[target],
            }
        elif name == "Redirect" and target not in self.channels:
            return refused(f"Channel does not exist: {target}")
        return {"Response": "Success"}

    async def send_list_action(
        self, action: dict[str, str], timeout: float = 10.0
    ) -> list[dict[str, str]]:
        """DBGetTree (family frontdesk) as Asterisk answers it: one event per entry."""
        if (answer := await self.send_action(action)).get("Response") == "Error":
            raise PbxUnavailable(f"{action['Action']}: {answer['Message']}")  # as AmiClient
        under = action.get("Key", "") + "/"
        return [
            {"Event": "DBGetTreeResponse", "Key": f"/frontdesk/{key}", "Val": value}
            for key, value in sorted(self.astdb.items())
            if key.startswith(under)
        ]

    def sent(self, name: str) -> list[dict[str, str]]:
        return [a for a in self.actions if a["Action"] == name]


def ringing(linkedid: str, channel: str, ddi: str = DDI) -> CallSnapshot:
    return CallSnapshot(
        linkedid=linkedid,
        started_at=0.0,
        ddi=ddi,
        status=CallStatus.WAITING,
        caller_channel=channel,
    )


class Desk:
    def __init__(self, calls: list[CallSnapshot]) -> None:
        self.pbx = FakePbx()
        self.calls = calls
        self.moved: list[tuple[str, str]] = []
        self.control = Control(
            self.pbx, ringing=lambda: self.calls, on_moved=lambda *m: self.moved.append(m)
        )

    def live(self, call: CallSnapshot) -> None:
        """The PBX has the call's caller channel, and it is that call's."""
        self.pbx.channels[call.caller_channel] = call.linkedid


@pytest.fixture
async def subscriber(db: str) -> Subscriber:
    created = await admin.add_subscriber(
        name="Dr A", ddis=[DDI], language="en", timezone="UTC", mobile=MOBILE
    )
    await admin.add_subscriber(
        name="Dr B", ddis=[OTHER_DDI], language="en", timezone="UTC", mobile="+306944000077"
    )
    return created.subscriber


async def stored(subscriber: Subscriber) -> Scenario:
    return (await Subscriber.get(id=subscriber.id)).scenario


async def test_a_reused_channel_name_of_another_call_is_not_redirected(
    subscriber: Subscriber,
) -> None:
    """After a PBX restart the dead call's channel name is another caller's now."""
    stale = ringing("1795339700.0", "PJSIP/pstn-00000000")
    mine = ringing("1795339750.4", "PJSIP/pstn-00000004")
    desk = Desk([stale, mine])
    desk.pbx.channels["PJSIP/pstn-00000000"] = "1795400000.0"  # the other subscriber's call
    desk.live(mine)

    result = await desk.control.forward_to_mobile(subscriber)

    assert result == Forwarded(MOBILE, 1) and str(result) == MOBILE
    [getvar, _] = desk.pbx.sent("Getvar")
    assert (getvar["Channel"], getvar["Variable"]) == ("PJSIP/pstn-00000000", "CHANNEL(linkedid)")
    [redirect] = desk.pbx.sent("Redirect")
    assert redirect == {
        "Action": "Redirect",
        "Channel": "PJSIP/pstn-00000004",
        "Context": MOVED_CONTEXT,
        "Exten": MOBILE,
        "Priority": "1",
    }
    assert desk.moved == [("1795339750.4", MOBILE)]


async def test_a_channel_the_pbx_no_longer_has_is_skipped(subscriber: Subscriber) -> None:
    gone = ringing("1.0", "PJSIP/pstn-00000000")
    desk = Desk([gone])
    assert await desk.control.redirect_ringing(subscriber) == 0
    assert desk.pbx.sent("Redirect") == [] and desk.moved == []


async def test_only_the_subscribers_own_waiting_calls_are_asked_about(
    subscriber: Subscriber,
) -> None:
    other = ringing("1.0", "PJSIP/pstn-00000000", ddi=OTHER_DDI)
    answered = ringing("2.0", "PJSIP/pstn-00000001")
    answered.answered_at = 5.0
    desk = Desk([other, answered])
    desk.live(other)
    desk.live(answered)
    assert await desk.control.redirect_ringing(subscriber) == 0
    assert desk.pbx.actions == []


async def test_a_call_answered_while_we_asked_stays_with_the_agent(
    subscriber: Subscriber,
) -> None:
    call = ringing("1.0", "PJSIP/pstn-00000000")
    desk = Desk([call])
    desk.live(call)

    def agent_answers(channel: str) -> None:
        call.answered_at, call.status = 9.0, CallStatus.IN_PROGRESS

    desk.pbx.on_getvar = agent_answers
    assert await desk.control.redirect_ringing(subscriber) == 0
    assert desk.pbx.sent("Redirect") == []


@pytest.mark.parametrize(
    "failure",
    [refused("Channel does not exist"), PbxUnavailable("AMI did not answer")],
    ids=["refused", "unanswered"],
)
async def test_a_failed_redirect_does_not_stop_the_others_and_the_switch_stands(
    subscriber: Subscriber, failure: Exception | Frame, caplog: pytest.LogCaptureFixture
) -> None:
    first = ringing("1.0", "PJSIP/pstn-00000000")
    second = ringing("2.0", "PJSIP/pstn-00000001")
    desk = Desk([first, second])
    desk.live(first)
    desk.live(second)
    desk.pbx.failures[("Redirect", first.caller_channel)] = failure

    with caplog.at_level(logging.WARNING, "gateway.control.lines"):
        result = await desk.control.forward_to_mobile(subscriber)

    assert result == Forwarded(MOBILE, 1)
    assert [r["Channel"] for r in desk.pbx.sent("Redirect")] == [
        first.caller_channel,
        second.caller_channel,
    ]
    assert desk.moved == [("2.0", MOBILE)]
    assert "call 1.0 could not be moved" in caplog.text
    assert desk.pbx.astdb[f"scenario/{DDI}"] == "forward"
    assert await stored(subscriber) is Scenario.FORWARD


async def test_astdb_refusing_midway_leaves_both_as_they_were(subscriber: Subscriber) -> None:
    call = ringing("1.0", "PJSIP/pstn-00000000")
    desk = Desk([call])
    desk.live(call)
    await desk.control.reassert_all()
    desk.pbx.failures[("DBPut", f"forward/{DDI}")] = refused("failed")

    with pytest.raises(PbxUnavailable, match="DBPut: failed"):
        await desk.control.forward_to_mobile(subscriber)

    assert subscriber.scenario is Scenario.AGENT  # the object too, for its next use
    assert await stored(subscriber) is Scenario.AGENT
    assert desk.pbx.astdb[f"scenario/{DDI}"] == "agent"  # written back after the refusal
    assert desk.pbx.sent("Redirect") == []


async def test_a_failed_save_writes_the_old_lines_back(
    subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = Desk([])

    async def broken_save(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(subscriber, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        await desk.control.forward_to_mobile(subscriber)

    puts = [(a["Key"], a["Val"]) for a in desk.pbx.sent("DBPut")]
    assert puts[:2] == [(f"scenario/{DDI}", "forward"), (f"forward/{DDI}", MOBILE)]
    assert desk.pbx.astdb[f"scenario/{DDI}"] == "agent"
    assert await stored(subscriber) is Scenario.AGENT


async def test_ami_down_changes_nothing_and_the_next_login_reasserts(
    subscriber: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    desk = Desk([])
    desk.pbx.failures[("DBPut", f"scenario/{DDI}")] = PbxUnavailable("AMI not connected")
    with caplog.at_level(logging.WARNING, "gateway.control.lines"), pytest.raises(PbxUnavailable):
        await desk.control.set_scenario(subscriber, Scenario.CLOSED)
    assert "AstDB not restored yet" in caplog.text
    assert (subscriber.scenario, await stored(subscriber)) == (Scenario.AGENT, Scenario.AGENT)

    del desk.pbx.failures[("DBPut", f"scenario/{DDI}")]  # connected again
    await desk.control.reassert_all()
    assert desk.pbx.astdb[f"scenario/{DDI}"] == "agent"
