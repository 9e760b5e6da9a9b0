"""What the latency and memory benchmarks share: a database seeded in bulk, and the real
gateway (`main.py run`, gateway and bot) as a child process against sandbox peers that
live in the benchmark's own process, so the peers' CPU is not the gateway's and both
sides stamp times on the same clock (CLOCK_MONOTONIC is system-wide).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.database import close_db, migrate, open_db  # noqa: E402
from models.db import Ddi, Role, Subscriber, User  # noqa: E402
from models.vocab import Scenario  # noqa: E402
from sandbox.ami_server import AmiServer  # noqa: E402
from sandbox.telegram_api import BotApiServer  # noqa: E402

TOKEN = "123456:BENCH-token"
AMI_SECRET = "bench-secret"
CHAT_BASE = 10_000_000  # subscriber i's chat id is CHAT_BASE + i
BULK = 5_000  # rows per INSERT batch


def ddi_of(subscriber: int, k: int = 0, per_subscriber: int = 1) -> str:
    """The k-th DDI of subscriber i (1-based): distinct digits, 9 long like the demo's."""
    return f"2{(subscriber - 1) * per_subscriber + k:08d}"


def chat_of(subscriber: int) -> int:
    return CHAT_BASE + subscriber


@dataclass(frozen=True)
class Seeded:
    subscribers: int
    ddis: int
    chats: int
    seconds: float


async def seed(url: str, subscribers: int, ddis_each: int = 1, chats: int | None = None) -> Seeded:
    """Migrate `url`, then add subscribers 1..N with `ddis_each` DDIs each, and a linked
    Telegram chat for the first `chats` of them (all by default), in bulk inserts."""
    started = time.perf_counter()
    chats = subscribers if chats is None else chats
    await migrate(url)
    await open_db(url)
    try:
        for first in range(1, subscribers + 1, BULK):
            ids = range(first, min(first + BULK, subscribers + 1))
            await Subscriber.bulk_create(
                [
                    Subscriber(
                        id=i,
                        name=f"Office {i}",
                        language="en",
                        timezone="Europe/Athens",
                        scenario=Scenario.AGENT,
                        instructions="",
                    )
                    for i in ids
                ]
            )
            await Ddi.bulk_create(
                [
                    Ddi(number=ddi_of(i, k, ddis_each), subscriber_id=i, mailbox=str(1000 + i))
                    for i in ids
                    for k in range(ddis_each)
                ]
            )
            await User.bulk_create(
                [
                    User(
                        name=f"Owner {i}",
                        role=Role.SUBSCRIBER,
                        telegram_chat_id=chat_of(i),
                        subscriber_id=i,
                    )
                    for i in ids
                    if i <= chats
                ]
            )
    finally:
        await close_db()
    return Seeded(subscribers, subscribers * ddis_each, chats, time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp: Path, url: str, ami: AmiServer, bot: BotApiServer, http_port: int) -> Path:
    """Production defaults but for the peers' addresses; secrets go by environment."""
    path = tmp / "frontdesk.toml"
    path.write_text(
        f"""
[database]
url = "{url}"
[ami]
port = {ami.port}
username = "{ami.username}"
reconnect_min = 0.05
[telegram]
base_url = "{bot.base_url}"
base_file_url = "{bot.base_file_url}"
poll_timeout = 10.0
[http]
port = {http_port}
[log]
level = "WARNING"
""",
        "utf-8",
    )
    return path


class GatewayProcess:
    """`python main.py run -c CONFIG` as a child, its stderr to `log`; `python_args` stand
    for `main.py` (e.g. `-m cProfile -o OUT main.py`). Stopped with SIGTERM, as systemd
    stops it."""

    def __init__(
        self, config: Path, http_port: int, log: Path, python_args: Sequence[str] = ("main.py",)
    ) -> None:
        self.config, self.http_port, self.log = config, http_port, log
        self.python_args = list(python_args)
        self.proc: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK__")}
        env |= {"FRONTDESK__TELEGRAM__TOKEN": TOKEN, "FRONTDESK__AMI__SECRET": AMI_SECRET}
        with self.log.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *self.python_args,
                "run",
                "-c",
                str(self.config),
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=err,
            )
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def health(self) -> dict[str, Any] | None:
        """/healthz's body, or None while it does not answer."""
        assert self._session is not None
        url = f"http://127.0.0.1:{self.http_port}/healthz"
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as r:
                body: dict[str, Any] = await r.json()
                return body
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def until(self, what: str, check: Any, timeout: float, every: float = 0.2) -> Any:
        """Poll /healthz until `check(body)` is truthy; a dead child or the timeout fails
        with the tail of its log."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise RuntimeError(f"gateway exited ({self.proc.returncode}):\n{self.tail()}")
            body = await self.health()
            if body is not None and (found := check(body)):
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"gateway: no {what} within {timeout:.0f}s\n{self.tail()}")
            await asyncio.sleep(every)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """User + system CPU time the gateway has used (from /proc/<pid>/stat)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def settle(self, busy: float = 0.1, every: float = 0.5, timeout: float = 120) -> float:
        """Until the gateway uses less than `busy` of a core over `every` seconds (what a
        burst of setup left queued, e.g. screen-pop lookups, is done); seconds waited."""
        started = time.monotonic()
        before = self.cpu_seconds()
        while time.monotonic() - started < timeout:
            await asyncio.sleep(every)  # sampling CPU time, not synchronising
            now = self.cpu_seconds()
            if now - before < busy * every:
                break
            before = now
        return time.monotonic() - started

    def rss_mb(self) -> float:
        """VmRSS of the gateway process, in MB (from /proc)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS in /proc status")
