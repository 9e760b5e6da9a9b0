"""The test harness's own AMI connection to a real Asterisk: places calls as the outside
world would (AMI Originate, with any caller id) and watches every event, so a test can
wait for what the PBX did. Independent of the product's AMI client on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Mapping

from sandbox.lifecycle import Served

Frame = dict[str, str]
RECEIVED = "X-Received"  # added to each event: time.monotonic() when it arrived


def received(frame: Frame) -> float:
    return float(frame[RECEIVED])


def _parse(block: bytes) -> Frame:
    frame: Frame = {}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep and key not in frame:
            frame[key.strip()] = value.strip()
    return frame


class AmiHarness(Served):
    def __init__(self, port: int, username: str, secret: str, host: str = "127.0.0.1") -> None:
        self.host, self.port, self.username, self.secret = host, port, username, secret
        self.events: list[Frame] = []
        self._answers: dict[str, asyncio.Future[Frame]] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        reader, self._writer = await asyncio.open_connection(self.host, self.port)
        await reader.readline()  # the banner
        self._reader_task = asyncio.create_task(self._read(reader))
        answer = await self.action(
            {"Action": "Login", "Username": self.username, "Secret": self.secret}
        )
        if answer.get("Response") != "Success":
            raise RuntimeError(f"harness AMI login refused: {answer.get('Message')}")

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task

    async def _read(self, reader: asyncio.StreamReader) -> None:
        buffer = b""
        while chunk := await reader.read(65536):
            buffer += chunk
            *blocks, buffer = buffer.split(b"\r\n\r\n")
            for block in blocks:
                frame = _parse(block)
                waiter = self._answers.pop(frame.get("ActionID", ""), None)
                if waiter is not None and "Event" not in frame and not waiter.done():
                    waiter.set_result(frame)
                elif "Event" in frame:
                    frame[RECEIVED] = f"{time.monotonic():.3f}"
                    self.events.append(frame)
            await self._notify()

    async def action(self, action: Mapping[str, str], timeout: float = 10.0) -> Frame:
        assert self._writer is not None
        action_id = f"h{next(self._ids)}"
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._answers[action_id] = future
        text = "".join(f"{k}: {v}\r\n" for k, v in {**action, "ActionID": action_id}.items())
        self._writer.write((text + "\r\n").encode())
        async with asyncio.timeout(timeout):
            return await future

    async def wait_event(self, predicate: Callable[[Frame], bool], timeout: float = 30.0) -> Frame:
        def found() -> Frame | None:
            return next((e for e in self.events if predicate(e)), None)

        frame = await self._wait_for(found, timeout)
        assert frame is not None  # _wait_for returns only a truthy value
        return frame

    async def wait_until(self, condition: Callable[[], object], timeout: float = 30.0) -> None:
        """Until condition() holds, rechecked on every event."""
        await self._wait_for(lambda: condition() or None, timeout)

    async def call(
        self,
        ddi: str,
        caller: str,
        *,
        patience: float = 60.0,
        wait: float | None = None,
        say: str | None = None,
        hold: float | None = None,
    ) -> Frame:
        """An outside caller (`"Name" <number>`) dials `ddi`: rings at most `patience`
        seconds; once answered waits `wait` s, plays sound `say`, holds `hold` s, hangs up.
        Returns the Originate's answer; the call runs on its own (Async)."""
        variables = {
            "__DID": ddi,  # inherited by the PBX's half, which dials it
            "CALLER_WAIT": wait,
            "CALLER_SAY": say,
            "CALLER_HOLD": hold,
        }
        action = {
            "Action": "Originate",
            # One trunk for every DID, as a carrier delivers them: every call's channel
            # is Local/trunk@test-inbound-<n>, so names repeat after a restart.
            "Channel": "Local/trunk@test-inbound",
            "Context": "test-caller",
            "Exten": "s",
            "Priority": "1",
            "CallerID": caller,
            "Timeout": str(int(patience * 1000)),
            "Async": "true",
        }
        if assigned := ",".join(f"{k}={v}" for k, v in variables.items() if v is not None):
            action["Variable"] = assigned
        answer = await self.action(action)
        if answer.get("Response") != "Success":
            raise RuntimeError(f"Originate refused: {answer.get('Message')}")
        return answer
