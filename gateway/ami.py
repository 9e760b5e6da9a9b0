"""AMI source: panoramisk for the connection and actions, our framing for the stream.

panoramisk 1.4 decodes each TCP chunk on its own (losing split UTF-8 characters), reconnects
at a fixed pace and never notices a silent peer. We keep its action/response bookkeeping
and replace those three: FrameParser for the bytes, doubling backoff for reconnects, and a
Ping that must be answered within ping_timeout or the link is dropped and rebuilt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from gateway.ami_wire import Frame, FrameParser
from models.settings import AmiSettings

log = logging.getLogger(__name__)

FrameHandler = Callable[[Frame], None]
ConnectedHook = Callable[[], Awaitable[None]]


class AmiUnavailable(RuntimeError):
    """Asterisk is not connected (or did not answer in time); the action was not sent."""


class AmiActionError(RuntimeError):
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

    def next_backoff(self) -> float:
        delay = self._backoff
        self._backoff = min(self._backoff * 2, self.settings.reconnect_max)
        return delay

    def _protocol(self) -> _Protocol:
        parser = FrameParser(self.settings.max_frame_bytes, self._wanted)
        self.parsers.append(parser)
        del self.parsers[:-1]  # stats of the live connection only
        return _Protocol(parser, self._on_event)

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
        manager = self._manager
        if manager is None or not self.connected.is_set() or manager.protocol is None:
            raise AmiUnavailable(f"AMI not connected; {action.get('Action')} not sent")
        # An async Originate is "queued" at once; its OriginateResponse comes only when the
        # phone answers, much later, so return on the first answer. Lists (DBGet) still wait.
        is_async = action.get("Async", "").lower() == "true"
        request = Action(dict(action), as_list=False if is_async else None)
        try:
            response = await asyncio.wait_for(manager.send_action(request), timeout)
        except TimeoutError as exc:
            raise AmiUnavailable(f"AMI did not answer {action.get('Action')}") from exc
        first = response[0] if isinstance(response, list) else response
        headers = {str(k): str(v) for k, v in first.items()}
        if headers.get("Response") == "Error":
            raise AmiActionError(f"{action.get('Action')}: {headers.get('Message', 'error')}")
        return headers

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
