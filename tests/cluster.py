"""Gateways as operators run them: `main.py run` child processes on one configuration and
database, each on its own HTTP port, read through `/healthz` (tests/e2e/test_cluster.py,
tests/faults)."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.ami_server import AmiServer
from sandbox.telegram_api import BotApiServer
from sandbox.telegram_api import Call as ApiCall
from tests.stack import environment, health, run_main, sandbox_config, start_main

TOKEN = "654321:CLUSTER-token"
SECRET = "cluster-secret"
CHAT = 4242
DDI = "2100042"
WAIT = 60.0
Frame = dict[str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def split_at(frames: list[Frame], event: str) -> tuple[list[Frame], list[Frame]]:
    """The frames before the first `event`, and the rest."""
    cut = next(i for i, f in enumerate(frames) if f["Event"] == event)
    return frames[:cut], frames[cut:]


def is_missed_call(call: ApiCall) -> bool:
    return (
        call.method == "sendMessage"
        and str(call.params.get("chat_id")) == str(CHAT)
        and "reply_markup" in call.params
    )


@dataclass
class Gateways:
    """`main.py run` processes on one configuration, each on its own HTTP port."""

    config: Path
    log: Path
    extra: dict[str, str] = field(default_factory=dict)
    procs: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)

    def env(self, **more: str) -> dict[str, str]:
        return environment(
            FRONTDESK__AMI__SECRET=SECRET, FRONTDESK__TELEGRAM__TOKEN=TOKEN, **self.extra, **more
        )

    async def cli(self, *args: str) -> str:
        return await run_main(*args, "-c", str(self.config), env=self.env())

    async def start(self) -> int:
        port = free_port()
        with self.log.open("ab") as sink:
            self.procs[port] = await start_main(
                "run",
                "-c",
                str(self.config),
                env=self.env(FRONTDESK__HTTP__PORT=str(port)),
                stderr=sink,
            )
        return port

    async def kill(self, port: int) -> None:
        proc = self.procs.pop(port)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def health(self, port: int) -> dict[str, object] | None:
        try:
            return (await health(f"http://127.0.0.1:{port}/healthz"))[1]
        except Exception:  # not listening yet
            return None

    def exited(self) -> None:
        """A gateway that ended on its own is a failure: say how, with its log's tail."""
        for port, proc in self.procs.items():
            if proc.returncode is not None:
                tail = self.log.read_text("utf-8", "replace")[-3000:]
                raise AssertionError(f"gateway on :{port} exited {proc.returncode}\n{tail}")

    async def leaders(self) -> list[int]:
        self.exited()
        found = []
        for port in self.procs:
            report = await self.health(port)
            if report is not None and report.get("leader") and report.get("ami_connected"):
                found.append(port)
        return found

    async def one_leader(self, timeout: float = WAIT) -> int:
        async with asyncio.timeout(timeout):
            # Polling /healthz, the operator's view: the state is in other processes.
            while len(leaders := await self.leaders()) != 1:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        return leaders[0]

    async def stop(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
        self.procs.clear()


@asynccontextmanager
async def gateways(
    tmp: Path, ami: AmiServer, bot: BotApiServer, url: str, **extra: str
) -> AsyncIterator[Gateways]:
    config = sandbox_config(tmp, ami, bot, tmp / "cluster.sqlite3")
    text = re.sub(r'(?m)^url = ".*"$', f'url = "{url}"', config.read_text("utf-8"))
    config.write_text(text, "utf-8")
    group = Gateways(config, tmp / "gateways.log", dict(extra))
    try:
        yield group
    except BaseException:
        # A failure in CI is read from its report only: show what the gateways said.
        if group.log.exists():
            lines = group.log.read_text("utf-8", "replace").splitlines()
            print("--- the gateways' log, last 120 lines ---", *lines[-120:], sep="\n")
        raise
    finally:
        await group.stop()


async def link_subscriber(group: Gateways, bot: BotApiServer) -> None:
    added = await group.cli(
        "subscriber", "add", "--name", "Γραφείο Κ.", "--ddi", DDI, "--language", "el"
    )
    match = re.search(r"link code: (\S+)", added)
    assert match, added
    bot.inject_message(CHAT, f"/start {match[1]}", language_code="el")
    await bot.wait_for(lambda c: c.method == "sendMessage", timeout=WAIT)
