"""AMI source: panoramisk for the connection and actions, our framing for the stream.

panoramisk 1.4 decodes each TCP chunk on its own (losing split UTF-8 characters), reconnects
at a fixed pace and never notices a silent peer. We keep its action/response bookkeeping
and replace those three: FrameParser for the bytes, doubling backoff for reconnects, and a
Ping that must be answered within ping_timeout or the link is dropped and rebuilt.

Each login also reads the FullyBooted event Asterisk sends right after it: its Uptime tells
a PBX restart (every channel gone, channel names counted from -00000000 again) from a mere
reconnect to the same running PBX.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from gateway.pbx.errors import PbxUnavailable
from gateway.pbx.wire import Frame, FrameParser
from models.settings import AmiSettings

log = logging.getLogger(__name__)

FrameHandler = Callable[[Frame], None]
ConnectedHook = Callable[[], Awaitable[None]]

FULLY_BOOTED = "FullyBooted"
# Uptime is whole seconds and our clock is not Asterisk's: boot times this close are one run.
_SAME_RUN_SLACK = 3.0


@dataclass(frozen=True, slots=True)
class PbxRun:
    """What FullyBooted said at this login: how long Asterisk has been up, and whether it
    restarted since our previous login (None: no previous login to compare with)."""

    uptime: int
    restarted: bool | None


class AmiUnavailable(PbxUnavailable):
    """Asterisk is not connected (or did not answer in time); the action was not sent."""


class AmiActionError(PbxUnavailable):
    """Asterisk answered the action with an error."""


class _Protocol(AMIProtocol):
    """panoramisk's protocol with our incremental, UTF-8-safe framing."""

    def __init__(self, parser: FrameParser, on_event: FrameHandler) -> None:
        self.parser = parser
        self.on_event = on_event

    def data_received(self, data: bytes) -> None:
        for frame in self.parser.feed(data):
            # Answers to our actions go to panoramisk; every event (even one with a Response
            # header, like OriginateResponse for an action nobody waits on) goes to us.
            is_answer = "Event" not in frame and "Response" in frame
            if is_answer or frame.get("ActionID", "\0") in self.responses:
                self.handle_message(Message(frame))
                continue
            try:
                self.on_event(frame)
            except Exception:
                # One bad frame must never stop the stream: log it and go on.
                log.exception("AMI event %s could not be handled", frame.get("Event"))


class _Manager(Manager):
    """Manager with doubling reconnect backoff, an answered-Ping keep-alive and clean close."""

    def __init__(self, client: AmiClient, **config: Any) -> None:
        super().__init__(**config)
        # panoramisk int()s its timers, so a sub-second setting would become 0 (a Ping storm).
        self.ping_delay = float(config["ping_delay"])
        self.ping_interval = float(config["ping_interval"])
        self.reconnect_timeout = float(config["reconnect_timeout"])
        self._client = client
        self.closing = False

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if self.closing:
            return
        if f.exception() is not None:
            self.reconnect_timeout = self._client.next_backoff()
            log.warning(
                "AMI connect failed (%s); retry in %.1fs", f.exception(), self.reconnect_timeout
            )
            self._connected = False  # panoramisk then logs one line, not a traceback
        super().connection_made(f)

    def login(self, future: asyncio.Future[Any]) -> bool:
        ok = bool(super().login(future))
        if not ok:
            log.error(
                "AMI login refused for user %r; check ami.username/ami.secret",
                self._client.settings.username,
            )
            if self.protocol is not None:
                self.protocol.transport.close()  # retry later, with backoff
        return ok

    def connection_lost(self, exc: Exception | None) -> None:
        self._client.on_disconnected()
        if self.closing:
            return
        self.reconnect_timeout = self._client.next_backoff()
        super().connection_lost(exc)

    def ping(self) -> None:
        self.pinger = self.loop.call_later(self.ping_interval, self.ping)
        if self.protocol is None or not self.authenticated:
            return
        pong = self.protocol.send({"Action": "Ping"})
        self.loop.call_later(self._client.settings.ping_timeout, self._check_pong, pong)

    def _check_pong(self, pong: asyncio.Future[Any]) -> None:
        if not pong.done() and self.protocol is not None and not self.closing:
            log.warning("AMI did not answer Ping; reconnecting")
            self.protocol.transport.close()


def _headers(message: Message) -> dict[str, str]:
    return {str(k): str(v) for k, v in message.items() if k != "content"}


class AmiClient:
    """Connects, logs in, keeps the link alive, hands every event frame to `on_event`."""

    def __init__(
        self,
        settings: AmiSettings,
        on_event: FrameHandler,
        wanted_events: frozenset[str] | None = None,
        on_connected: ConnectedHook | None = None,
    ) -> None:
        self.settings = settings
        self._on_event = on_event
        self._wanted = wanted_events
        self._on_connected = on_connected
        self._backoff = settings.reconnect_min
        self._tasks: set[asyncio.Task[Any]] = set()
        self.connected = asyncio.Event()
        self.parsers: list[FrameParser] = []
        self._manager: _Manager | None = None
        self._clock = time.time
        self._booted_at: float | None = None  # Asterisk's start, by our clock, last we heard
        self._run: asyncio.Future[PbxRun] | None = None  # this connection's FullyBooted

    def next_backoff(self) -> float:
        delay = self._backoff
        self._backoff = min(self._backoff * 2, self.settings.reconnect_max)
        return delay

    def _protocol(self) -> _Protocol:
        wanted = None if self._wanted is None else self._wanted | {FULLY_BOOTED}
        parser = FrameParser(self.settings.max_frame_bytes, wanted)
        self.parsers.append(parser)
        del self.parsers[:-1]  # stats of the live connection only
        self._run = asyncio.get_running_loop().create_future()
        return _Protocol(parser, self._on_frame)

    def _on_frame(self, frame: Frame) -> None:
        if frame.get("Event") == FULLY_BOOTED:
            self._fully_booted(frame)
        self._on_event(frame)

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
        if run is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(run), timeout)
        except TimeoutError:
            return None

    async def start(self) -> None:
        s = self.settings
        self._manager = _Manager(
            self,
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
            events="on",
        )
        self._manager.connect()

    def _logged_in(self, manager: Manager) -> None:
        log.info(
            "AMI logged in to %s:%s as %s",
            self.settings.host,
            self.settings.port,
            self.settings.username,
        )
        self._backoff = self.settings.reconnect_min
        # panoramisk would replay actions left unanswered by the last connection; after a
        # restart a channel name may belong to another call by then, so never replay any.
        manager.awaiting_actions.clear()
        self.connected.set()
        if self._on_connected is not None:
            task = asyncio.ensure_future(self._on_connected())
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("AMI on-connect hook failed", exc_info=task.exception())

    def on_disconnected(self) -> None:
        if self.connected.is_set():
            log.warning("AMI connection lost")
        self.connected.clear()

    async def send_action(self, action: dict[str, str], timeout: float = 5.0) -> dict[str, str]:
        """Send one action and return Asterisk's response headers; raise on error."""
        # An async Originate is "queued" at once; its OriginateResponse comes only when the
        # phone answers, much later, so return on the first answer. Lists (DBGet) still wait.
        is_async = action.get("Async", "").lower() == "true"
        messages = await self._request(action, timeout, as_list=False if is_async else None)
        return messages[0]

    async def send_list_action(
        self, action: dict[str, str], timeout: float = 10.0
    ) -> list[dict[str, str]]:
        """Send a list action (CoreShowChannels, DBGet...) and return its list items: every
        event after the response, up to but without the closing `...Complete` event."""
        messages = await self._request(action, timeout, as_list=None)
        return [m for m in messages[1:] if not m.get("Event", "").endswith("Complete")]

    async def _request(
        self, action: dict[str, str], timeout: float, as_list: bool | None
    ) -> list[dict[str, str]]:
        """The response and, for a list, its events (panoramisk collects them by ActionID
        until the `...Complete` event); raises on an error response."""
        manager = self._manager
        if manager is None or not self.connected.is_set() or manager.protocol is None:
            raise AmiUnavailable(f"AMI not connected; {action.get('Action')} not sent")
        request = Action(dict(action), as_list=as_list)
        try:
            response = await asyncio.wait_for(manager.send_action(request), timeout)
        except TimeoutError as exc:
            raise AmiUnavailable(f"AMI did not answer {action.get('Action')}") from exc
        messages = [_headers(m) for m in (response if isinstance(response, list) else [response])]
        if messages[0].get("Response") == "Error":
            raise AmiActionError(f"{action.get('Action')}: {messages[0].get('Message', 'error')}")
        return messages

    async def stop(self) -> None:
        manager = self._manager
        if manager is None:
            return
        manager.closing = True
        if manager.protocol is not None and self.connected.is_set():
            try:
                await asyncio.wait_for(manager.send_action({"Action": "Logoff"}), 1.0)
            except (TimeoutError, Exception):
                log.debug("AMI Logoff not answered")
        manager.close()
        self.connected.clear()
        for task in list(self._tasks):
            task.cancel()
