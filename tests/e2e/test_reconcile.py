"""Reconciliation after an AMI login: the tracker against what the PBX lists, and the AMI
client's list action, FullyBooted reading and typed actions against the sandbox Asterisk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import replace

import pytest

from gateway.calls.tracker import CallTracker
from gateway.pbx import actions
from gateway.pbx.actions import Pbx
from gateway.pbx.client import AmiClient
from gateway.pbx.errors import PbxUnavailable
from gateway.pbx.translate import AmiTranslator, live_calls
from models.events import (
    CallOutcome,
    CallRouted,
    CallSnapshot,
    CallStatus,
    ChannelOpened,
    LiveChannel,
)
from models.settings import load_settings, with_section
from sandbox.ami_server import AmiServer
from sandbox.call_scripts import CallFactory

Frame = dict[str, str]
WAIT = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_795_339_700.0

    def __call__(self) -> float:
        return self.now


class Replay:
    def __init__(self) -> None:
        self.translator = AmiTranslator()
        self.seen: list[CallSnapshot] = []
        self.clock = Clock()
        self.tracker = CallTracker(self.seen.append, clock=self.clock)

    def play(self, frames: Iterable[Frame]) -> None:
        for frame in frames:
            event = self.translator.translate(frame)
            if event is not None:
                self.tracker.handle(event)

    def ended(self, linkedid: str) -> list[CallSnapshot]:
        return [s for s in self.seen if s.linkedid == linkedid and s.ended]


def until(frames: list[Frame], event: str, **match: str) -> list[Frame]:
    """The frames before the first `event` matching `match`."""
    return frames[
        : next(
            i
            for i, f in enumerate(frames)
            if f["Event"] == event and all(f.get(k) == v for k, v in match.items())
        )
    ]


def ringing_call(factory: CallFactory) -> list[Frame]:
    """Agents ringing, nobody answered yet (a missed call cut before the caller hangs up)."""
    return until(factory.missed("2100001", "+302101234567", "Μαρία"), "HangupRequest")


def rows(frames: Iterable[Frame]) -> dict[str, list[LiveChannel]]:
    """What CoreShowChannels would list after these frames: channels opened, not hung up."""
    live: dict[str, LiveChannel] = {}
    for f in frames:
        if f["Event"] == "Newchannel":
            live[f["Uniqueid"]] = LiveChannel(f["Linkedid"], f["Uniqueid"], f["Channel"])
        elif f["Event"] == "Hangup":
            live.pop(f["Uniqueid"], None)
    grouped: dict[str, list[LiveChannel]] = {}
    for channel in live.values():
        grouped.setdefault(channel.linkedid, []).append(channel)
    return grouped


# -- the tracker ---------------------------------------------------------------------------


def test_a_call_the_pbx_no_longer_has_ends_unknown_not_abandoned() -> None:
    replay = Replay()
    frames = ringing_call(CallFactory())
    replay.play(frames)
    linkedid = frames[0]["Linkedid"]
    assert replay.tracker.reconcile({}) == 1
    [call] = replay.ended(linkedid)
    assert (call.outcome, call.status) == (CallOutcome.UNKNOWN, CallStatus.UNKNOWN)
    assert call.ended_at == replay.clock.now and not replay.tracker.calls
    replay.play(CallFactory().missed("2100001", "+302101234567", "Μαρία")[len(frames) :])
    assert len(replay.ended(linkedid)) == 1  # its late frames change nothing


def test_answered_or_voicemail_before_the_crash_keep_their_outcome() -> None:
    factory = CallFactory()
    answered = until(factory.agent_answered("2100001", "+302101234567", "Μαρία"), "HangupRequest")
    voicemail = until(factory.voicemail_left("2100002", "+302107654321", "Νίκος"), "Hangup")
    replay = Replay()
    replay.play(answered + voicemail)
    assert len(replay.tracker.calls) == 2
    assert replay.tracker.reconcile({}) == 2
    [first] = replay.ended(answered[0]["Linkedid"])
    [second] = replay.ended(voicemail[0]["Linkedid"])
    assert (first.outcome, first.answered_by) == (CallOutcome.ANSWERED, "PJSIP/agent101")
    assert second.outcome is CallOutcome.VOICEMAIL


def test_a_live_call_is_kept_and_its_channels_re_read() -> None:
    replay = Replay()
    frames = ringing_call(CallFactory())
    replay.play(frames)
    linkedid = frames[0]["Linkedid"]
    listed = rows(frames)
    agent_leg = listed[linkedid][1]
    # The PBX lost one agent leg without a Hangup, and renamed the caller's channel.
    caller = LiveChannel(linkedid, linkedid, "PJSIP/pstn-0000002a")
    live = {linkedid: [caller, listed[linkedid][2]]}
    assert replay.tracker.reconcile(live) == 0
    call = replay.tracker.calls[linkedid]
    assert call.caller_channel == "PJSIP/pstn-0000002a"
    assert agent_leg.uniqueid not in call.channels and len(call.channels) == 2
    # The call goes on: its end is the last listed channel's Hangup, and it alerts.
    rest = CallFactory().missed("2100001", "+302101234567", "Μαρία")[len(frames) :]
    replay.play(f for f in rest if f.get("Uniqueid") != agent_leg.uniqueid)
    [end] = replay.ended(linkedid)
    assert end.outcome is CallOutcome.ABANDONED


def test_a_call_whose_caller_channel_is_gone_has_no_channel_to_redirect() -> None:
    replay = Replay()
    frames = ringing_call(CallFactory())
    replay.play(frames)
    linkedid = frames[0]["Linkedid"]
    legs_only = {linkedid: rows(frames)[linkedid][1:]}
    replay.tracker.reconcile(legs_only)
    assert replay.tracker.calls[linkedid].caller_channel == ""


def test_the_channel_to_move_is_the_one_running_our_dialplan() -> None:
    """A call through a Local channel: ;1 plays the caller, ;2 runs frontdesk-inbound and
    sends FrontdeskCall. A Redirect must move ;2, and reconciliation re-reads ;2."""
    replay = Replay()
    tracker, lid = replay.tracker, "1795999755.6"
    half1, half2 = "Local/trunk@test-inbound-00000003;1", "Local/trunk@test-inbound-00000003;2"
    for uniqueid, name in ((lid, half1), ("1795999755.7", half2)):
        tracker.handle(ChannelOpened(lid, uniqueid, name, "s", "test-inbound", "+3021", "Μ"))
    assert lid not in tracker.calls  # a call only from its FrontdeskCall on
    routed = CallRouted(lid, "2100001", "agent", "2100001@default", "", "+3021", "Μ")
    tracker.handle(replace(routed, channel=half2, uniqueid="1795999755.7"))
    assert tracker.calls[lid].caller_channel == half2
    renamed = "Local/trunk@test-inbound-00000009;2"
    live = {lid: [LiveChannel(lid, lid, half1), LiveChannel(lid, "1795999755.7", renamed)]}
    tracker.reconcile(live)
    assert tracker.calls[lid].caller_channel == renamed


def test_channel_name_reuse_after_a_restart_never_mixes_the_calls() -> None:
    """After a restart the new call of another line has the dead call's channel name."""
    replay = Replay()
    old = ringing_call(CallFactory())
    replay.play(old)
    new_factory = CallFactory(start_epoch=1795400000)
    new = until(new_factory.missed("2100077", "+302107777777", "Άλλος"), "HangupRequest")
    assert new[0]["Channel"] == old[0]["Channel"] and new[0]["Linkedid"] != old[0]["Linkedid"]
    before = replay.tracker.channel_view()
    replay.play(new)  # the new call's events arrive before the listing's answer
    assert replay.tracker.reconcile(rows(new), before) == 1
    [dead] = replay.ended(old[0]["Linkedid"])
    assert dead.outcome is CallOutcome.UNKNOWN
    [live] = replay.tracker.calls.values()
    assert (live.linkedid, live.ddi) == (new[0]["Linkedid"], "2100077")


def test_changes_seen_during_the_listing_are_kept() -> None:
    """Events newer than the listing may be read before its answer: a call begun and a
    channel opened since stay; a channel hung up since is not brought back."""
    replay = Replay()
    factory = CallFactory()
    first = ringing_call(factory)
    replay.play(first)
    linkedid = first[0]["Linkedid"]
    listed = rows(first)  # the PBX's view when it answered
    before = replay.tracker.channel_view()
    later = ringing_call(factory)  # another call, begun after the listing
    leg = listed[linkedid][1]
    hangup = {"Event": "Hangup", "Uniqueid": leg.uniqueid, "Linkedid": linkedid}
    replay.play([*later, hangup])
    assert replay.tracker.reconcile(listed, before) == 0
    assert set(replay.tracker.calls) == {linkedid, later[0]["Linkedid"]}
    assert leg.uniqueid not in replay.tracker.calls[linkedid].channels


def test_expiry_ends_a_silent_call_unknown() -> None:
    replay = Replay()
    frames = ringing_call(CallFactory())
    replay.play(frames)
    replay.clock.now += 4 * 3600 + 1
    assert replay.tracker.expire(max_idle=4 * 3600) == 1
    [call] = replay.ended(frames[0]["Linkedid"])
    assert call.outcome is CallOutcome.UNKNOWN


def test_a_call_confirmed_live_does_not_expire() -> None:
    replay = Replay()
    frames = ringing_call(CallFactory())
    replay.play(frames)
    replay.clock.now += 4 * 3600 - 10
    replay.tracker.reconcile(rows(frames))
    replay.clock.now += 20
    assert replay.tracker.expire(max_idle=4 * 3600) == 0


def test_live_calls_groups_coreshowchannel_rows_by_linkedid() -> None:
    listed = [
        {"Event": "CoreShowChannel", "Channel": "A-1", "Uniqueid": "1.1", "Linkedid": "1.1"},
        {"Event": "CoreShowChannel", "Channel": "B-2", "Uniqueid": "1.2", "Linkedid": "1.1"},
        {"Event": "CoreShowChannel", "Channel": "C-3", "Uniqueid": "2.1", "Linkedid": "2.1"},
        {"Event": "CoreShowChannelsComplete", "ListItems": "3"},
    ]
    assert live_calls(listed) == {
        "1.1": [LiveChannel("1.1", "1.1", "A-1"), LiveChannel("1.1", "1.2", "B-2")],
        "2.1": [LiveChannel("2.1", "2.1", "C-3")],
    }


# -- the AMI client against the sandbox Asterisk -----------------------------------------


@pytest.fixture
async def pbx() -> AsyncIterator[tuple[AmiServer, AmiClient, asyncio.Queue[None]]]:
    async with AmiServer(secret="s", uptime=3600) as ami:
        s = load_settings(None, environ={})
        s = with_section(s, "ami", port=ami.port, secret="s", reconnect_min=0.05)
        logins: asyncio.Queue[None] = asyncio.Queue()

        async def on_login() -> None:
            logins.put_nowait(None)

        client = AmiClient(s.ami, lambda frame: None, frozenset(), on_connected=on_login)
        await client.start()
        try:
            await asyncio.wait_for(logins.get(), WAIT)
            yield ami, client, logins
        finally:
            await client.stop()


async def test_send_list_action_returns_every_row_though_they_carry_our_actionid(
    pbx: tuple[AmiServer, AmiClient, asyncio.Queue[None]],
) -> None:
    ami, client, _ = pbx
    assert await client.send_list_action(actions.core_show_channels()) == []
    frames = ringing_call(CallFactory())
    await ami.play(frames)
    listed = await client.send_list_action(actions.core_show_channels())
    assert [r["Event"] for r in listed] == ["CoreShowChannel"] * 3
    assert live_calls(listed) == rows(frames) == await Pbx(client).live_calls()
    with pytest.raises(PbxUnavailable, match="unknown command"):
        await client.send_list_action({"Action": "NoSuchList"})


async def test_fully_booted_tells_a_restart_from_a_reconnect(
    pbx: tuple[AmiServer, AmiClient, asyncio.Queue[None]],
) -> None:
    ami, client, logins = pbx
    first = await client.pbx_run(WAIT)
    assert first is not None and first.restarted is None and first.uptime >= 3600
    await ami.drop_clients()  # the network blinked; the same Asterisk run goes on
    await asyncio.wait_for(logins.get(), WAIT)
    again = await client.pbx_run(WAIT)
    assert again is not None and again.restarted is False and again.uptime >= 3600
    await ami.restart(shutdown_event=False)  # a crash and a new run
    await asyncio.wait_for(logins.get(), WAIT)
    restarted = await client.pbx_run(WAIT)
    assert restarted is not None and restarted.restarted is True and restarted.uptime < 60


async def test_the_typed_actions_on_the_wire_and_their_answers(
    pbx: tuple[AmiServer, AmiClient, asyncio.Queue[None]],
) -> None:
    ami, client, _ = pbx
    line = Pbx(client)
    sent_before = len(ami.actions)
    await line.db_put("frontdesk", "scenario/2100001", "Μαρία")
    assert ami.astdb["frontdesk/scenario/2100001"] == "Μαρία"
    assert await line.db_get("frontdesk", "scenario/2100001") == "Μαρία"
    assert await line.db_get("frontdesk", "nothing/here") is None

    frames = ringing_call(CallFactory())
    await ami.play(frames)
    caller = next(f for f in frames if f["Event"] == "Newchannel")
    assert await line.getvar(caller["Channel"], "CHANNEL(linkedid)") == caller["Linkedid"]
    assert await line.getvar("PJSIP/pstn-0000ffff", "CHANNEL(linkedid)") is None
    await line.redirect(caller["Channel"], "frontdesk-moved", "+306944000001")
    with pytest.raises(PbxUnavailable, match="Redirect: Channel does not exist"):
        await line.redirect("PJSIP/pstn-0000ffff", "frontdesk-moved", "+306944000001")
    await line.originate_callback(
        "+306944000001", "+302101234567", "frontdesk-callback", "Dr A", "2100001"
    )

    sent = [{k: v for k, v in a.items() if k != "ActionID"} for a in ami.actions[sent_before:]]
    assert [a["Action"] for a in sent] == [
        "DBPut",
        "DBGet",
        "DBGet",
        "Getvar",
        "Getvar",
        "Redirect",
        "Redirect",
        "Originate",
    ]
    assert sent[5] == actions.redirect(caller["Channel"], "frontdesk-moved", "+306944000001")
    assert sent[-1] == {
        "Action": "Originate",
        "Channel": "Local/+306944000001@frontdesk-callback",
        "Context": "frontdesk-callback",
        "Exten": "+302101234567",
        "Priority": "1",
        "CallerID": '"Dr A" <2100001>',
        "Async": "true",
    }


async def test_nothing_is_sent_while_not_connected(
    pbx: tuple[AmiServer, AmiClient, asyncio.Queue[None]],
) -> None:
    ami, client, _ = pbx
    await client.stop()
    with pytest.raises(PbxUnavailable, match="AMI not connected; DBPut not sent"):
        await Pbx(client).db_put("frontdesk", "scenario/2100001", "closed")
    assert [a["Action"] for a in ami.actions][-1] == "Logoff"


@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.send_action({"Action": "DBGet", "Family": "f", "Key": "k"}, timeout=60),
        lambda c: c.send_list_action(actions.core_show_channels(), timeout=60),
        lambda c: c.read_list({"Action": "DBGetTree", "Family": "f"}, 60, lambda f: f),
        lambda c: c.send_pipelined([{"Action": "DBPut", "Family": "f"}] * 3, 2, timeout=60),
    ],
    ids=["action", "list", "long list", "pipelined"],
)
async def test_an_action_unanswered_when_the_link_drops_fails_at_once(
    pbx: tuple[AmiServer, AmiClient, asyncio.Queue[None]],
    send: Callable[[AmiClient], Awaitable[object]],
) -> None:
    """Not at its timeout: a sync cut short by a restart would hold back the next login's."""
    ami, client, _ = pbx
    ami.held.update({"dbget", "coreshowchannels", "dbgettree", "dbput"})
    asked = len(ami.actions)
    sent = asyncio.ensure_future(send(client))
    await ami.wait_until(lambda: len(ami.actions) > asked, WAIT)  # at the PBX, unanswered
    await ami.drop_clients()
    with pytest.raises(PbxUnavailable, match="connection lost"):
        await asyncio.wait_for(sent, WAIT)  # well before the 60 s timeout
