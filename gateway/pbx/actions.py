"""AMI actions, typed: the one place in the product where AMI action headers are written.

The builders below return the frame of one action (panoramisk adds the ActionID and
writes the headers sorted, so the order here does not reach the wire). `Pbx` is what the
rest of the gateway acts on the phone system through: typed operations over an AMI link
(`AmiClient`, or a test double that records the frames), raising only `PbxUnavailable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar, runtime_checkable

from gateway.pbx.errors import AmiActionError
from gateway.pbx.translate import live_calls, member_interface, queue_members
from gateway.pbx.wire import Frame
from models.events import LiveChannel, QueueMember

Action = dict[str, str]
T = TypeVar("T")

# AstDB writes in flight at once (Pbx.db_write): Asterisk answers one session's actions in
# order, so this many outstanding keeps the socket busy both ways without a round trip
# per key, and bounds what is lost to an unanswered batch.
DB_WINDOW = 512
DB_TREE_TIMEOUT = 60.0  # a DBGetTree of 100,000 keys streams in a few seconds

# -- the actions -----------------------------------------------------------------------------


def ping() -> Action:
    return {"Action": "Ping"}


def logoff() -> Action:
    return {"Action": "Logoff"}


def events(on: bool) -> Action:
    """This session's events on or off (the standby gateways log in without them)."""
    return {"Action": "Events", "EventMask": "on" if on else "off"}


def core_show_channels() -> Action:
    """A list action: one CoreShowChannel event per live channel, then the Complete event."""
    return {"Action": "CoreShowChannels"}


def db_put(family: str, key: str, value: str) -> Action:
    return {"Action": "DBPut", "Family": family, "Key": key, "Val": value}


def db_get(family: str, key: str) -> Action:
    """A list action: a DBGetResponse event carries the value."""
    return {"Action": "DBGet", "Family": family, "Key": key}


def db_del(family: str, key: str) -> Action:
    return {"Action": "DBDel", "Family": family, "Key": key}


def db_get_tree(family: str, key: str = "") -> Action:
    """A list action: one DBGetTreeResponse event per entry under family/key (the whole
    path segment: key `scenario` lists scenario/..., never scenarios/...), each with `Key`
    the full path (`/family/key/...`) and `Val`, then DBGetTreeComplete. Asterisk 16.28+;
    needs the `system` (or `reporting`) write class."""
    return {"Action": "DBGetTree", "Family": family, **({"Key": key} if key else {})}


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


def originate_agent_first(
    interface: str, number: str, context: str, caller_name: str, caller_number: str
) -> Action:
    """A scheduled call: ring the agent's own device (their queue member interface, e.g.
    PJSIP/207 or Local/agent7@agents) first; once they answer, `number@context` (the
    dialplan's outbound path, frontdesk-callback) rings the customer. Async, as above."""
    return {
        "Action": "Originate",
        "Channel": interface,
        "Context": context,
        "Exten": number,
        "Priority": "1",
        "CallerID": f'"{caller_name}" <{caller_number}>',
        "Async": "true",
    }


def queue_add(queue: str, interface: str, member_name: str, paused: bool = False) -> Action:
    """Make `interface` a (dynamic) member of `queue`: an agent signs in."""
    return {
        "Action": "QueueAdd",
        "Queue": queue,
        "Interface": interface,
        "MemberName": member_name,
        "Paused": "true" if paused else "false",
    }


def queue_remove(queue: str, interface: str) -> Action:
    """An agent signs out."""
    return {"Action": "QueueRemove", "Queue": queue, "Interface": interface}


def queue_pause(queue: str | None, interface: str, paused: bool, reason: str = "") -> Action:
    """Pause (with a reason) or unpause a member; without a queue, in every queue."""
    action = {"Action": "QueuePause", "Interface": interface, "Paused": str(paused).lower()}
    if queue:
        action["Queue"] = queue
    if paused and reason:
        action["Reason"] = reason
    return action


def queue_status(queue: str | None = None) -> Action:
    """A list action: QueueParams, then one QueueMember row per member (and QueueEntry
    rows for waiting callers), then QueueStatusComplete."""
    return {"Action": "QueueStatus", **({"Queue": queue} if queue else {})}


def setvar(channel: str, variable: str, value: str) -> Action:
    """Set a variable on a live channel (a transfer's target, read by the dialplan)."""
    return {"Action": "Setvar", "Channel": channel, "Variable": variable, "Value": value}


# ChanSpy's options (app_chanspy): q = no beep and no channel name spoken to the
# supervisor, E = leave when the spied-on channel hangs up, w = whisper: the supervisor's
# voice reaches the spied-on channel (the agent) and nobody else. The target is the full
# channel name, so its prefix match selects exactly that channel.
SPY_LISTEN = "qE"
SPY_WHISPER = "qEw"


def originate_spy(
    supervisor_interface: str, target_channel: str, whisper: bool, caller_name: str = ""
) -> Action:
    """Ring the supervisor's own device; once answered it runs ChanSpy on the agent's
    channel (listen only, or whisper to the agent). Async: Asterisk answers at once."""
    options = SPY_WHISPER if whisper else SPY_LISTEN
    return {
        "Action": "Originate",
        "Channel": supervisor_interface,
        "Application": "ChanSpy",
        "Data": f"{target_channel},{options}",
        "CallerID": f'"{caller_name}" <>',
        "Async": "true",
    }


# -- the typed interface ---------------------------------------------------------------------


class ActionSender(Protocol):
    """Sends one action frame and returns the answer's headers (AmiClient.send_action)."""

    async def send_action(self, action: Action, timeout: float = 5.0) -> Frame: ...


class AmiLink(ActionSender, Protocol):
    """An AMI link that can also run list actions (AmiClient)."""

    async def send_list_action(self, action: Action, timeout: float = 10.0) -> list[Frame]: ...


@runtime_checkable
class BulkLink(Protocol):
    """A link that pipelines many actions itself and reads long lists lean (AmiClient,
    through gateway/pbx/pipeline.py)."""

    async def send_pipelined(
        self,
        actions: Iterable[Action],
        window: int,
        timeout: float = 5.0,
        keep: Callable[[Frame], bool] | None = None,
    ) -> list[Frame]: ...

    async def read_list(
        self, action: Action, timeout: float, project: Callable[[Frame], T | None]
    ) -> list[T]: ...


_DBDEL_GONE = "Database entry could not be deleted"  # db.c: no such key (or a failed delete)


def _refused(answer: Frame) -> bool:
    return answer.get("Response") == "Error"


async def _side_by_side(link: ActionSender, actions: Iterator[Action], window: int) -> list[Frame]:
    """The answers of `actions`, sent by `window` senders each waiting for its answer."""
    answers: list[Frame] = []

    async def sender() -> None:
        for action in actions:  # shared: each action goes to one sender
            answers.append(await link.send_action(action))

    await asyncio.gather(*(sender() for _ in range(window)))
    return answers


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

    async def db_del(self, family: str, key: str) -> bool:
        """True when deleted, False when there was no such entry."""
        return await self._unless("could not be deleted", db_del(family, key))

    async def db_tree(
        self, family: str, key: str = "", *, within_key: bool = False
    ) -> dict[str, str]:
        """Every AstDB entry under family (and key: a whole path segment), by its key
        within the family (`scenario/2100001`), or `within_key` within family/key
        (`2100001`), in one DBGetTree. Each entry goes into the dict as it arrives: a
        tree of 300,000 keys is never held as 300,000 frames."""
        action = db_get_tree(family, key)
        prefix = f"/{family}/{key}/" if within_key and key else f"/{family}/"
        cut = len(prefix)
        tree: dict[str, str] = {}

        def take(item: Frame) -> None:
            if item.get("Event") == "DBGetTreeResponse":
                path = item.get("Key", "")
                if path.startswith(prefix):
                    tree[path[cut:]] = item.get("Val", "")

        link = self._link
        if isinstance(link, BulkLink):
            await link.read_list(action, DB_TREE_TIMEOUT, take)
        else:
            for item in await link.send_list_action(action, DB_TREE_TIMEOUT):
                take(item)
        return tree

    async def db_write(
        self, family: str, changes: Iterable[tuple[str, str | None]], window: int = DB_WINDOW
    ) -> int:
        """Put (value) or delete (None) each key, pipelined: up to `window` actions
        unanswered at once, not one round trip each. `changes` is read lazily, as each
        action is sent; a key already gone counts as deleted. Returns how many were sent;
        raises PbxUnavailable when the link is lost (at once) or when any was refused
        (once all were tried)."""
        sent = 0

        def frames() -> Iterator[Action]:
            nonlocal sent
            for key, value in changes:
                sent += 1
                yield db_del(family, key) if value is None else db_put(family, key, value)

        link = self._link
        if isinstance(link, BulkLink):
            answers = await link.send_pipelined(frames(), window, keep=_refused)
        else:  # a link that sends one at a time: `window` senders side by side
            answers = await _side_by_side(link, frames(), window)
        refused = [
            a.get("Message", "error")
            for a in answers
            if a.get("Response") == "Error" and a.get("Message") != _DBDEL_GONE
        ]
        if refused:
            raise AmiActionError(f"{len(refused)} AstDB writes refused: {refused[0]}")
        return sent

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

    async def originate_agent_first(
        self, interface: str, number: str, context: str, caller_name: str, caller_number: str
    ) -> None:
        """See `originate_agent_first` (the action): returns once Asterisk has queued it."""
        await self._send(
            originate_agent_first(interface, number, context, caller_name, caller_number)
        )

    async def live_calls(self) -> dict[str, list[LiveChannel]]:
        """The calls the PBX has right now, by Linkedid (CoreShowChannels)."""
        return live_calls(await self._link.send_list_action(core_show_channels()))

    # Queue members (agents signing in and out, pausing). Asterisk refuses an add of a
    # member already there and a remove of one not there: the wanted state holds, so
    # these return False instead of raising.

    async def queue_add(
        self, queue: str, interface: str, member_name: str, paused: bool = False
    ) -> bool:
        """True when added, False when it was a member already."""
        return await self._unless("Already there", queue_add(queue, interface, member_name, paused))

    async def queue_remove(self, queue: str, interface: str) -> bool:
        """True when removed, False when it was no member (a static member cannot be
        removed: that stays a PbxUnavailable)."""
        return await self._unless("Not there", queue_remove(queue, interface))

    async def queue_pause(
        self, queue: str | None, interface: str, paused: bool, reason: str = ""
    ) -> None:
        await self._send(queue_pause(queue, interface, paused, reason))

    async def queue_members(self, queue: str | None = None) -> list[QueueMember]:
        """Every member of `queue` (or of every queue) as the PBX has it now."""
        return queue_members(await self._link.send_list_action(queue_status(queue)))

    async def _unless(self, refusal: str, action: Action) -> bool:
        try:
            await self._send(action)
        except AmiActionError as exc:
            if refusal in str(exc):
                return False
            raise
        return True

    # A live call's own channels (transfers, listening in).

    async def setvar(self, channel: str, variable: str, value: str) -> None:
        await self._send(setvar(channel, variable, value))

    async def originate_spy(
        self, supervisor_interface: str, target_channel: str, whisper: bool, caller_name: str = ""
    ) -> None:
        """See `originate_spy` (the action): returns once Asterisk has queued it."""
        await self._send(originate_spy(supervisor_interface, target_channel, whisper, caller_name))

    async def member_channel(self, linkedid: str, interface: str) -> str | None:
        """The channel of call `linkedid` that the PBX opened to queue member `interface`
        (e.g. PJSIP/207-0000001a, or the ;1 half of a Local member), listed by the PBX
        now; None when the call has no such channel."""
        names = [
            c.channel
            for c in (await self.live_calls()).get(linkedid, [])
            if member_interface(c.channel) == interface
        ]
        return next((n for n in names if not n.endswith(";2")), None)
