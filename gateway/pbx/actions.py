"""AMI actions, typed: the one place in the product where AMI action headers are written.

The builders below return the frame of one action (panoramisk adds the ActionID and
writes the headers sorted, so the order here does not reach the wire). `Pbx` is what the
rest of the gateway acts on the phone system through: typed operations over an AMI link
(`AmiClient`, or a test double that records the frames), raising only `PbxUnavailable`.
"""

from __future__ import annotations

from typing import Protocol

from gateway.pbx.errors import AmiActionError
from gateway.pbx.translate import live_calls
from gateway.pbx.wire import Frame
from models.events import LiveChannel

Action = dict[str, str]

# -- the actions -----------------------------------------------------------------------------


def ping() -> Action:
    return {"Action": "Ping"}


def logoff() -> Action:
    return {"Action": "Logoff"}


def core_show_channels() -> Action:
    """A list action: one CoreShowChannel event per live channel, then the Complete event."""
    return {"Action": "CoreShowChannels"}


def db_put(family: str, key: str, value: str) -> Action:
    return {"Action": "DBPut", "Family": family, "Key": key, "Val": value}


def db_get(family: str, key: str) -> Action:
    """A list action: a DBGetResponse event carries the value."""
    return {"Action": "DBGet", "Family": family, "Key": key}


def getvar(channel: str, variable: str) -> Action:
    return {"Action": "Getvar", "Channel": channel, "Variable": variable}


def redirect(channel: str, context: str, exten: str, priority: int = 1) -> Action:
    return {
        "Action": "Redirect",
        "Channel": channel,
        "Context": context,
        "Exten": exten,
        "Priority": str(priority),
    }


def originate_callback(
    first: str, then: str, context: str, caller_name: str, caller_number: str
) -> Action:
    """Ring `first` through the Local channel `first@context`; once it answers, the
    dialplan's `then@context` connects the other party. Async: Asterisk answers at once
    and reports the outcome later (an OriginateResponse nobody waits for)."""
    return {
        "Action": "Originate",
        "Channel": f"Local/{first}@{context}",
        "Context": context,
        "Exten": then,
        "Priority": "1",
        "CallerID": f'"{caller_name}" <{caller_number}>',
        "Async": "true",
    }


# -- the typed interface ---------------------------------------------------------------------


class ActionSender(Protocol):
    """Sends one action frame and returns the answer's headers (AmiClient.send_action)."""

    async def send_action(self, action: Action, timeout: float = 5.0) -> Frame: ...


class AmiLink(ActionSender, Protocol):
    """An AMI link that can also run list actions (AmiClient)."""

    async def send_list_action(self, action: Action, timeout: float = 10.0) -> list[Frame]: ...


class Pbx:
    """What the gateway can ask of the phone system. Every failure is a `PbxUnavailable`:
    not connected, no answer in time, or refused by Asterisk."""

    def __init__(self, link: AmiLink) -> None:
        self._link = link

    async def _send(self, action: Action) -> Frame:
        reply = await self._link.send_action(action)
        if reply.get("Response") == "Error":  # AmiClient raises this itself; doubles may not
            raise AmiActionError(f"{action['Action']}: {reply.get('Message', 'error')}")
        return reply

    async def db_put(self, family: str, key: str, value: str) -> None:
        await self._send(db_put(family, key, value))

    async def db_get(self, family: str, key: str) -> str | None:
        """The AstDB value; None when there is no such entry (Asterisk refuses the get)."""
        try:
            items = await self._link.send_list_action(db_get(family, key))
        except AmiActionError:
            return None
        return next((i.get("Val", "") for i in items if i.get("Event") == "DBGetResponse"), None)

    async def getvar(self, channel: str, variable: str) -> str | None:
        """The channel's variable (or function); None when the PBX has no such channel."""
        try:
            reply = await self._send(getvar(channel, variable))
        except AmiActionError:
            return None  # "No such channel": the call is gone
        return reply.get("Value", "")

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1) -> None:
        await self._send(redirect(channel, context, exten, priority))

    async def originate_callback(
        self, first: str, then: str, context: str, caller_name: str, caller_number: str
    ) -> None:
        """See `originate_callback` (the action): returns once Asterisk has queued it."""
        await self._send(originate_callback(first, then, context, caller_name, caller_number))

    async def live_calls(self) -> dict[str, list[LiveChannel]]:
        """The calls the PBX has right now, by Linkedid (CoreShowChannels)."""
        return live_calls(await self._link.send_list_action(core_show_channels()))
