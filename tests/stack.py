"""What end-to-end tests share: settings that point at the sandbox peers on loopback, the
real command line as a child process, a watch on the gateway's background loops, and its
`/healthz`. Tests add their own sections and peers."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import aiohttp

from gateway.supervise import LoopState, Supervisor
from models.database import migrate
from models.settings import Settings, load_settings, with_section
from notifiers.base import ManagedNotifier
from sandbox.ami_server import AmiServer
from sandbox.telegram_api import BotApiServer
from tests.pg_cluster import database_url_for

if TYPE_CHECKING:
    from bot.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
N = TypeVar("N", bound=ManagedNotifier)


def sandbox_settings(
    database: Path, ami: AmiServer, bot: BotApiServer, token: str, ami_secret: str = "s"
) -> Settings:
    """A throw-away SQLite database, an ephemeral HTTP port and short polls."""
    s = load_settings(None, environ={})
    s = with_section(s, "database", url=database_url_for(database))
    s = with_section(s, "ami", port=ami.port, secret=ami_secret)
    s = with_section(
        s,
        "telegram",
        token=token,
        base_url=bot.base_url,
        base_file_url=bot.base_file_url,
        poll_timeout=1.0,
        # The sandbox Bot API has no flood limits unless a test turns them on: no pacing.
        send_rate=0.0,
        chat_rate=0.0,
    )
    s = with_section(s, "http", port=0)
    return with_section(s, "outbox", idle_poll=0.1)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Runtime]:
    """The product in this process (gateway and bot, as `main.py run` composes them) on
    `settings`, its database migrated first; stopped at the end."""
    from bot.runtime import Runtime

    await migrate(settings.database.url)
    runtime = Runtime(settings)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


@asynccontextmanager
async def started(notifier: N) -> AsyncIterator[N]:
    """One channel's notifier, started and stopped around the block."""
    await notifier.start()
    try:
        yield notifier
    finally:
        await notifier.stop()


# -- the command line, as operators run it ---------------------------------------------------


def sandbox_config(tmp: Path, ami: AmiServer, bot: BotApiServer, database: Path) -> Path:
    """`tmp/frontdesk.toml` for `main.py run` against the sandbox peers: quick reconnects,
    a short lease and polls. The secrets go by environment, as operators are told."""
    path = tmp / "frontdesk.toml"
    path.write_text(
        f"""
[database]
url = "{database_url_for(database)}"
[ami]
port = {ami.port}
reconnect_min = 0.05
[telegram]
base_url = "{bot.base_url}"
base_file_url = "{bot.base_file_url}"
poll_timeout = 1.0
send_rate = 0.0
chat_rate = 0.0
[http]
port = 0
[outbox]
lease_seconds = 1.0
idle_poll = 0.2
""",
        "utf-8",
    )
    return path


Output = int | IO[Any] | None


def environment(**settings: str) -> dict[str, str]:
    """This process's environment without FRONTDESK__ settings of its own, plus `settings`
    (FRONTDESK__SECTION__KEY: value)."""
    own = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK__")}
    return own | settings


async def start_main(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: Output = None,
    stdout: Output = None,
    stderr: Output = None,
) -> asyncio.subprocess.Process:
    """`python main.py ARGS` in the checkout, as a child process (the real command line)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "main.py",
        *args,
        cwd=ROOT,
        env=env if env is not None else environment(),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
    )


async def run_main(*args: str, env: dict[str, str] | None = None) -> str:
    """`python main.py ARGS` to its end: what it printed; a failure fails with its stderr."""
    pipe = asyncio.subprocess.PIPE
    proc = await start_main(*args, env=env, stdout=pipe, stderr=pipe)
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"main.py {' '.join(args)}: {proc.returncode}\n{err.decode()}"
    return out.decode()


# -- the gateway's background loops and its health -------------------------------------------


class LoopStates:
    """Every (loop, state) change a supervisor reports, with waits for one."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.seen: list[tuple[str, LoopState]] = []
        self._changed = asyncio.Event()
        supervisor.observers.append(self._observe)

    def _observe(self, name: str, state: LoopState) -> None:
        self.seen.append((name, state))
        self._changed.set()

    async def _until(self, found: Any, timeout: float) -> Any:
        async with asyncio.timeout(timeout):
            while not (result := found()):
                self._changed.clear()
                await self._changed.wait()
        return result

    async def wait(self, name: str, state: LoopState, timeout: float = 5.0) -> None:
        """Until loop `name` has been in `state`."""
        await self._until(lambda: (name, state) in self.seen, timeout)

    async def first(self, state: LoopState, timeout: float = 5.0) -> str:
        """The name of the first loop seen in `state` (waiting for one)."""
        names = await self._until(lambda: [n for n, s in self.seen if s is state], timeout)
        return str(names[0])


async def health(url: str) -> tuple[int, dict[str, Any]]:
    """GET /healthz: the status and the JSON body."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()
