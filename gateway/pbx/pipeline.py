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
from typing import Any, Generic, Protocol, TypeVar, overload

from gateway.pbx.errors import AmiActionError, AmiUnavailable
from gateway.pbx.wire import Frame

Action = dict[str, str]
Taker = Callable[[Frame], bool]  # given each frame of its action; True once it is complete
T = TypeVar("T")

_IDS = itertools.count(1)
_NO_ANSWER: Frame = {}
# Given by the route to each taker when its connection closes (compared by identity): the
# answers will not come, and the waiting action fails now instead of at its timeout.
LINK_LOST: Frame = {"Response": "Error", "Message": "AMI connection lost"}


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
    def __init__(self, keep: Callable[[Frame], bool] | None) -> None:
        self.answers: list[Frame] = []
        self.keep = keep
        self.waiting: dict[str, int] = {}  # ActionID -> its place in `answers`, unanswered
        # Set by any answer: the sender tops the window up once per read from the socket
        # (not once per answer, nor only when half empty: a busy peer is never left idle).
        self.room = asyncio.Event()
        self.lost = False

    def answer(self, action_id: str, frame: Frame) -> bool:
        if frame is LINK_LOST:
            self.lost = True
            self.room.set()
            return True
        index = self.waiting.pop(action_id)
        if self.keep is None:
            self.answers[index] = frame
        elif self.keep(frame):
            self.answers.append(frame)
        self.room.set()
        return True


async def send_all(
    route: Route,
    actions: Iterable[Action],
    window: int,
    timeout: float,
    keep: Callable[[Frame], bool] | None = None,
) -> list[Frame]:
    """Send every action (taken lazily from `actions`, as room frees up), each answered by
    one response; return the responses in the actions' order. With `keep`, only the
    responses it accepts, as they came (100,000 "Success" answers are not worth keeping).
    AmiUnavailable when no answer came for `timeout` seconds (the link died or hung)."""
    batch = _Batch(keep)
    waiting = batch.waiting
    pending = iter(actions)
    exhausted = False
    try:
        while True:
            chunk = []
            while not exhausted and len(waiting) < window:
                action = next(pending, None)
                if action is None:
                    exhausted = True
                    break
                action_id = f"bulk/{next(_IDS)}"
                route.own[action_id] = partial(batch.answer, action_id)
                if keep is None:
                    waiting[action_id] = len(batch.answers)
                    batch.answers.append(_NO_ANSWER)
                else:
                    waiting[action_id] = 0
                chunk.append(encode(action, action_id))
            if chunk:
                route.write(b"".join(chunk))
            if not waiting and exhausted:
                return batch.answers
            batch.room.clear()
            try:
                await asyncio.wait_for(batch.room.wait(), timeout)
            except TimeoutError:
                raise AmiUnavailable(f"AMI did not answer {len(waiting)} actions") from None
            if batch.lost:
                raise AmiUnavailable(f"AMI connection lost; {len(waiting)} actions unanswered")
    finally:
        for action_id in waiting:  # those unanswered, on failure or cancellation
            route.own.pop(action_id, None)


class _List(Generic[T]):
    """A list action's answer: the response, then its events up to `...Complete`, each
    item projected as it comes (the frame itself is not kept)."""

    def __init__(self, project: Callable[[Frame], T | None]) -> None:
        self.project = project
        self.response: Frame | None = None
        self.items: list[T] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost = False

    def take(self, frame: Frame) -> bool:
        if frame is LINK_LOST:
            self.lost = True
            return self._complete()
        if self.response is None:
            self.response = frame
            if frame.get("Response") == "Error" or frame.get("EventList", "").lower() != "start":
                return self._complete()
            return False
        if frame.get("Event", "").endswith("Complete"):
            return self._complete()
        item = self.project(frame)
        if item is not None:
            self.items.append(item)
        return False

    def _complete(self) -> bool:
        if not self.done.done():
            self.done.set_result(None)
        return True


def _frame(frame: Frame) -> Frame:
    return frame


@overload
async def read_list(route: Route, action: Action, timeout: float) -> list[Frame]: ...


@overload
async def read_list(
    route: Route, action: Action, timeout: float, project: Callable[[Frame], T | None]
) -> list[T]: ...


async def read_list(
    route: Route,
    action: Action,
    timeout: float,
    project: Callable[[Frame], Any] = _frame,
) -> list[Any]:
    """The list items of a list action (every event after the response, without the
    closing `...Complete`), each as `project` makes it as it arrives (None: not kept; a
    DBGetTree of 300,000 keys is never held as frames); AmiActionError if refused,
    AmiUnavailable after `timeout`."""
    action_id = f"bulk/{next(_IDS)}"
    answer = _List(project)
    route.own[action_id] = answer.take
    try:
        route.write(encode(action, action_id))
        await asyncio.wait_for(asyncio.shield(answer.done), timeout)
    except TimeoutError:
        raise AmiUnavailable(f"AMI did not answer {action.get('Action')}") from None
    finally:
        route.own.pop(action_id, None)
    if answer.lost:
        raise AmiUnavailable(f"AMI connection lost; {action.get('Action')} unanswered")
    response = answer.response or {}
    if response.get("Response") == "Error":
        raise AmiActionError(f"{action.get('Action')}: {response.get('Message', 'error')}")
    return answer.items
