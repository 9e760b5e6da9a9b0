"""gateway/pbx/panoramisk_adapter.py subclasses panoramisk 1.4 and overrides its internals.
This test pins what it relies on: an upgrade of panoramisk fails here first, with the
internal that changed named, rather than somewhere in the AMI link at run time."""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
from collections.abc import Callable
from typing import Any

import pytest
from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from gateway.pbx import panoramisk_adapter
from gateway.pbx.panoramisk_adapter import AmiManager, AmiProtocol
from gateway.pbx.wire import FrameParser


def params(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_pinned_version_is_installed() -> None:
    assert importlib.metadata.version("panoramisk") == panoramisk_adapter.PANORAMISK_VERSION
    assert panoramisk_adapter.PANORAMISK_VERSION == "1.4"


@pytest.mark.parametrize(
    ("owner", "name", "expected"),
    [
        (Manager, "__init__", ["self", "config"]),
        (Manager, "connection_made", ["self", "f"]),
        (Manager, "login", ["self", "future"]),
        (Manager, "connection_lost", ["self", "exc"]),
        (Manager, "ping", ["self"]),
        (Manager, "connect", ["self", "run_forever", "on_startup", "on_shutdown"]),
        (Manager, "close", ["self"]),
        (Manager, "send_action", ["self", "action", "as_list", "kwargs"]),
        (AMIProtocol, "connection_made", ["self", "transport"]),
        (AMIProtocol, "data_received", ["self", "data"]),
        (AMIProtocol, "handle_message", ["self", "message"]),
        (AMIProtocol, "send", ["self", "data", "as_list"]),
        (Action, "__init__", ["self", "args", "kwargs"]),
        (Message, "__init__", ["self", "headers", "content"]),
    ],
    ids=lambda v: getattr(v, "__name__", v) if not isinstance(v, list) else "",
)
def test_the_internals_used_have_the_signatures_relied_on(
    owner: type, name: str, expected: list[str]
) -> None:
    assert params(getattr(owner, name)) == expected
    # What we override in our subclasses is panoramisk's own method of that name.
    if name in {"connection_made", "login", "connection_lost", "ping"} and owner is Manager:
        assert getattr(AmiManager, name) is not getattr(Manager, name)
    if name == "data_received":
        assert AmiProtocol.data_received is not AMIProtocol.data_received


async def test_a_manager_has_the_attributes_and_config_relied_on() -> None:
    config = {
        "loop": asyncio.get_running_loop(),
        "host": "127.0.0.1",
        "port": 5038,
        "username": "frontdesk",
        "secret": "s",
        "ping_delay": 0.5,
        "ping_interval": 0.5,
        "reconnect_timeout": 0.25,
        "protocol_factory": AMIProtocol,
        "on_login": lambda manager: None,
        "events": "on",
    }
    plain = Manager(**config)
    for attribute in ("protocol", "authenticated", "pinger", "loop", "awaiting_actions"):
        assert hasattr(plain, attribute), attribute
    assert plain._connected is False
    # panoramisk int()s its timers; ours keeps them as given (a sub-second ping stays so).
    assert (plain.ping_interval, plain.reconnect_timeout) == (0, 0)
    assert set(config) - {"loop"} <= set(Manager.defaults) | {"username", "secret", "on_login"}

    class Owner:
        def next_backoff(self) -> float:
            return 0.25

        def on_disconnected(self) -> None:
            pass

    ours = AmiManager(Owner(), 1.0, **config)
    assert (ours.ping_delay, ours.ping_interval, ours.reconnect_timeout) == (0.5, 0.5, 0.25)
    assert ours.config["username"] == "frontdesk"
    ours.awaiting_actions.append(Action({"Action": "Redirect"}))
    ours.forget_unanswered()
    assert not ours.awaiting_actions


Frame = dict[str, str]
Script = Callable[[str], list[Frame]]


def encode(frame: Frame) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in frame.items()).encode() + b"\r\n"


class Peer:
    """The transport of one connection, answering each action written as `script` says
    (called with the action's ActionID), on the next turn of the loop."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.protocol: AmiProtocol | None = None
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)
        action_id = data.decode().split("ActionID: ", 1)[1].split("\r\n", 1)[0]
        for frame in self.script(action_id):
            asyncio.get_running_loop().call_soon(self.feed, {"ActionID": action_id, **frame})

    def feed(self, frame: Frame) -> None:
        assert self.protocol is not None
        self.protocol.data_received(encode(frame))

    def close(self) -> None:
        pass


def connected(script: Script) -> tuple[AmiManager, Peer, list[Frame]]:
    """A manager on a protocol already connected to a scripted peer."""
    events: list[Frame] = []
    peer = Peer(script)
    peer.protocol = protocol = AmiProtocol(FrameParser(65536), events.append)
    protocol.connection_made(peer)
    assert protocol.responses == {} and protocol.transport is peer
    manager = AmiManager.__new__(AmiManager)  # only the request path: no connect, no login
    manager.protocol = protocol
    return manager, peer, events


async def test_an_async_originate_returns_on_its_first_answer() -> None:
    """Asterisk says "queued" at once and sends OriginateResponse only when the phone
    answers (or gives up): the request must not wait for that."""
    manager, peer, events = connected(
        lambda _: [{"Response": "Success", "Message": "Originate successfully queued"}]
    )
    [reply] = await asyncio.wait_for(
        manager.request({"Action": "Originate", "Async": "true"}, as_list=False), 1.0
    )
    assert reply["Response"] == "Success"
    # The OriginateResponse that comes later is an event like any other.
    [written] = peer.written
    action_id = written.decode().split("ActionID: ", 1)[1].split("\r\n", 1)[0]
    peer.feed({"Event": "OriginateResponse", "ActionID": action_id, "Response": "Failure"})
    assert events[-1]["Event"] == "OriginateResponse"


async def test_a_list_action_collects_its_events_until_complete() -> None:
    manager, _, events = connected(
        lambda _: [
            {"Response": "Success", "EventList": "start", "Message": "Channels will follow"},
            {"Event": "CoreShowChannel", "Channel": "PJSIP/pstn-00000000"},
            {"Event": "CoreShowChannelsComplete", "EventList": "Complete"},
        ]
    )
    replies = await asyncio.wait_for(manager.request({"Action": "CoreShowChannels"}, None), 1.0)
    assert [r.get("Event", r.get("Response")) for r in replies] == [
        "Success",
        "CoreShowChannel",
        "CoreShowChannelsComplete",
    ]
    assert events == []  # answers to our action never reach the event handler
