"""The AMI sandbox: real Asterisk's wire behaviour, and call scripts shaped like real calls.

The client side is raw asyncio streams on purpose: these tests pin the wire protocol, not
the product's client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.ami_server import BANNER, ActionParser, AmiServer, encode_frame, load_capture
from sandbox.call_scripts import CallFactory

Frame = dict[str, str]
CAPTURES = Path(__file__).parents[1] / "fixtures" / "asterisk"


class Client:
    """A bare AMI client: write actions, read frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, server: AmiServer) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        return cls(reader, writer)

    def send(self, action: Frame) -> None:
        self.writer.write(encode_frame(action))

    async def raw_frame(self) -> bytes:
        return await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)

    async def frame(self) -> Frame:
        lines = (await self.raw_frame()).decode().split("\r\n")
        return dict(line.split(": ", 1) for line in lines if line)

    async def until(self, key: str, value: str) -> Frame:
        while (frame := await self.frame()).get(key) != value:
            pass
        return frame

    async def login(self, secret: str = "secret", **extra: str) -> Frame:
        assert await self.reader.readline() == BANNER
        self.send({"Action": "Login", "Username": "frontdesk", "Secret": secret, **extra})
        return await self.frame()

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 5) == b""

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@pytest.fixture
async def server() -> AsyncIterator[AmiServer]:
    async with AmiServer() as ami:
        yield ami


@pytest.fixture
async def client(server: AmiServer) -> AsyncIterator[Client]:
    """Logged in, with the login's own events (FullyBooted, SuccessfulAuth) read."""
    c = await Client.connect(server)
    assert (await c.login())["Message"] == "Authentication accepted"
    await c.until("Event", "SuccessfulAuth")
    await server.wait_logged_in()
    yield c
    await c.close()


# -- login and session rules --------------------------------------------------------------


async def test_login_reply_and_fully_booted_like_asterisk(server: AmiServer) -> None:
    c = await Client.connect(server)
    assert await c.reader.readline() == b"Asterisk Call Manager/11.0.0\r\n"
    c.send({"Action": "Login", "ActionID": "Login-1", "Username": "FRONTDESK", "Secret": "secret"})
    reply = b"Response: Success\r\nActionID: Login-1\r\nMessage: Authentication accepted\r\n\r\n"
    assert await c.raw_frame() == reply
    booted = await c.frame()
    assert booted["Event"] == "FullyBooted" and booted["Status"] == "Fully Booted"
    assert (await c.frame())["Event"] == "SuccessfulAuth"
    await server.wait_logged_in(1)
    assert (server.logged_in, server.logins) == (1, 1)
    login = await server.wait_action("login")
    assert login["Secret"] == "***" and login["Username"] == "FRONTDESK"
    await c.close()


async def test_bad_secret_is_refused_and_the_connection_closed(server: AmiServer) -> None:
    c = await Client.connect(server)
    reply = await c.login(secret="wrong")
    assert reply == {"Response": "Error", "Message": "Authentication failed"}
    assert await c.closed()
    assert server.logged_in == 0
    await c.close()


async def test_login_sent_before_the_banner_is_read(server: AmiServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"Action: Login\r\nUsername: frontdesk\r\nSecret: secret\r\nActionID: 7\r\n\r\n")
    c = Client(reader, writer)
    assert await reader.readline() == BANNER
    assert await c.frame() == {
        "Response": "Success",
        "ActionID": "7",
        "Message": "Authentication accepted",
    }
    await c.close()


async def test_actions_before_login_are_denied_but_logoff_says_goodbye(server: AmiServer) -> None:
    c = await Client.connect(server)
    assert await c.reader.readline() == BANNER
    c.send({"Action": "Ping", "ActionID": "p"})
    denied = {"Response": "Error", "ActionID": "p", "Message": "Permission denied"}
    assert await c.frame() == denied
    c.send({"Action": "Logoff"})
    assert await c.frame() == {"Response": "Goodbye", "Message": "Thanks for all the fish."}
    assert await c.closed()
    await c.close()


async def test_md5_challenge_login(server: AmiServer) -> None:
    import hashlib

    c = await Client.connect(server)
    assert await c.reader.readline() == BANNER
    c.send({"Action": "Challenge", "AuthType": "MD5"})
    challenge = (await c.frame())["Challenge"]
    key = hashlib.md5((challenge + "secret").encode(), usedforsecurity=False).hexdigest()
    c.send({"Action": "Login", "AuthType": "md5", "Username": "frontdesk", "Key": key})
    assert (await c.frame())["Message"] == "Authentication accepted"
    await c.close()


async def test_ping_and_coresettings(client: Client) -> None:
    client.send({"Action": "Ping", "ActionID": "p1"})
    pong = await client.frame()
    assert list(pong) == ["Response", "ActionID", "Ping", "Timestamp"]
    assert pong["Ping"] == "Pong" and float(pong["Timestamp"]) > 0
    client.send({"Action": "CoreSettings"})
    settings = await client.frame()
    assert settings["AsteriskVersion"] == "22.10.1" and settings["AMIversion"] == "11.0.0"


# -- actions ------------------------------------------------------------------------------


async def test_astdb_roundtrip_with_actionid_echo(server: AmiServer, client: Client) -> None:
    client.send(
        {"Action": "DBPut", "ActionID": "put", "Family": "ddi", "Key": "2100001", "Val": "Μ"}
    )
    assert await client.raw_frame() == (
        b"Response: Success\r\nActionID: put\r\nMessage: Updated database successfully\r\n\r\n"
    )
    assert server.astdb == {"ddi/2100001": "Μ"}
    client.send({"Action": "DBGet", "ActionID": "get", "Family": "ddi", "Key": "2100001"})
    assert await client.raw_frame() == (
        b"Response: Success\r\nActionID: get\r\nEventList: start\r\n"
        b"Message: Result will follow\r\n\r\n"
    )
    assert await client.raw_frame() == (
        b"Event: DBGetResponse\r\nFamily: ddi\r\nKey: 2100001\r\nVal: \xce\x9c\r\n"
        b"ActionID: get\r\n\r\n"
    )
    assert await client.raw_frame() == (
        b"Event: DBGetComplete\r\nActionID: get\r\nEventList: Complete\r\nListItems: 1\r\n\r\n"
    )
    client.send({"Action": "DBDel", "ActionID": "del", "Family": "ddi", "Key": "2100001"})
    assert (await client.frame())["Message"] == "Key deleted successfully"
    for action in ("DBGet", "DBDel"):
        client.send({"Action": action, "Family": "ddi", "Key": "2100001"})
        assert (await client.frame())["Response"] == "Error"
    assert server.astdb == {}


async def test_dbdeltree_removes_a_family(server: AmiServer, client: Client) -> None:
    server.astdb.update({"ddi/1": "a", "ddi/2": "b", "ddix/1": "c"})
    client.send({"Action": "DBDelTree", "Family": "ddi"})
    assert (await client.frame())["Message"] == "Key tree deleted successfully"
    assert server.astdb == {"ddix/1": "c"}


async def test_unknown_action_and_garbage_get_errors_and_the_server_lives_on(
    client: Client,
) -> None:
    client.send({"Action": "Frobnicate", "ActionID": "f"})
    assert await client.frame() == {
        "Response": "Error",
        "ActionID": "f",
        "Message": "Invalid/unknown command: Frobnicate. "
        "Use Action: ListCommands to show available commands.",
    }
    client.writer.write(b"\x00\xffgarbage\r\nno colon here\r\n\r\n")
    assert (await client.frame())["Message"] == "Missing action in request"
    # An over-long line is dumped, as Asterisk does; the rest of the action still counts.
    client.writer.write(b"Action: Ping\r\nX-Long: " + b"A" * 5000 + b"\r\nActionID: long\r\n\r\n")
    assert (await client.frame())["ActionID"] == "long"
    client.writer.write(b"Action: Ping\nActionID: bare-lf\n\n")
    assert (await client.frame())["ActionID"] == "bare-lf"


async def test_async_originate_answers_then_sends_originateresponse(
    server: AmiServer, client: Client
) -> None:
    client.send(
        {
            "Action": "Originate",
            "ActionID": "Originate-6",
            "Channel": "Local/2100001@from-pstn",
            "Context": "caller",
            "Exten": "play",
            "Priority": "1",
            "CallerID": '"Μαρία" <+306912345678>',
            "Async": "true",
        }
    )
    assert await client.frame() == {
        "Response": "Success",
        "ActionID": "Originate-6",
        "Message": "Originate successfully queued",
    }
    event = await client.frame()
    assert event["Event"] == "OriginateResponse" and event["ActionID"] == "Originate-6"
    assert (event["Response"], event["Reason"], event["Exten"]) == ("Success", "4", "play")
    assert event["Channel"].startswith("Local/2100001@from-pstn-") and event["Channel"][-2:] == ";1"
    assert (event["CallerIDNum"], event["CallerIDName"]) == ("+306912345678", "Μαρία")
    originate = await server.wait_action("ORIGINATE", lambda a: a.get("Async") == "true")
    assert originate["Channel"] == "Local/2100001@from-pstn"


async def test_wait_action_resolves_for_an_action_still_to_come(
    server: AmiServer, client: Client
) -> None:
    waiter = asyncio.ensure_future(server.wait_action("Redirect"))
    client.send({"Action": "Redirect", "Channel": "PJSIP/pstn-00000000", "Exten": "h"})
    assert (await client.frame())["Message"] == "Channel does not exist: PJSIP/pstn-00000000"
    assert (await waiter)["Exten"] == "h"


# -- events out ---------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_sizes", [[1], [3, 7, 2]])
async def test_chunked_push_is_byte_identical(
    server: AmiServer, client: Client, chunk_sizes: list[int]
) -> None:
    script = CallFactory().voicemail_left("2100001", "+306912345678", "Μαρία Κωνσταντίνου")
    expected = b"".join(encode_frame(f) for f in script)
    assert await server.play(script, chunk_sizes=chunk_sizes) == 1
    assert await asyncio.wait_for(client.reader.readexactly(len(expected)), 10) == expected


async def test_push_of_verbatim_capture_frames(server: AmiServer, client: Client) -> None:
    frames = load_capture(CAPTURES / "voicemail.ami")
    await server.push(frames)
    assert await asyncio.wait_for(client.reader.readexactly(sum(map(len, frames))), 5) == b"".join(
        frames
    )


async def test_events_off_and_filters(server: AmiServer, client: Client) -> None:
    newchannel = {"Event": "Newchannel", "Privilege": "call,all", "Uniqueid": "1.0"}
    hangup = {"Event": "Hangup", "Privilege": "call,all", "Uniqueid": "1.0"}
    client.send({"Action": "Events", "EventMask": "off"})
    assert (await client.frame())["Events"] == "Off"
    assert await server.push([newchannel]) == 0
    client.send({"Action": "Events", "EventMask": "call,user"})
    assert (await client.frame())["Events"] == "On"
    client.send({"Action": "Filter", "Operation": "Add", "Filter": "Event: Hangup"})
    assert await client.frame() == {"Response": "Success", "Message": "Success"}
    await server.push([newchannel, hangup, newchannel, {**hangup, "Uniqueid": "2.0"}])
    assert (await client.frame())["Uniqueid"] == "1.0"
    assert (await client.frame())["Uniqueid"] == "2.0"  # no Newchannel in between
    client.send({"Action": "Filter", "Operation": "Add", "Filter": "!Uniqueid: 1\\."})
    await client.frame()
    await server.push([hangup, {**hangup, "Uniqueid": "3.0"}])
    assert (await client.frame())["Uniqueid"] == "3.0"
    cdr = {"Event": "Hangup", "Privilege": "cdr,all", "Uniqueid": "4.0"}  # class not in mask
    assert await server.push([cdr]) == 0


async def test_restart_drops_clients_and_keeps_the_port(server: AmiServer, client: Client) -> None:
    port = server.port
    await server.restart()
    assert (await client.frame())["Event"] == "Shutdown"
    assert await client.closed()
    assert server.logged_in == 0
    again = await Client.connect(server)
    assert (await again.login())["Message"] == "Authentication accepted"
    await server.wait_logged_in()
    assert (server.port, server.logins) == (port, 2)
    await again.close()


# -- live channels: CoreShowChannels, Getvar, Redirect ------------------------------------


def _ringing_call(factory: CallFactory | None = None) -> list[Frame]:
    """A missed call's frames up to the caller hanging up: two agents ringing."""
    frames = (factory or CallFactory()).missed("2100001", "+306912345678", "Μαρία")
    return frames[: next(i for i, f in enumerate(frames) if f["Event"] == "HangupRequest")]


async def _list_channels(client: Client, action_id: str = "c1") -> tuple[Frame, list[Frame]]:
    """CoreShowChannels: its response and its CoreShowChannel events, up to Complete."""
    client.send({"Action": "CoreShowChannels", "ActionID": action_id})
    first = await client.until("ActionID", action_id)
    rows = []
    while (frame := await client.frame())["Event"] != "CoreShowChannelsComplete":
        rows.append(frame)
    assert (frame["ActionID"], frame["EventList"], frame["ListItems"]) == (
        action_id,
        "Complete",
        str(len(rows)),
    )
    return first, rows


async def test_coreshowchannels_lists_the_open_channels_like_asterisk(
    server: AmiServer, client: Client
) -> None:
    first, rows = await _list_channels(client, "empty")
    assert first == {
        "Response": "Success",
        "ActionID": "empty",
        "EventList": "start",
        "Message": "Channels will follow",
    }
    assert rows == []
    frames = _ringing_call()
    await server.play(frames)
    _, rows = await _list_channels(client)
    caller = frames[0]
    assert [r["Channel"] for r in rows] == [
        caller["Channel"],
        "PJSIP/agent101-00000001",
        "PJSIP/agent102-00000002",
    ]
    assert {r["Linkedid"] for r in rows} == {caller["Uniqueid"]}
    assert list(rows[0])[:3] == ["Event", "ActionID", "Channel"]
    assert list(rows[0])[-4:] == ["Application", "ApplicationData", "Duration", "BridgeId"]
    assert (rows[0]["Application"], rows[0]["ChannelStateDesc"]) == ("Queue", "Ring")
    hangup = {"Event": "Hangup", "Privilege": "call,all", "Uniqueid": rows[1]["Uniqueid"]}
    await server.push([hangup])
    _, rows = await _list_channels(client, "c2")
    assert len(rows) == 2 and server.live_channels == {r["Uniqueid"]: r["Channel"] for r in rows}


async def test_getvar_reads_a_live_channel_and_errs_like_asterisk(
    server: AmiServer, client: Client
) -> None:
    frames = _ringing_call()
    await server.play(frames)
    name, linkedid = frames[0]["Channel"], frames[0]["Linkedid"]

    async def getvar(channel: str, variable: str = "") -> Frame:
        asked = {"Channel": channel, **({"Variable": variable} if variable else {})}
        client.send({"Action": "Getvar", "ActionID": "g", **asked})
        return await client.until("ActionID", "g")  # past the call's own events

    assert await getvar(name, "CHANNEL(linkedid)") == {
        "Response": "Success",
        "ActionID": "g",
        "Variable": "CHANNEL(linkedid)",
        "Value": linkedid,
    }
    assert (await getvar(name.lower(), "NOSUCHVAR"))["Value"] == ""
    assert await getvar("PJSIP/nope-1", "CHANNEL(linkedid)") == {
        "Response": "Error",
        "ActionID": "g",
        "Message": "No such channel",
    }
    assert (await getvar(name))["Message"] == "No variable specified"
    client.send({"Action": "Redirect", "Channel": name, "Context": "x", "Exten": "1"})
    assert (await client.frame())["Message"] == "Redirect successful"


async def test_a_restart_loses_every_channel_and_names_repeat(server: AmiServer) -> None:
    await server.play(_ringing_call())
    assert len(server.live_channels) == 3
    await server.restart(shutdown_event=False)  # a crash: no Shutdown, no Hangup
    assert server.live_channels == {}
    # After the restart Asterisk counts channels from 0 again: same name, another call.
    again = _ringing_call(CallFactory(start_epoch=1795400000))
    await server.play(again)
    c = await Client.connect(server)
    await c.login()
    await c.until("Event", "SuccessfulAuth")
    c.send({"Action": "Getvar", "Channel": "PJSIP/pstn-00000000", "Variable": "CHANNEL(linkedid)"})
    assert (await c.frame())["Value"] == again[0]["Linkedid"] == "1795400000.0"
    await c.close()


async def test_fully_booted_uptime_counts_from_the_last_restart() -> None:
    async with AmiServer(uptime=3600) as server:
        c = await Client.connect(server)
        await c.login()
        booted = await c.until("Event", "FullyBooted")
        assert 3600 <= int(booted["Uptime"]) < 3700 and booted["LastReload"] == booted["Uptime"]
        await server.restart()
        await c.close()
        c = await Client.connect(server)
        await c.login()
        assert int((await c.until("Event", "FullyBooted"))["Uptime"]) < 60
        await c.close()


# -- parsing and captures -----------------------------------------------------------------


def test_action_parser_byte_by_byte_with_crlf_and_bare_lf() -> None:
    stream = "Action: DBPut\r\nVal: Μαρία\r\n\r\n\r\nAction: Ping\nVariable: A=1\nVariable: B=2\n\n"
    parser = ActionParser()
    actions = [a for byte in stream.encode() for a in parser.feed(bytes([byte]))]
    assert actions == [
        {"Action": "DBPut", "Val": "Μαρία"},
        {"Action": "Ping", "Variable": "A=1,B=2"},
    ]


def test_action_parser_dumps_an_over_long_line_whatever_the_chunking() -> None:
    stream = b"Action: Ping\r\nX-Long: " + b"A" * 5000 + b"\r\nActionID: long\r\n\r\n"
    for size in (1, 100, len(stream)):
        parser = ActionParser()
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert [a for c in chunks for a in parser.feed(c)] == [
            {"Action": "Ping", "ActionID": "long"}
        ]


def test_load_capture_keeps_only_event_frames(tmp_path: Path) -> None:
    path = tmp_path / "x.ami"
    path.write_bytes(
        BANNER + b"Response: Success\r\nMessage: ok\r\n\r\nEvent: A\r\nX: 1\r\n\r\nEvent: B\r\n\r\n"
    )
    assert load_capture(path) == [b"Event: A\r\nX: 1\r\n\r\n", b"Event: B\r\n\r\n"]
    real = load_capture(CAPTURES / "agent.ami")
    assert real and all(f.startswith(b"Event: ") and f.endswith(b"\r\n\r\n") for f in real)


# -- call scripts -------------------------------------------------------------------------

CHANNEL_FIELDS = [
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Context",
    "Exten",
    "Uniqueid",
    "Linkedid",
]
DEST_FIELDS = [
    "DestChannel",
    "DestUniqueid",
    "DestLinkedid",
    "DestExten",
    "DestCallerIDNum",
]
EXTRA_FIELDS = {
    "DialBegin": ["DialString"],
    "DialState": ["DialStatus"],
    "DialEnd": ["DialStatus"],
    "BridgeEnter": ["BridgeUniqueid"],
    "BridgeLeave": ["BridgeUniqueid"],
    "Hangup": ["Cause", "Cause-txt"],
    "MessageWaiting": ["Mailbox", "Waiting", "New", "Old"],
}
USER_EVENT_FIELDS = {
    "FrontdeskCall": ["DDI", "Scenario", "Mailbox", "ForwardTo", "RingTime"],
    "FrontdeskFallback": ["DDI", "DialStatus", "Mailbox"],
    "FrontdeskCallEnd": ["DDI", "Scenario", "DialStatus", "VMStatus", "Answered", "AnsweredBy"],
}
WITHOUT_CHANNEL = {"Cdr", "DeviceStateChange", "BridgeCreate", "BridgeDestroy"}


def all_scripts(factory: CallFactory) -> dict[str, list[Frame]]:
    mobile = "+447700900123"
    moved_ringing, moved_after = factory.moved_answered("2100006", "+3069", "Ρένα", mobile=mobile)
    return {
        "agent": factory.agent_answered(
            "2100001", "+306912345678", "Μαρία", agents=["101", "102", "103"], answered_by_index=1
        ),
        "agent_short": factory.agent_answered("2100001", "+15555551234", "John", talk=False),
        "missed": factory.missed("2100002", "+79161234567", "Анна Каренина"),
        "voicemail": factory.voicemail_left("2100003", "+8613812345678", "王小明"),
        "fwd_hangup": factory.forward_no_answer("2100004", "+3021", "Νίκος", forward_to=mobile),
        "fwd_vm": factory.forward_no_answer(
            "2100004", "+74951234567", "Иван", forward_to=mobile, then="voicemail"
        ),
        "fwd_answered": factory.forward_answered("2100004", "+861", "李娜", forward_to=mobile),
        "closed": factory.closed("2100005", "+442079460000", "Jane Doe"),
        "moved": moved_ringing + moved_after,
    }


def required_fields(frame: Frame) -> list[str]:
    event = frame["Event"]
    fields = [] if event in WITHOUT_CHANNEL else list(CHANNEL_FIELDS)
    if event.startswith("Dial") or event.startswith("Agent"):
        fields += DEST_FIELDS
    fields += EXTRA_FIELDS.get(event, [])
    if event == "UserEvent":
        fields += USER_EVENT_FIELDS[frame["UserEvent"]]
    return fields


def test_every_frame_carries_the_headers_the_product_reads() -> None:
    for name, script in all_scripts(CallFactory()).items():
        for frame in script:
            assert list(frame)[:2] == ["Event", "Privilege"], (name, frame)
            missing = [f for f in required_fields(frame) if f not in frame]
            assert not missing, (name, frame["Event"], missing)
            if frame["Event"] == "MessageWaiting":
                assert frame["Mailbox"] == "1001@default" and frame["Waiting"] == "1"
            if frame["Event"] == "Cdr":
                assert "UniqueID" in frame and "Linkedid" not in frame


def test_one_linkedid_per_call_and_ids_unique_across_calls() -> None:
    seen: set[str] = set()
    for name, script in all_scripts(CallFactory()).items():
        caller = script[0]
        assert caller["Event"] == "Newchannel" and caller["Channel"].startswith("PJSIP/pstn-")
        assert (caller["Context"], caller["Linkedid"]) == ("from-pstn", caller["Uniqueid"])
        linked = {f[k] for f in script for k in ("Linkedid", "DestLinkedid") if k in f}
        assert linked == {caller["Uniqueid"]}, name
        ids = {f[k] for f in script for k in ("Uniqueid", "DestUniqueid") if k in f}
        assert all(f["UniqueID"] in ids for f in script if f["Event"] == "Cdr")
        assert not ids & seen, name
        seen |= ids


def test_user_events_frame_the_call() -> None:
    for name, script in all_scripts(CallFactory()).items():
        user = [(i, f) for i, f in enumerate(script) if f["Event"] == "UserEvent"]
        assert user[0][1]["UserEvent"] == "FrontdeskCall", name
        end_at, end = user[-1]
        assert end["UserEvent"] == "FrontdeskCallEnd" and end["Exten"] == "h"
        after = script[end_at + 1]
        assert (after["Event"], after["Channel"]) == ("Hangup", end["Channel"])


def test_scenario_outcomes() -> None:
    s = all_scripts(CallFactory())

    def ends(name: str) -> tuple[str, str, str]:
        end = next(f for f in s[name] if f.get("UserEvent") == "FrontdeskCallEnd")
        return end["Scenario"], end["DialStatus"], end["VMStatus"]

    def answered(name: str) -> tuple[str, str]:
        end = next(f for f in s[name] if f.get("UserEvent") == "FrontdeskCallEnd")
        return end["Answered"], end["AnsweredBy"]

    def dial_ends(name: str) -> list[tuple[str, str]]:
        return [(f["DestChannel"], f["DialStatus"]) for f in s[name] if f["Event"] == "DialEnd"]

    assert ends("agent") == ("agent", "ANSWER", "")
    assert [status for _, status in dial_ends("agent")] == ["CANCEL", "CANCEL", "ANSWER"]
    assert dial_ends("agent")[-1][0].startswith("PJSIP/agent102-")
    assert ends("missed") == ("agent", "CANCEL", "")
    assert {status for _, status in dial_ends("missed")} == {"CANCEL"}
    assert ends("voicemail") == ("voicemail", "", "SUCCESS")
    assert ends("fwd_hangup") == ("forward", "NOANSWER", "FAILED")
    assert ends("fwd_vm") == ("forward", "NOANSWER", "SUCCESS")
    assert ends("fwd_answered") == ("forward", "ANSWER", "")
    assert ends("closed") == ("closed", "", "FAILED")
    dial = next(f for f in s["fwd_vm"] if f["Event"] == "DialBegin")
    assert dial["DialString"] == "pstn/+447700900123"
    assert dial["DestChannel"].startswith("PJSIP/pstn-")
    fallback = [f for f in s["fwd_vm"] if f.get("UserEvent") == "FrontdeskFallback"]
    assert [(f["DialStatus"], f["Mailbox"]) for f in fallback] == [("NOANSWER", "1001")]
    waiting = [f["New"] for f in s["voicemail"] + s["fwd_vm"] if f["Event"] == "MessageWaiting"]
    assert waiting == ["1", "2"]  # the mailbox fills up across calls
    assert answered("agent") == ("agent", "PJSIP/agent102")
    assert answered("fwd_answered") == answered("moved") == ("forward", "+447700900123")
    assert answered("missed") == answered("fwd_vm") == answered("closed") == ("", "")
    assert ends("moved") == ("agent", "ANSWER", "")


def test_moved_call_leaves_the_queue_and_dials_the_mobile_after_the_redirect() -> None:
    ringing, after = CallFactory().moved_answered("2100001", "+3069", "Ρένα", mobile="+3069001")
    assert {f["Event"] for f in ringing} >= {"AgentCalled", "DialBegin"}
    assert not any(f["Event"] == "Hangup" for f in ringing)
    assert after[0]["Event"] == "QueueCallerLeave"
    dial = next(f for f in after if f["Event"] == "DialBegin")
    assert (dial["Context"], dial["Exten"], dial["DialString"]) == (
        "frontdesk-moved",
        "+3069001",
        "pstn/+3069001",
    )


def test_older_dialplan_scripts_have_no_answered_fields() -> None:
    script = CallFactory(answered_fields=False).agent_answered("2100001", "+1", "A")
    end = next(f for f in script if f.get("UserEvent") == "FrontdeskCallEnd")
    assert "Answered" not in end and "AnsweredBy" not in end
