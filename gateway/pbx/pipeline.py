"""Bulk AMI work on one session: many actions in flight, answers matched by ActionID.

The AstDB re-assert at login reads up to ~100,000 keys (DBGetTree) and may write as many
(DBPut). Through panoramisk each answer costs a Message, a CaseInsensitiveDict and a
Future (~50 us), and each action its own write: 46 s for 30,000 DDIs one at a time. Here
the actions are encoded in one buffer per batch and their answers go straight from the
FrameParser's dicts to a slot (AmiProtocol.own, looked up by ActionID before panoramisk
sees the frame), with at most `window` actions unanswered at once. Asterisk handles one
session's actions in order, so the window only bounds what is in flight.

These ActionIDs (`bulk/<n>`) never meet panoramisk's (`action/<uuid>/...`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from functools import partial
from typing import Protocol

from gateway.pbx.errors import AmiActionError, AmiUnavailable
from gateway.pbx.wire import Frame

Action = dict[str, str]
Taker = Callable[[Frame], bool]  # given each frame of its action; True once it is complete

_IDS = itertools.count(1)
_NO_ANSWER: Frame = {}


class Route(Protocol):
    """Where bulk actions go and their answers come from (AmiProtocol)."""

    own: dict[str, Taker]

    def write(self, data: bytes) -> None: ...


def _line(value: str) -> str:
    # A line break in a value would start a header of its own (or end the action).
    return value.replace("\r", " ").replace("\n", " ")


def encode(action: Action, action_id: str) -> bytes:
    head = "".join(f"{k}: {_line(v)}\r\n" for k, v in action.items())
    return f"{head}ActionID: {action_id}\r\n\r\n".encode()


class _Batch:
    def __init__(self) -> None:
        self.answers: list[Frame] = []
        self.outstanding = 0
        # Set by any answer: the sender tops the window up once per read from the socket
        # (not once per answer, nor only when half empty: a busy peer is never left idle).
        self.room = asyncio.Event()

    def answer(self, index: int, frame: Frame) -> bool:
        self.answers[index] = frame
        self.outstanding -= 1
        self.room.set()
        return True


async def send_all(
    route: Route, actions: Iterable[Action], window: int, timeout: float
) -> list[Frame]:
    """Send every action (taken lazily from `actions`, as room frees up), each answered by
    one response; return the responses in the actions' order. AmiUnavailable when no
    answer came for `timeout` seconds (the link died or hung)."""
    batch = _Batch()
    pending = iter(actions)
    ids: list[str] = []
    exhausted = False
    try:
        while True:
            chunk = []
            while not exhausted and batch.outstanding < window:
                action = next(pending, None)
                if action is None:
                    exhausted = True
                    break
                action_id = f"bulk/{next(_IDS)}"
                route.own[action_id] = partial(batch.answer, len(batch.answers))
                ids.append(action_id)
                batch.answers.append(_NO_ANSWER)
                batch.outstanding += 1
                chunk.append(encode(action, action_id))
            if chunk:
                route.write(b"".join(chunk))
            if batch.outstanding == 0 and exhausted:
                return batch.answers
            batch.room.clear()
            try:
                await asyncio.wait_for(batch.room.wait(), timeout)
            except TimeoutError:
                raise AmiUnavailable(f"AMI did not answer {batch.outstanding} actions") from None
    finally:
        for action_id in ids:  # those unanswered, on failure or cancellation
            route.own.pop(action_id, None)


class _List:
    """A list action's answer: the response, then its events up to `...Complete`."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.done: asyncio.Future[list[Frame]] = asyncio.get_running_loop().create_future()

    def take(self, frame: Frame) -> bool:
        frames = self.frames
        frames.append(frame)
        if len(frames) == 1:
            if frame.get("Response") == "Error" or frame.get("EventList", "").lower() != "start":
                return self._complete()
            return False
        if frame.get("Event", "").endswith("Complete"):
            return self._complete()
        return False

    def _complete(self) -> bool:
        if not self.done.done():
            self.done.set_result(self.frames)
        return True


async def read_list(route: Route, action: Action, timeout: float) -> list[Frame]:
    """The list items of a list action (every event after the response, without the
    closing `...Complete`); AmiActionError if refused, AmiUnavailable after `timeout`."""
    action_id = f"bulk/{next(_IDS)}"
    answer = _List()
    route.own[action_id] = answer.take
    try:
        route.write(encode(action, action_id))
        frames = await asyncio.wait_for(asyncio.shield(answer.done), timeout)
    except TimeoutError:
        raise AmiUnavailable(f"AMI did not answer {action.get('Action')}") from None
    finally:
        route.own.pop(action_id, None)
    if frames[0].get("Response") == "Error":
        raise AmiActionError(f"{action.get('Action')}: {frames[0].get('Message', 'error')}")
    return [f for f in frames[1:] if not f.get("Event", "").endswith("Complete")]
