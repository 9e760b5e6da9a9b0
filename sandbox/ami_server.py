"""A stand-in for Asterisk's manager interface (AMI): the TCP wire protocol and nothing else.

It answers actions the way Asterisk 22 does (shapes taken from real captures and from
manager.c/db.c) and pushes whatever event frames a test hands it, e.g. the call scripts of
`sandbox.call_scripts` or a recorded capture. It knows nothing of the product.

The channels those frames open (Newchannel) and close (Hangup) are its live channels:
CoreShowChannels lists them, Getvar and Redirect find them by name. A restart loses them
all without a Hangup, as a crashing Asterisk does.

Queues (app_queue) keep their members: QueueAdd, QueueRemove and QueuePause change them
and send QueueMemberAdded/Removed/Pause events, QueueStatus lists them, with Asterisk
22's answers and refusals ("Already there", "Not there", "Member not dynamic"). A
restart forgets the dynamic members, as Asterisk does without `persistentmembers = yes`;
`persistent_members = True` keeps them (paused or not), as Asterisk with it does.
`add_member`/`remove_member`/`pause_member` stand for changes made outside our client
(the Asterisk CLI).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sandbox.lifecycle import Served

BANNER = b"Asterisk Call Manager/11.0.0\r\n"  # the AMI version, not Asterisk's
AMI_VERSION = "11.0.0"
ASTERISK_VERSION = "22.10.1"
MAX_LINE = 1024  # Asterisk's per-session input buffer: longer lines are dumped
READ_SIZE = 65536

# Event classes a session may receive (manager.c perms[]); "all" is not a class of its own.
ALL_CLASSES = frozenset(
    "system call log verbose command agent user config dtmf reporting cdr dialplan "
    "originate agi cc aoc test security message".split()
)
_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
_FALSE = frozenset({"no", "false", "n", "f", "0", "off"})
_PRIVILEGE = re.compile(r"^Privilege:[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
_CALLERID = re.compile(r'^\s*"?(?P<name>[^"<]*?)"?\s*<(?P<num>[^>]*)>\s*$')
# Events that open, change or close a channel, and the snapshot headers CoreShowChannel
# repeats (in its order; Application and ApplicationData come from Newexten).
_CHANNEL_EVENTS = frozenset(
    "Newchannel Newstate Newexten NewCallerid NewConnectedLine Hangup".split()
)
_SNAPSHOT = (
    "Channel ChannelState ChannelStateDesc CallerIDNum CallerIDName ConnectedLineNum "
    "ConnectedLineName Language AccountCode Context Exten Priority Uniqueid Linkedid"
).split()

Action = dict[str, str]
FrameLike = Mapping[str, str] | bytes
_T = TypeVar("_T")


def header(frame: Mapping[str, str], key: str, default: str = "") -> str:
    """Case-insensitive header lookup, like astman_get_header."""
    if (exact := frame.get(key)) is not None:  # the usual spelling: no scan (bulk actions)
        return exact
    wanted = key.lower()
    return next((v for k, v in frame.items() if k.lower() == wanted), default)


def encode_frame(frame: Mapping[str, str]) -> bytes:
    """Headers in the given order, CRLF-terminated, then the blank line."""
    return ("".join(f"{k}: {v}\r\n" for k, v in frame.items()) + "\r\n").encode()


def load_capture(path: str | Path) -> list[bytes]:
    """The event frames of a recorded AMI stream, verbatim (with their blank line).

    The banner and Response frames are left out: they answered the recording client's
    actions, not ours.
    """
    data = Path(path).read_bytes()
    if data.startswith(b"Asterisk Call Manager/"):
        data = data.split(b"\r\n", 1)[1] if b"\r\n" in data else b""
    return [f + b"\r\n\r\n" for f in data.split(b"\r\n\r\n") if f.startswith(b"Event:")]


class ActionParser:
    """Splits a byte stream into actions, whatever the TCP chunking; never raises.

    Lines end in CRLF or a bare LF; an action ends at a blank line. Lines are decoded one
    by one, so a UTF-8 character split across reads is never damaged.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._headers: Action = {}
        self._lines = 0  # lines in the current action, parsable or not
        self._dumping = False  # inside an over-long line

    def feed(self, data: bytes) -> list[Action]:
        self._buffer += data
        actions: list[Action] = []
        start = 0  # the buffer is cut once per feed: per line, a read of 64 KB is quadratic
        while (end := self._buffer.find(b"\n", start)) >= 0:
            line = bytes(self._buffer[start:end]).rstrip(b"\r")
            start = end + 1
            if self._dumping:  # the tail of a line already dumped
                self._dumping = False
            elif (action := self._line(line)) is not None:
                actions.append(action)
        del self._buffer[:start]
        if len(self._buffer) > MAX_LINE:
            self._buffer.clear()
            self._dumping = True
        return actions

    def _line(self, line: bytes) -> Action | None:
        if len(line) > MAX_LINE:
            return None
        if not line.strip():
            if not self._lines:
                return None  # blank lines between actions mean nothing
            action, self._headers, self._lines = self._headers, {}, 0
            return action
        self._lines += 1
        key, colon, value = line.decode("utf-8", "replace").partition(":")
        key, value = key.strip(), value.strip()
        if colon and key:
            # Repeated headers (Originate's Variable) are one comma-separated list in Asterisk.
            old = self._headers.get(key)
            self._headers[key] = value if old is None else f"{old},{value}"
        return None


def event_mask(value: str) -> frozenset[str] | None:
    """The event classes an EventMask/Events value selects; None if it is not one."""
    text = value.strip().lower()
    if not text:
        return None
    if text.isdigit():  # a numeric bitmask: only "none" versus "some" matters here
        return ALL_CLASSES if int(text) else frozenset()
    if text in _FALSE:
        return frozenset()
    names = {part.strip() for part in text.split(",")}
    if text in _TRUE or "all" in names:
        return ALL_CLASSES
    return frozenset(names) & ALL_CLASSES


def _split_callerid(value: str) -> tuple[str, str]:
    """'"Name" <number>' -> (name, number)."""
    match = _CALLERID.match(value)
    if match:
        return match["name"].strip(), match["num"].strip()
    stripped = value.strip()
    return ("", stripped) if stripped.lstrip("+").isdigit() else (stripped, "")


def _channel_name(dialled: str, seq: int) -> str:
    """The channel Asterisk creates for a dial string: 'PJSIP/pstn/x' -> 'PJSIP/pstn-0000000a'."""
    tech, _, resource = dialled.partition("/")
    if tech.lower() == "local":
        return f"{tech}/{resource}-{seq:08x};1"
    endpoint = resource.split("/", 1)[0]
    endpoint = endpoint.split("@", 1)[1] if "@" in endpoint else endpoint
    return f"{tech}/{endpoint}-{seq:08x}"


def _pieces(data: bytes, sizes: Sequence[int] | None) -> Iterator[bytes]:
    if not sizes:
        yield data
        return
    if any(size <= 0 for size in sizes):
        raise ValueError("chunk sizes must be positive")
    pos = 0
    for size in itertools.cycle(sizes):
        if pos >= len(data):
            return
        yield data[pos : pos + size]
        pos += size


def _response(
    action: Mapping[str, str],
    status: str,
    message: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> bytes:
    """A response frame: Response, ActionID (if the action had one), extras, Message."""
    frame = {"Response": status}
    if action_id := header(action, "ActionID"):
        frame["ActionID"] = action_id
    frame.update(extra or {})
    if message is not None:
        frame["Message"] = message
    return encode_frame(frame)


def _decode_frame(text: str) -> dict[str, str]:
    frame: dict[str, str] = {}
    for line in text.split("\r\n"):
        key, colon, value = line.partition(":")
        if colon and key not in frame:
            frame[key] = value.strip()
    return frame


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@dataclass
class _LiveChannel:
    """A channel the pushed frames opened and have not hung up."""

    snapshot: dict[str, str]
    opened: float
    application: str = ""
    data: str = ""
    variables: dict[str, str] = field(default_factory=dict)  # set by Setvar

    def follow(self, event: str, frame: Mapping[str, str]) -> None:
        self.snapshot.update({k: frame[k] for k in _SNAPSHOT if k in frame})
        if event == "Newexten":
            self.application, self.data = frame.get("Application", ""), frame.get("AppData", "")


def _event_time(now: float) -> str:
    millis = int(now * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{millis:03d}+0000"


def _channel_function(channel: _LiveChannel, variable: str) -> str:
    """CHANNEL(linkedid), CHANNEL(uniqueid), CHANNEL(name); anything else reads as unset."""
    fields = {
        "CHANNEL(linkedid)": "Linkedid",
        "CHANNEL(uniqueid)": "Uniqueid",
        "CHANNEL(name)": "Channel",
    }
    key = fields.get(variable)
    return channel.snapshot.get(key, "") if key else ""


@dataclass
class _Member:
    """A queue member (app_queue's struct member, what its events and QueueStatus show)."""

    name: str
    paused: bool = False
    reason: str = ""
    dynamic: bool = True
    login_time: int = field(default_factory=lambda: int(time.time()))
    last_pause: int = 0


# QueueStatus's QueueParams row: a quiet queue.
_PARAMS = {
    "Max": "0",
    "Strategy": "ringall",
    "Calls": "0",
    "Holdtime": "0",
    "TalkTime": "0",
    "Completed": "0",
    "Abandoned": "0",
    "ServiceLevel": "0",
    "ServicelevelPerf": "0.0",
    "ServicelevelPerf2": "0.0",
    "Weight": "0",
}


def _member_event(event: str, queue: str, interface: str, m: _Member) -> dict[str, str]:
    """QueueMemberAdded/Removed/Pause/Status, with app_queue's fields in its order."""
    return {
        "Event": event,
        "Privilege": "agent,all",
        "Queue": queue,
        "MemberName": m.name,
        "Interface": interface,
        "StateInterface": interface,
        "Membership": "dynamic" if m.dynamic else "static",
        "Penalty": "0",
        "CallsTaken": "0",
        "LastCall": "0",
        "LastPause": str(m.last_pause),
        "LoginTime": str(m.login_time),
        "InCall": "0",
        "Status": "1",
        "Paused": "1" if m.paused else "0",
        "PausedReason": m.reason,
        "Ringinuse": "0",
        "Wrapuptime": "0",
    }


@dataclass(eq=False)
class _Session:
    """One AMI connection."""

    writer: asyncio.StreamWriter
    authenticated: bool = False
    ready: bool = False  # the login reply and its events have been written
    events: frozenset[str] = ALL_CLASSES
    includes: list[re.Pattern[str]] = field(default_factory=list)
    excludes: list[re.Pattern[str]] = field(default_factory=list)
    challenge: str = ""
    closing: bool = False
    deferred: list[dict[str, str]] = field(default_factory=list)  # events due after the reply
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one writer at a time
    cork: list[bytes] | None = None  # while a list: writes gather here (AmiServer._read_actions)

    def wants(self, event_text: str) -> bool:
        """Whether an event passes this session's event mask and filters (manager.c rules)."""
        if not self.authenticated or not self._in_mask(event_text):
            return False
        if self.includes and not any(p.search(event_text) for p in self.includes):
            return False
        return not any(p.search(event_text) for p in self.excludes)

    def _in_mask(self, event_text: str) -> bool:
        match = _PRIVILEGE.search(event_text)
        classes = {c.strip().lower() for c in match[1].split(",")} if match else set()
        classes.discard("all")
        return bool(self.events) and (not classes or not classes.isdisjoint(self.events))

    async def send(self, data: bytes, chunk_sizes: Sequence[int] | None = None) -> None:
        if self.cork is not None:  # in order, in the one write uncork() makes
            self.cork.append(data)
            return
        async with self.lock:
            for piece in _pieces(data, chunk_sizes):
                if self.writer.is_closing():
                    return
                self.writer.write(piece)
                await self.writer.drain()
                if chunk_sizes:
                    # Yield so each piece leaves as its own segment instead of coalescing.
                    await asyncio.sleep(0)


Handler = Callable[[_Session, Action], bytes]


class AmiServer(Served):
    """An AMI server on 127.0.0.1 for tests and the demo; see the module docstring."""

    def __init__(
        self,
        username: str = "frontdesk",
        secret: str = "secret",
        host: str = "127.0.0.1",
        port: int = 0,
        uptime: float = 0.0,
    ) -> None:
        """`uptime`: how long the PBX claims to have been up when the server starts (a
        restart sets it back to 0), as FullyBooted reports it."""
        self.username = username
        self.secret = secret
        self.host = host
        self.uptime_at_start = uptime
        self.actions: list[Action] = []  # every action received, Secret masked
        self.astdb: dict[str, str] = {}  # "family/key" -> value
        self.originate_reason = 4  # OriginateResponse Reason: 4 answered, 0/1/3/5/8 failures
        self.logins = 0  # successful logins since start, across reconnects
        # Fault mode: actions (lower-case names) recorded but never answered, as by a hung
        # Asterisk whose TCP connection stays open.
        self.unanswered: set[str] = set()
        # Slow mode: actions (lower-case names) recorded and held unanswered until
        # release(), as by an Asterisk slow to carry them out.
        self.held: set[str] = set()
        self._holding: list[tuple[_Session, Action]] = []
        # Fault mode: actions (lower-case names) refused, as for an AMI user whose write
        # classes do not cover them.
        self.denied: set[str] = set()
        # Queues and their members, queue -> interface -> member (app_queue). Members added
        # by QueueAdd (or add_member) are dynamic: a restart forgets them, as Asterisk does
        # unless queues.conf says `persistentmembers = yes` (then set this True). Static
        # members (queues.conf `member =>`) always come back.
        self.queues: dict[str, dict[str, _Member]] = {"frontdesk-agents": {}}
        self.persistent_members = False
        self._port = port
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._jobs: set[asyncio.Task[int]] = set()
        self._changed = asyncio.Condition()
        self._booted = time.time() - uptime
        self._seq = itertools.count()  # channel and uniqueid sequence, as in Asterisk
        self._channels: dict[str, _LiveChannel] = {}  # uniqueid -> channel, in creation order
        self._actions: dict[str, Handler] = {
            "login": self._login,
            "challenge": self._challenge,
            "logoff": self._logoff,
            "ping": self._ping,
            "events": self._events,
            "filter": self._filter,
            "dbput": self._dbput,
            "dbget": self._dbget,
            "dbdel": self._dbdel,
            "dbdeltree": self._dbdeltree,
            "dbgettree": self._dbgettree,
            "originate": self._originate,
            "redirect": self._redirect,
            "hangup": self._hangup,
            "coresettings": self._coresettings,
            "coreshowchannels": self._coreshowchannels,
            "getvar": self._getvar,
            "setvar": self._setvar,
            "queueadd": self._queueadd,
            "queueremove": self._queueremove,
            "queuepause": self._queuepause,
            "queuestatus": self._queuestatus,
        }

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def logged_in(self) -> int:
        """Sessions logged in right now."""
        return sum(s.ready for s in self._sessions)

    @property
    def live_channels(self) -> dict[str, str]:
        """Uniqueid -> channel name of every channel open right now."""
        return {uid: c.snapshot.get("Channel", "") for uid, c in self._channels.items()}

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        self._booted = time.time() - self.uptime_at_start

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await self.drop_clients()
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        await server.wait_closed()

    async def drop_clients(self) -> None:
        """Close every connection, as a crashing or restarting Asterisk does."""
        handlers = list(self._handlers)
        for session in list(self._sessions):
            session.closing = True
            session.writer.close()
        if not handlers:
            return
        _, stuck = await asyncio.wait(handlers, timeout=1.0)
        if stuck:  # a peer that does not read keeps close() from finishing
            for session in list(self._sessions):
                session.writer.transport.abort()
            await asyncio.wait(stuck)

    async def restart(self, shutdown_event: bool = True) -> None:
        """Drop every client (after a Shutdown event, like `core restart now`; without it, like
        a crash) and keep listening. Every channel is gone, and no Hangup says so."""
        if shutdown_event:
            shutdown = {"Shutdown": "Cleanly", "Restart": "True"}
            await self.push([{"Event": "Shutdown", "Privilege": "system,all", **shutdown}])
        self._channels.clear()
        if not self.persistent_members:
            for members in self.queues.values():
                for interface in [i for i, m in members.items() if m.dynamic]:
                    del members[interface]
        await self.drop_clients()
        self._booted = time.time()

    # -- waiting ---------------------------------------------------------------------------

    async def wait_action(
        self,
        name: str,
        predicate: Callable[[Action], bool] | None = None,
        timeout: float = 5.0,
    ) -> Action:
        """The first action of that name (and matching predicate), received or to come."""

        def find() -> Action | None:
            wanted = name.lower()
            return next(
                (
                    a
                    for a in self.actions
                    if header(a, "Action").lower() == wanted and (predicate is None or predicate(a))
                ),
                None,
            )

        found = await self._wait_for(find, timeout)
        assert found is not None  # wait_for returns only once find() is truthy
        return found

    async def wait_until(self, condition: Callable[[], object], timeout: float = 5.0) -> None:
        """Wait until ``condition()`` holds; rechecked after every action and login."""
        await self._wait_for(condition, timeout)

    async def wait_logged_in(self, count: int = 1, timeout: float = 5.0) -> None:
        await self._wait_for(lambda: self.logged_in >= count, timeout)

    # -- events out ------------------------------------------------------------------------

    async def push(
        self,
        frames: Iterable[FrameLike] | bytes,
        chunk_sizes: Sequence[int] | None = None,
    ) -> int:
        """Send event frames (header dicts or encoded bytes) to every logged-in session whose
        event mask and filters let them through; return how many sessions got something.

        chunk_sizes writes the bytes in pieces of those sizes (cycling), to split frames and
        UTF-8 characters across TCP segments.
        """
        items = [frames] if isinstance(frames, bytes) else list(frames)
        encoded = [f if isinstance(f, bytes) else encode_frame(f) for f in items]
        texts = [e.decode("utf-8", "replace") for e in encoded]
        for text in texts:
            self._follow(text)
        sends = []
        for session in list(self._sessions):
            data = b"".join(e for e, t in zip(encoded, texts, strict=True) if session.wants(t))
            if data:
                sends.append(self._send(session, data, chunk_sizes))
        await asyncio.gather(*sends)
        return len(sends)

    def _follow(self, text: str) -> None:
        """Keep the live channel table as the pushed events change it."""
        if text.startswith("Event: UserEvent\r\n") and "UserEvent: FrontdeskCallEnd\r\n" in text:
            self._journal_end(_decode_frame(text))
            return
        end = text.find("\r\n")
        if not text.startswith("Event: ") or text[7:end] not in _CHANNEL_EVENTS:
            return
        event, frame = text[7:end], _decode_frame(text)
        uniqueid = frame.get("Uniqueid", "")
        if event == "Hangup":
            self._channels.pop(uniqueid, None)
        elif event == "Newchannel" and uniqueid:
            self._channels[uniqueid] = _LiveChannel({}, time.time())
        if (channel := self._channels.get(uniqueid)) is not None:
            channel.follow(event, frame)

    def _journal_end(self, frame: Mapping[str, str]) -> None:
        """What the shipped dialplan's hangup handler also does: the call's end kept in
        AstDB (family frontdesk_end, key its Linkedid) for a gateway that did not hear it."""
        fields = ("DDI", "DialStatus", "VMStatus", "Answered", "AnsweredBy")
        value = "|".join([str(int(time.time())), *(frame.get(f, "") for f in fields)])
        self.astdb[f"frontdesk_end/{frame.get('Linkedid', '')}"] = value

    def _channel_named(self, name: str) -> _LiveChannel | None:
        """Asterisk finds channels by name case-insensitively; names are unique while live."""
        wanted = name.lower()
        return next(
            (c for c in self._channels.values() if c.snapshot.get("Channel", "").lower() == wanted),
            None,
        )

    async def push_raw(self, data: bytes, chunk_sizes: Sequence[int] | None = None) -> int:
        """Write bytes verbatim to every logged-in session, ignoring event masks and filters."""
        sessions = [s for s in self._sessions if s.authenticated]
        await asyncio.gather(*(self._send(s, data, chunk_sizes) for s in sessions))
        return len(sessions)

    async def play(
        self, script_frames: Iterable[FrameLike], chunk_sizes: Sequence[int] | None = None
    ) -> int:
        """Push the frames of a call script, in order."""
        return await self.push(script_frames, chunk_sizes)

    async def _send(
        self, session: _Session, data: bytes, chunk_sizes: Sequence[int] | None = None
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):  # its own handler cleans up
            await session.send(data, chunk_sizes)

    def _spawn_push(self, frames: list[dict[str, str]]) -> None:
        job = asyncio.get_running_loop().create_task(self.push(frames))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    # -- sessions --------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(writer)
        self._sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            # Written at once: clients may send Login before they have read it.
            await session.send(BANNER)
            await self._read_actions(reader, session)
        except (ConnectionError, OSError):
            pass  # the peer vanished
        finally:
            self._sessions.discard(session)
            if task is not None:
                self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            if session.ready:
                await self._notify()

    async def _read_actions(self, reader: asyncio.StreamReader, session: _Session) -> None:
        parser = ActionParser()
        while not session.closing and (data := await reader.read(READ_SIZE)):
            # The answers to one read's actions leave in one write (a client pipelining
            # hundreds of DBPut would otherwise cost a send() each); handling them never
            # yields to another task, so waiters still resume with the replies written.
            session.cork = []
            try:
                for action in parser.feed(data):
                    await self._handle(session, action)
                    if session.closing:
                        break
            finally:
                corked, session.cork = session.cork, None
                if corked:
                    await session.send(b"".join(corked))

    async def _handle(self, session: _Session, action: Action) -> None:
        was_authenticated = session.authenticated
        self.actions.append({k: "***" if k.lower() == "secret" else v for k, v in action.items()})
        if header(action, "Action").lower() in self.unanswered:
            await self._notify()
            return
        if header(action, "Action").lower() in self.held:
            self._holding.append((session, action))
            await self._notify()
            return
        await self._answer(session, action, was_authenticated)

    async def release(self) -> int:
        """Answer the held actions now, in the order they came; returns how many."""
        held, self._holding = self._holding, []
        for session, action in held:
            await self._answer(session, action, session.authenticated)
        return len(held)

    async def _answer(self, session: _Session, action: Action, was_authenticated: bool) -> None:
        reply = self._dispatch(session, action)
        await self._send(session, reply)
        if session.authenticated and not was_authenticated:
            await self.push([self._successful_auth(session)])
            session.ready = True
            self.logins += 1
        if session.deferred:  # e.g. OriginateResponse: after the reply, never before it
            self._spawn_push(session.deferred)
            session.deferred = []
        # Waiters resume only now, with the reply already on the wire.
        await self._notify()

    def _dispatch(self, session: _Session, action: Action) -> bytes:
        name = header(action, "Action")
        if not name:
            return _response(action, "Error", "Missing action in request")
        key = name.lower()
        if not session.authenticated and key not in ("login", "logoff", "challenge"):
            return _response(action, "Error", "Permission denied")
        if key in self.denied:
            return _response(action, "Error", "Permission denied")
        handler = self._actions.get(key)
        if handler is None:
            message = (
                f"Invalid/unknown command: {name}. Use Action: ListCommands to show available "
                "commands."
            )
            return _response(action, "Error", message)
        return handler(session, action)

    # -- actions ---------------------------------------------------------------------------

    def _login(self, session: _Session, action: Action) -> bytes:
        if session.authenticated:
            return _response(action, "Success", "Already authenticated")
        if not self._credentials_ok(session, action):
            session.closing = True  # Asterisk hangs up on a failed login
            return _response(action, "Error", "Authentication failed")
        session.authenticated = True
        if (mask := event_mask(header(action, "Events"))) is not None:
            session.events = mask
        reply = _response(action, "Success", "Authentication accepted")
        if "system" in session.events:
            reply += encode_frame(self._fully_booted())
        return reply

    def _credentials_ok(self, session: _Session, action: Action) -> bool:
        if header(action, "Username").lower() != self.username.lower():
            return False
        if header(action, "AuthType").lower() == "md5":
            digest = hashlib.md5((session.challenge + self.secret).encode(), usedforsecurity=False)
            return bool(session.challenge) and header(action, "Key").lower() == digest.hexdigest()
        return header(action, "Secret") == self.secret

    def _challenge(self, session: _Session, action: Action) -> bytes:
        if header(action, "AuthType").lower() != "md5":
            return _response(action, "Error", "Must specify AuthType")
        session.challenge = session.challenge or str(secrets.randbelow(2**31))
        return _response(action, "Success", extra={"Challenge": session.challenge})

    def _logoff(self, session: _Session, action: Action) -> bytes:
        session.closing = True
        return _response(action, "Goodbye", "Thanks for all the fish.")

    def _ping(self, session: _Session, action: Action) -> bytes:
        return _response(
            action, "Success", extra={"Ping": "Pong", "Timestamp": f"{time.time():.6f}"}
        )

    def _events(self, session: _Session, action: Action) -> bytes:
        mask = event_mask(header(action, "EventMask"))
        if mask is None:
            return _response(action, "Error", "Invalid event mask")
        session.events = mask
        return _response(action, "Success", extra={"Events": "On" if mask else "Off"})

    def _filter(self, session: _Session, action: Action) -> bytes:
        if header(action, "Operation").lower() != "add":
            return _response(action, "Error", "Unknown operation")
        text = header(action, "Filter")
        exclude = text.startswith("!")
        try:
            pattern = re.compile(text[1:] if exclude else text)
        except re.error:
            message = "Filter did not compile.  Check the syntax of the filter given."
            return _response(action, "Error", message)
        (session.excludes if exclude else session.includes).append(pattern)
        return _response(action, "Success", "Success")

    def _db_key(self, action: Action, dot: str = ".") -> tuple[str, bytes | None]:
        """'family/key', or an Error reply when either is missing."""
        family, key = header(action, "Family"), header(action, "Key")
        if not family:
            return "", _response(action, "Error", f"No family specified{dot}")
        if not key:
            return "", _response(action, "Error", f"No key specified{dot}")
        return f"{family}/{key}", None

    def _dbput(self, session: _Session, action: Action) -> bytes:
        path, error = self._db_key(action, dot="")  # DBPut's messages have no full stop
        if error is not None:
            return error
        self.astdb[path] = header(action, "Val")
        return _response(action, "Success", "Updated database successfully")

    def _dbget(self, session: _Session, action: Action) -> bytes:
        path, error = self._db_key(action)
        if error is not None:
            return error
        if path not in self.astdb:
            return _response(action, "Error", "Database entry not found")
        family, key = path.split("/", 1)
        action_id = {"ActionID": v} if (v := header(action, "ActionID")) else {}
        result = {"Event": "DBGetResponse", "Family": family, "Key": key, "Val": self.astdb[path]}
        complete = {
            "Event": "DBGetComplete",
            **action_id,
            "EventList": "Complete",
            "ListItems": "1",
        }
        return (
            _response(action, "Success", "Result will follow", {"EventList": "start"})
            + encode_frame({**result, **action_id})
            + encode_frame(complete)
        )

    def _dbdel(self, session: _Session, action: Action) -> bytes:
        path, error = self._db_key(action)
        if error is not None:
            return error
        if self.astdb.pop(path, None) is None:
            return _response(action, "Error", "Database entry could not be deleted")
        return _response(action, "Success", "Key deleted successfully")

    def _dbdeltree(self, session: _Session, action: Action) -> bytes:
        family, key = header(action, "Family"), header(action, "Key")
        if not family:
            return _response(action, "Error", "No family specified.")
        prefix = f"{family}/{key}" if key else family
        doomed = [p for p in self.astdb if p == prefix or p.startswith(prefix + "/")]
        for path in doomed:
            del self.astdb[path]
        if not doomed:
            return _response(action, "Error", "Database entry not found")
        return _response(action, "Success", "Key tree deleted successfully")

    def _dbgettree(self, session: _Session, action: Action) -> bytes:
        """Every entry at or under family (and key: whole path segments, matched without
        regard to ASCII case, as db.c's LIKE does), sorted; each event's Key is the full
        path with a leading slash. No family: the whole database; nothing found: an empty
        list, never an error."""
        family, key = header(action, "Family"), header(action, "Key")
        prefix = (f"{family}/{key}" if key else family).lower() if family else ""
        found = sorted(
            (path, value)
            for path, value in self.astdb.items()
            if not prefix or path.lower() == prefix or path.lower().startswith(prefix + "/")
        )
        action_id = {"ActionID": v} if (v := header(action, "ActionID")) else {}
        items = b"".join(
            encode_frame(
                {"Event": "DBGetTreeResponse", "Key": f"/{path}", "Val": value, **action_id}
            )
            for path, value in found
        )
        complete = {
            "Event": "DBGetTreeComplete",
            **action_id,
            "EventList": "Complete",
            "ListItems": str(len(found)),
        }
        return (
            _response(action, "Success", "Result will follow", {"EventList": "start"})
            + items
            + encode_frame(complete)
        )

    def _originate(self, session: _Session, action: Action) -> bytes:
        if not header(action, "Channel"):
            return _response(action, "Error", "Channel not specified")
        if header(action, "Async").lower() in _TRUE:
            session.deferred.append(self._originate_response(action))
        return _response(action, "Success", "Originate successfully queued")

    def _originate_response(self, action: Action) -> dict[str, str]:
        answered = self.originate_reason == 4
        seq = next(self._seq)
        channel = header(action, "Channel")
        name, number = _split_callerid(header(action, "CallerID"))
        uniqueid = header(action, "ChannelId") or f"{int(time.time())}.{seq}"
        frame = {"Event": "OriginateResponse", "Privilege": "call,all"}
        if action_id := header(action, "ActionID"):
            frame["ActionID"] = action_id
        frame.update(
            {
                "Response": "Success" if answered else "Failure",
                "Channel": _channel_name(channel, seq) if answered else channel,
                "Context": header(action, "Context"),
                "Exten": header(action, "Exten"),
                "Reason": str(self.originate_reason),
                "Uniqueid": uniqueid if answered else "<null>",
                "CallerIDNum": number or "<unknown>",
                "CallerIDName": name or "<unknown>",
            }
        )
        return frame

    def _redirect(self, session: _Session, action: Action) -> bytes:
        name = header(action, "Channel")
        if not name:
            return _response(action, "Error", "Channel not specified")
        if self._channel_named(name) is None:
            return _response(action, "Error", f"Channel does not exist: {name}")
        return _response(action, "Success", "Redirect successful")

    def _getvar(self, session: _Session, action: Action) -> bytes:
        """Channel variables and CHANNEL() fields of a live channel (manager.c action_getvar).
        Without Channel, Asterisk reads a throw-away channel; here that gives ""."""
        name, variable = header(action, "Channel"), header(action, "Variable")
        if not variable:
            return _response(action, "Error", "No variable specified")
        channel = self._channel_named(name) if name else None
        if name and channel is None:
            return _response(action, "Error", "No such channel")
        value = _channel_function(channel, variable) if channel is not None else ""
        if channel is not None and variable in channel.variables:
            value = channel.variables[variable]
        return _response(action, "Success", extra={"Variable": variable, "Value": value})

    def _setvar(self, session: _Session, action: Action) -> bytes:
        """A channel variable (manager.c action_setvar); without Channel, a global."""
        name, variable = header(action, "Channel"), header(action, "Variable")
        if not variable:
            return _response(action, "Error", "No variable specified")
        channel = self._channel_named(name) if name else None
        if name and channel is None:
            return _response(action, "Error", "No such channel")
        if channel is not None:
            channel.variables[variable] = header(action, "Value")
        return _response(action, "Success", "Variable Set")

    def _coreshowchannels(self, session: _Session, action: Action) -> bytes:
        action_id = {"ActionID": v} if (v := header(action, "ActionID")) else {}
        now = time.time()
        items = [
            encode_frame(
                {
                    "Event": "CoreShowChannel",
                    **action_id,
                    **{key: c.snapshot.get(key, "") for key in _SNAPSHOT},
                    "Application": c.application,
                    "ApplicationData": c.data,
                    "Duration": _duration(now - c.opened),
                    "BridgeId": "",
                }
            )
            for c in self._channels.values()
        ]
        complete = {
            "Event": "CoreShowChannelsComplete",
            **action_id,
            "EventList": "Complete",
            "ListItems": str(len(items)),
        }
        follows = _response(action, "Success", "Channels will follow", {"EventList": "start"})
        return follows + b"".join(items) + encode_frame(complete)

    def _hangup(self, session: _Session, action: Action) -> bytes:
        if not header(action, "Channel"):
            return _response(action, "Error", "No channel specified")
        return _response(action, "Success", "Channel Hungup")

    def _coresettings(self, session: _Session, action: Action) -> bytes:
        settings = {
            "AMIversion": AMI_VERSION,
            "AsteriskVersion": ASTERISK_VERSION,
            "SystemName": "",
            "CoreMaxCalls": "0",
            "CoreMaxLoadAvg": "0.000000",
            "CoreRunUser": "asterisk",
            "CoreRunGroup": "asterisk",
            "CoreMaxFilehandles": "0",
            "CoreRealTimeEnabled": "No",
            "CoreCDRenabled": "Yes",
            "CoreHTTPenabled": "No",
            "SoundsSearchCustomDir": "No",
        }
        return _response(action, "Success", extra=settings)

    # -- queues (app_queue's manager actions and events) ----------------------------------

    def _queueadd(self, session: _Session, action: Action) -> bytes:
        queue, interface = header(action, "Queue"), header(action, "Interface")
        if not queue:
            return _response(action, "Error", "'Queue' not specified.")
        if not interface:
            return _response(action, "Error", "'Interface' not specified.")
        members = self.queues.get(queue)
        if members is None:
            return _response(action, "Error", "Unable to add interface to queue: No such queue")
        if interface in members:
            return _response(action, "Error", "Unable to add interface: Already there")
        paused = header(action, "Paused").lower() in _TRUE
        member = _Member(
            header(action, "MemberName") or interface,
            paused=paused,
            reason=header(action, "Reason") if paused else "",
        )
        members[interface] = member
        session.deferred.append(_member_event("QueueMemberAdded", queue, interface, member))
        return _response(action, "Success", "Added interface to queue")

    def _queueremove(self, session: _Session, action: Action) -> bytes:
        queue, interface = header(action, "Queue"), header(action, "Interface")
        if not queue or not interface:
            return _response(action, "Error", "Need 'Queue' and 'Interface' parameters.")
        members = self.queues.get(queue)
        if members is None:
            return _response(
                action, "Error", "Unable to remove interface from queue: No such queue"
            )
        member = members.get(interface)
        if member is None:
            return _response(action, "Error", "Unable to remove interface: Not there")
        if not member.dynamic:
            return _response(action, "Error", "Member not dynamic")
        del members[interface]
        session.deferred.append(_member_event("QueueMemberRemoved", queue, interface, member))
        return _response(action, "Success", "Removed interface from queue")

    def _queuepause(self, session: _Session, action: Action) -> bytes:
        """Without Queue, the interface is (un)paused in every queue it is a member of."""
        interface, paused_text = header(action, "Interface"), header(action, "Paused")
        if not interface or not paused_text:
            return _response(action, "Error", "Need 'Interface' and 'Paused' parameters.")
        paused = paused_text.lower() in _TRUE
        queue = header(action, "Queue")
        found = [
            (name, members[interface])
            for name, members in self.queues.items()
            if (not queue or name == queue) and interface in members
        ]
        if not found:
            return _response(action, "Error", "Interface not found")
        for name, member in found:
            member.paused = paused
            member.reason = header(action, "Reason") if paused else ""
            member.last_pause = int(time.time())
            session.deferred.append(_member_event("QueueMemberPause", name, interface, member))
        message = "Interface paused successfully" if paused else "Interface unpaused successfully"
        return _response(action, "Success", message)

    def _queuestatus(self, session: _Session, action: Action) -> bytes:
        action_id = {"ActionID": v} if (v := header(action, "ActionID")) else {}
        wanted, member_filter = header(action, "Queue"), header(action, "Member")
        items: list[bytes] = []
        for name, members in self.queues.items():
            if wanted and name != wanted:
                continue
            items.append(
                encode_frame({"Event": "QueueParams", "Queue": name, **_PARAMS, **action_id})
            )
            for interface, m in members.items():
                if member_filter and member_filter not in (interface, m.name):
                    continue
                row = {
                    "Event": "QueueMember",
                    "Queue": name,
                    "Name": m.name,
                    "Location": interface,
                    "StateInterface": interface,
                    "Membership": "dynamic" if m.dynamic else "static",
                    "Penalty": "0",
                    "CallsTaken": "0",
                    "LastCall": "0",
                    "LastPause": str(m.last_pause),
                    "LoginTime": str(m.login_time),
                    "InCall": "0",
                    "Status": "1",
                    "Paused": "1" if m.paused else "0",
                    "PausedReason": m.reason,
                    "Wrapuptime": "0",
                }
                items.append(encode_frame({**row, **action_id}))
        complete = {
            "Event": "QueueStatusComplete",
            **action_id,
            "EventList": "Complete",
            "ListItems": str(len(items)),
        }
        follows = _response(action, "Success", "Queue status will follow", {"EventList": "start"})
        return follows + b"".join(items) + encode_frame(complete)

    async def add_member(
        self,
        queue: str,
        interface: str,
        name: str = "",
        paused: bool = False,
        reason: str = "",
        dynamic: bool = True,
    ) -> None:
        """A member added outside our client (the CLI's `queue add member`, another AMI
        client); a static one is as queues.conf would have it, with no event."""
        member = _Member(name or interface, paused=paused, reason=reason, dynamic=dynamic)
        self.queues.setdefault(queue, {})[interface] = member
        if dynamic:
            await self.push([_member_event("QueueMemberAdded", queue, interface, member)])

    async def remove_member(self, queue: str, interface: str) -> None:
        """A member removed outside our client (the CLI's `queue remove member`)."""
        member = self.queues.get(queue, {}).pop(interface)
        await self.push([_member_event("QueueMemberRemoved", queue, interface, member)])

    async def pause_member(
        self, queue: str, interface: str, paused: bool, reason: str = ""
    ) -> None:
        """A member (un)paused outside our client (the CLI's `queue pause member`)."""
        member = self.queues[queue][interface]
        member.paused, member.reason = paused, reason if paused else ""
        await self.push([_member_event("QueueMemberPause", queue, interface, member)])

    # -- events of our own -----------------------------------------------------------------

    def _fully_booted(self) -> dict[str, str]:
        uptime = str(int(time.time() - self._booted))
        return {
            "Event": "FullyBooted",
            "Privilege": "system,all",
            "Uptime": uptime,
            "LastReload": uptime,
            "Status": "Fully Booted",
        }

    def _successful_auth(self, session: _Session) -> dict[str, str]:
        now = _event_time(time.time())
        local = session.writer.get_extra_info("sockname") or ("", 0)
        remote = session.writer.get_extra_info("peername") or ("", 0)
        return {
            "Event": "SuccessfulAuth",
            "Privilege": "security,all",
            "EventTV": now,
            "Severity": "Informational",
            "Service": "AMI",
            "EventVersion": "1",
            "AccountID": self.username,
            "SessionID": f"0x{id(session):x}",
            "LocalAddress": f"IPV4/TCP/{local[0]}/{local[1]}",
            "RemoteAddress": f"IPV4/TCP/{remote[0]}/{remote[1]}",
            "UsingPassword": "0",
            "SessionTV": now,
        }
