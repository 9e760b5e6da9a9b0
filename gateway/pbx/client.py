"""AMI source: the connection, the stream of event frames, and actions sent and answered.

panoramisk (behind gateway/pbx/panoramisk_adapter.py, the one module that imports it) keeps
the action/response bookkeeping; we frame the stream (FrameParser: split UTF-8 characters
survive), reconnect with a doubling backoff, and drop and rebuild a link whose Ping is not
answered within ping_timeout.

Each login also reads the FullyBooted event Asterisk sends right after it: its Uptime tells
a PBX restart (every channel gone, channel names counted from -00000000 again) from a mere
reconnect to the same running PBX.

Errors: AmiUnavailable (not connected, no answer in time) and AmiActionError (refused) are
both PbxUnavailable, the one error callers outside gateway/pbx catch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.pbx import actions, pipeline
from gateway.pbx.actions import Action
from gateway.pbx.errors import AmiActionError, AmiUnavailable, PbxUnavailable
from gateway.pbx.panoramisk_adapter import AmiManager, AmiProtocol
from gateway.pbx.wire import Frame, FrameParser
from models.settings import AmiSettings

T = TypeVar("T")
log = logging.getLogger(__name__)

FrameHandler = Callable[[Frame], None]
ConnectedHook = Callable[[], Awaitable[None]]

FULLY_BOOTED = "FullyBooted"
# What a login without our events asks for (a standby): the `system` class, for FullyBooted,
# so that a standby which leads later tells a PBX restart from a reconnect all the same.
STANDBY_EVENTS = "system"
# Uptime is whole seconds and our clock is not Asterisk's: boot times this close are one run.
_SAME_RUN_SLACK = 3.0


@dataclass(frozen=True, slots=True)
class PbxRun:
    """What FullyBooted said at this login: how long Asterisk has been up, and whether it
    restarted since our previous login (None: no previous login to compare with)."""

    uptime: int
    restarted: bool | None


class AmiClient:
    """Connects, logs in, keeps the link alive, hands every event frame to `on_event`."""

    def __init__(
        self,
        settings: AmiSettings,
        on_event: FrameHandler,
        wanted_events: frozenset[str] | None = None,
        on_connected: ConnectedHook | None = None,
        consuming: bool = True,
    ) -> None:
        self.settings = settings
        # Whether this session takes the PBX's events: a standby gateway (another leads)
        # logs in for actions only, and turns events on when it takes the lead.
        self.consuming = consuming
        self._on_event = on_event
        self._wanted = wanted_events
        self._on_connected = on_connected
        self._backoff = settings.reconnect_min
        self._tasks: set[asyncio.Task[Any]] = set()
        self.connected = asyncio.Event()
        self.parsers: list[FrameParser] = []
        self._manager: AmiManager | None = None
        self._clock = time.time
        self._booted_at: float | None = None  # Asterisk's start, by our clock, last we heard
        self._run: asyncio.Future[PbxRun] | None = None  # this connection's FullyBooted
        # Whether this connection's login asked for system events (FullyBooted): a
        # standby's login does (STANDBY_EVENTS), an AMI user without them gets none.
        self._login_events = True

    def next_backoff(self) -> float:
        delay = self._backoff
        self._backoff = min(self._backoff * 2, self.settings.reconnect_max)
        return delay

    def _protocol(self) -> AmiProtocol:
        wanted = None if self._wanted is None else self._wanted | {FULLY_BOOTED}
        parser = FrameParser(self.settings.max_frame_bytes, wanted)
        self.parsers.append(parser)
        del self.parsers[:-1]  # stats of the live connection only
        self._run = asyncio.get_running_loop().create_future()
        return AmiProtocol(parser, self._on_frame)

    def _on_frame(self, frame: Frame) -> None:
        if frame.get("Event") == FULLY_BOOTED:
            self._fully_booted(frame)
        if self.consuming:  # events already on their way when we stopped taking them
            self._on_event(frame)

    def want_events(self, on: bool) -> None:
        """Whether the next login asks for events (and frames are handed on meanwhile)."""
        self.consuming = on
        if self._manager is not None:
            self._manager.config["events"] = "on" if on else STANDBY_EVENTS

    async def consume(self, on: bool) -> None:
        """Take the PBX's events on this session from now on, or stop taking them. Raises
        PbxUnavailable when not connected; the next login asks for what was set here."""
        self.want_events(on)
        await self.send_action(actions.events(on))

    def _fully_booted(self, frame: Frame) -> None:
        try:
            uptime = int(frame.get("Uptime", ""))
        except ValueError:
            return  # an Asterisk too old to say
        booted_at = self._clock() - uptime
        previous, self._booted_at = self._booted_at, booted_at
        restarted = None if previous is None else booted_at > previous + _SAME_RUN_SLACK
        if self._run is not None and not self._run.done():
            self._run.set_result(PbxRun(uptime, restarted))

    async def pbx_run(self, timeout: float) -> PbxRun | None:
        """This login's FullyBooted, waited for up to `timeout` (None if it did not come:
        Asterisk still booting, or an AMI user without the `system` read class)."""
        run = self._run
        if run is None or not self._login_events:  # no events: FullyBooted never comes
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(run), timeout)
        except TimeoutError:
            return None

    async def start(self) -> None:
        s = self.settings
        self._manager = AmiManager(
            self,
            s.ping_timeout,
            loop=asyncio.get_running_loop(),
            host=s.host,
            port=s.port,
            username=s.username,
            secret=s.secret,
            ping_delay=s.ping_interval,
            ping_interval=s.ping_interval,
            reconnect_timeout=s.reconnect_min,
            protocol_factory=self._protocol,
            on_login=self._logged_in,
            events="on" if self.consuming else STANDBY_EVENTS,
        )
        self._manager.connect()

    def _logged_in(self, manager: AmiManager) -> None:
        log.info(
            "AMI logged in to %s:%s as %s",
            self.settings.host,
            self.settings.port,
            self.settings.username,
        )
        self._backoff = self.settings.reconnect_min
        self._login_events = manager.login_events in ("on", STANDBY_EVENTS)
        manager.forget_unanswered()  # never replay an action to a channel name of old
        self.connected.set()
        task = asyncio.ensure_future(self._after_login(manager.login_events == "on"))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def _after_login(self, asked: bool) -> None:
        if asked != self.consuming:
            # The lead changed while the Login was on its way: the session must take (or
            # stop taking) the events before anyone syncs calls on it.
            try:
                await self.consume(self.consuming)
            except PbxUnavailable as exc:  # the link went again: the next login asks right
                log.warning("setting this login's events failed (%s)", exc)
                return
        if self._on_connected is not None:
            await self._on_connected()

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("AMI on-connect hook failed", exc_info=task.exception())

    def on_disconnected(self) -> None:
        if self.connected.is_set():
            log.warning("AMI connection lost")
        self.connected.clear()

    async def send_action(self, action: Action, timeout: float = 5.0) -> Frame:
        """Send one action and return Asterisk's response headers; raise on error."""
        # One answer, always: lists go through send_list_action. (panoramisk would guess a
        # list from some answers and wait for events that never come: an async Originate
        # "successfully queued", QueueAdd's "Added interface to queue".)
        messages = await self._request(action, timeout, as_list=False)
        return messages[0]

    async def send_list_action(self, action: Action, timeout: float = 10.0) -> list[Frame]:
        """Send a list action (CoreShowChannels, DBGet...) and return its list items: every
        event after the response, up to but without the closing `...Complete` event."""
        messages = await self._request(action, timeout, as_list=None)
        return [m for m in messages[1:] if not m.get("Event", "").endswith("Complete")]

    async def send_pipelined(
        self,
        actions: Iterable[Action],
        window: int,
        timeout: float = 5.0,
        keep: Callable[[Frame], bool] | None = None,
    ) -> list[Frame]:
        """Send many single-answer actions with up to `window` unanswered at once; their
        responses in order (errors included: the caller decides), or those `keep` takes."""
        route = self._route("bulk actions")
        return await pipeline.send_all(route, actions, window, timeout, keep)

    async def read_list(
        self, action: Action, timeout: float, project: Callable[[Frame], T | None]
    ) -> list[T]:
        """send_list_action for long lists (DBGetTree of the whole AstDB family), each item
        as `project` makes it as it arrives (None: not kept)."""
        route = self._route(action.get("Action", ""))
        return await pipeline.read_list(route, action, timeout, project)

    def _route(self, what: str) -> AmiProtocol:
        manager = self._manager
        protocol = None if manager is None else manager.protocol
        if protocol is None or not self.connected.is_set():
            raise AmiUnavailable(f"AMI not connected; {what} not sent")
        return protocol

    async def _request(self, action: Action, timeout: float, as_list: bool | None) -> list[Frame]:
        """The response and, for a list, its events (panoramisk collects them by ActionID
        until the `...Complete` event); raises on an error response."""
        manager = self._manager
        if manager is None or not self.connected.is_set() or not manager.ready:
            raise AmiUnavailable(f"AMI not connected; {action.get('Action')} not sent")
        try:
            messages = await asyncio.wait_for(manager.request(action, as_list), timeout)
        except TimeoutError as exc:
            raise AmiUnavailable(f"AMI did not answer {action.get('Action')}") from exc
        if messages[0].get("Response") == "Error":
            raise AmiActionError(f"{action.get('Action')}: {messages[0].get('Message', 'error')}")
        return messages

    async def stop(self) -> None:
        manager = self._manager
        if manager is None:
            return
        await manager.stop(logoff=self.connected.is_set(), timeout=1.0)
        self.connected.clear()
        for task in list(self._tasks):
            task.cancel()
