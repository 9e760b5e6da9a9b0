"""The one module that imports panoramisk (pinned to 1.4 in pyproject.toml).

panoramisk 1.4 decodes each TCP chunk on its own (losing split UTF-8 characters),
reconnects at a fixed pace and never notices a silent peer. We keep its action/response
bookkeeping (ActionIDs, futures, list actions collected until their `...Complete` event)
and replace those three by subclassing two of its classes and overriding internals:

- `AMIProtocol` (panoramisk.ami_protocol) -> `AmiProtocol`: our `__init__` (AMIProtocol has
  none; `connection_made` sets `transport` and `responses`), our `data_received` (frames
  from `FrameParser`); we read its `responses` dict (answers pending, by ActionID), call
  its `handle_message(Message)` and `send(dict)` (returns the answer's future), and
  close its `transport` (bulk actions, gateway/pbx/pipeline.py, are written to it directly).
- `Manager` (panoramisk.manager) -> `AmiManager`: `__init__(**config)` with the config
  keys `loop host port username secret ping_delay ping_interval reconnect_timeout
  protocol_factory on_login events`, whose timers it int()s (we set them back as floats);
  the overridden callbacks `connection_made(f)`, `login(future)`, `connection_lost(exc)`
  and `ping()`; its attributes `_connected` (False: one log line, not a traceback, on a
  failed connect), `protocol`, `authenticated`, `pinger`, `loop`, `reconnect_timeout` and
  `awaiting_actions` (actions to replay after a reconnect, which we never want), `config`
  (its `events` is what each login asks for);
  `connect()`, `close()` and `send_action(Action, as_list)` (which sets the Action's
  `as_list` from its own argument).
- `Action(dict, as_list=...)` (panoramisk.actions): `as_list=False` returns on the first
  answer, None lets panoramisk decide (lists); `Message` (panoramisk.message) is a dict.

tests/unit/test_panoramisk_adapter.py pins the version and checks each of these still
exists with the signature used here: an upgrade fails there, loudly, first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from gateway.pbx import actions, pipeline
from gateway.pbx.errors import AmiUnavailable
from gateway.pbx.wire import Frame, FrameParser

log = logging.getLogger(__name__)

PANORAMISK_VERSION = "1.4"  # the version whose internals are listed above

FrameHandler = Callable[[Frame], None]


class LinkOwner(Protocol):
    """What the manager tells the AMI client, and asks of it."""

    def next_backoff(self) -> float:
        """Seconds to wait before the next connect attempt (doubling)."""
        ...

    def on_disconnected(self) -> None: ...


class AmiProtocol(AMIProtocol):
    """panoramisk's protocol with our incremental, UTF-8-safe framing."""

    def __init__(self, parser: FrameParser, on_event: FrameHandler) -> None:
        self.parser = parser
        self.on_event = on_event
        # Answers to our bulk actions (gateway/pbx/pipeline.py), by ActionID: never
        # panoramisk's, they skip its per-answer objects.
        self.own: dict[str, Callable[[Frame], bool]] = {}

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def close(self) -> None:
        # The answers still awaited will not come on this connection: their actions fail
        # now, not each at its timeout (a sync cut short would hold the next login's back).
        for take in list(self.own.values()):
            take(pipeline.LINK_LOST)
        self.own.clear()
        for action in list(getattr(self, "responses", {}).values()):
            if not action.future.done():
                name = action["action"]  # panoramisk's Action: keys case-insensitive
                action.future.set_exception(
                    AmiUnavailable(f"AMI connection lost; {name} unanswered")
                )
                action.future.exception()  # retrieved: one nobody awaits (a Ping) stays quiet
        super().close()

    def data_received(self, data: bytes) -> None:
        own = self.own
        for frame in self.parser.feed(data):
            if own and (take := own.get(frame.get("ActionID", ""))) is not None:
                if take(frame):
                    del own[frame["ActionID"]]
                continue
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


class AmiManager(Manager):
    """Manager with doubling reconnect backoff, an answered-Ping keep-alive and clean close."""

    def __init__(self, owner: LinkOwner, ping_timeout: float, **config: Any) -> None:
        super().__init__(**config)
        # panoramisk int()s its timers, so a sub-second setting would become 0 (a Ping storm).
        self.ping_delay = float(config["ping_delay"])
        self.ping_interval = float(config["ping_interval"])
        self.reconnect_timeout = float(config["reconnect_timeout"])
        self._owner = owner
        self._ping_timeout = ping_timeout
        self.closing = False
        # The Events value the last Login carried: `config` may change while it is on its
        # way (the gateway took or lost the lead), and the session has what it asked for.
        self.login_events = str(config.get("events", "on"))

    @property
    def ready(self) -> bool:
        """A protocol to send on (connected; logged in or logging in)."""
        return self.protocol is not None

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if self.closing:
            return
        if f.exception() is not None:
            self.reconnect_timeout = self._owner.next_backoff()
            log.warning(
                "AMI connect failed (%s); retry in %.1fs", f.exception(), self.reconnect_timeout
            )
            self._connected = False  # panoramisk then logs one line, not a traceback
        self.login_events = str(self.config.get("events", "on"))  # the Login sent now
        super().connection_made(f)

    def login(self, future: asyncio.Future[Any]) -> bool:
        ok = bool(super().login(future))
        if not ok:
            log.error(
                "AMI login refused for user %r; check ami.username/ami.secret",
                self.config["username"],
            )
            if self.protocol is not None:
                self.protocol.transport.close()  # retry later, with backoff
        return ok

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.on_disconnected()
        if self.closing:
            return
        self.reconnect_timeout = self._owner.next_backoff()
        super().connection_lost(exc)

    def ping(self) -> None:
        self.pinger = self.loop.call_later(self.ping_interval, self.ping)
        if self.protocol is None or not self.authenticated:
            return
        pong = self.protocol.send(actions.ping())
        self.loop.call_later(self._ping_timeout, self._check_pong, pong)

    def _check_pong(self, pong: asyncio.Future[Any]) -> None:
        if not pong.done() and self.protocol is not None and not self.closing:
            log.warning("AMI did not answer Ping; reconnecting")
            self.protocol.transport.close()

    def forget_unanswered(self) -> None:
        """panoramisk would replay actions left unanswered by the last connection; after a
        restart a channel name may belong to another call by then, so never replay any."""
        self.awaiting_actions.clear()

    async def request(self, action: actions.Action, as_list: bool | None) -> list[Frame]:
        """The answer's headers and, for a list, its events (collected by ActionID until
        the `...Complete` event). `as_list=False`: return on the first answer."""
        # as_list is given to send_action too: panoramisk sets the Action's from that one.
        response = await self.send_action(Action(dict(action), as_list=as_list), as_list=as_list)
        return [_headers(m) for m in (response if isinstance(response, list) else [response])]

    async def stop(self, logoff: bool, timeout: float) -> None:
        """No more reconnects; say Logoff (when `logoff`: logged in), then close."""
        self.closing = True
        if logoff and self.protocol is not None:
            try:
                await asyncio.wait_for(self.request(actions.logoff(), as_list=None), timeout)
            except Exception:  # TimeoutError included
                log.debug("AMI Logoff not answered")
        self.close()


def _headers(message: Message) -> Frame:
    return {str(k): str(v) for k, v in message.items() if k != "content"}
