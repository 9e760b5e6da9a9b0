"""AstDB re-assert at AMI login: how long a login with 30,000 DDIs takes to agree.

    python bench/reassert.py [--subscribers N] [--ddis-each K] [--json PATH] [--asterisk PATH]

A throw-away SQLite database holds N subscribers with K DDIs each (every DDI with a
mailbox: three keys each, scenario/, forward/, mailbox/). The gateway's own code path
(AmiClient, Control.reassert_all: DBGetTree, the DDIs read in pages of 5,000, the diff,
pipelined DBPut/DBDel)
runs against the sandbox AMI server in a child process (its CPU is not ours), twice:
  cold   the PBX holds nothing: every key is written
  warm   a second login, nothing changed: the PBX agrees, only the reads
While each runs, a ticker measures how late the event loop answers (the longest stall is
how long an AMI event could have waited behind the re-assert; on a loaded machine it
includes the time the OS gave other processes), and "our CPU s" is this process's CPU
time over the re-assert (the peer's is not in it). With --asterisk (the
launcher script of a real Asterisk 22), the same two logins against a private Asterisk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.control.lines import Control, Reasserted  # noqa: E402
from gateway.pbx.actions import Pbx  # noqa: E402
from gateway.pbx.client import AmiClient  # noqa: E402
from models.database import close_db, migrate, open_db  # noqa: E402
from models.db import Ddi, Subscriber  # noqa: E402
from models.settings import AmiSettings  # noqa: E402
from models.vocab import Scenario  # noqa: E402

USER, SECRET = "frontdesk", "bench-secret"
SCENARIOS = (Scenario.AGENT,) * 7 + (Scenario.VOICEMAIL, Scenario.FORWARD, Scenario.CLOSED)
TICK = 0.005  # the stall ticker's period


async def seed(subscribers: int, ddis_each: int) -> int:
    """Subscribers with DDIs 21<8 digits>, mobiles, a mix of scenarios, some forward
    numbers, and a mailbox on every DDI; in bulk. Returns the number of DDIs."""
    await Subscriber.bulk_create(
        [
            Subscriber(
                name=f"Office {i}",
                scenario=SCENARIOS[i % len(SCENARIOS)],
                mobile=f"+3069{i:08d}",
                forward_number=f"+3021{i:08d}" if i % 4 == 0 else None,
            )
            for i in range(subscribers)
        ],
        batch_size=2000,
    )
    ids = await Subscriber.all().order_by("id").values_list("id", flat=True)
    await Ddi.bulk_create(
        [
            Ddi(number=f"21{n:08d}", mailbox=f"{n}@default", subscriber_id=sid)
            for i, sid in enumerate(ids)
            for n in range(i * ddis_each, (i + 1) * ddis_each)
        ],
        batch_size=5000,
    )
    return len(ids) * ddis_each


@dataclass
class Login:
    result: Reasserted
    stall_ms: float  # the longest the event loop was late while the re-assert ran
    cpu_s: float  # this process's CPU time over the re-assert (the peer's is not in it)


class Stalls:
    """A ticker: how late the loop runs a callback due every TICK seconds."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + TICK
            await asyncio.sleep(TICK)
            self.worst = max(self.worst, loop.time() - due)

    def __enter__(self) -> Stalls:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def login(port: int, secret: str) -> Login:
    """Log in, re-assert as the gateway does on its on-connect hook, log off."""
    done: asyncio.Future[Login] = asyncio.get_running_loop().create_future()
    client: AmiClient

    async def connected() -> None:
        cpu = time.process_time()
        with Stalls() as stalls:
            try:
                result = await control.reassert_all()
            except Exception as exc:
                done.set_exception(exc)
                return
        done.set_result(Login(result, stalls.worst * 1000, time.process_time() - cpu))

    settings = AmiSettings(port=port, username=USER, secret=secret, ping_interval=60.0)
    client = AmiClient(settings, lambda frame: None, frozenset(), on_connected=connected)
    control = Control(Pbx(client))
    await client.start()
    try:
        return await asyncio.wait_for(done, 600)
    finally:
        await client.stop()


@asynccontextmanager
async def sandbox_ami() -> AsyncIterator[tuple[int, str]]:
    """The sandbox AMI server in a child process (this file with --serve)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdin is not None
    port = int(await child.stdout.readline())
    try:
        yield port, SECRET
    finally:
        child.stdin.close()  # the child stops when its stdin closes
        await child.wait()


async def serve() -> None:
    from sandbox.ami_server import AmiServer

    server = AmiServer(username=USER, secret=SECRET)
    await server.start()
    print(server.port, flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()  # until the parent closes our stdin
    await server.stop()


@asynccontextmanager
async def real_asterisk(launcher: Path, root: Path) -> AsyncIterator[tuple[int, str]]:
    from sandbox.real_pbx import AMI_USER, PbxConfig, PrivateAsterisk

    assert AMI_USER == USER
    pbx = PrivateAsterisk(
        launcher, root, PbxConfig(dialplan=ROOT / "deploy/asterisk/extensions_frontdesk.conf")
    )
    await pbx.start()
    try:
        yield pbx.ami_port, pbx.config.ami_secret
    finally:
        await pbx.stop()


async def run(
    workdir: Path, subscribers: int, ddis_each: int, launcher: Path | None = None
) -> tuple[int, Login, Login]:
    """Seed, then a cold and a warm login against the sandbox (or the real Asterisk)."""
    url = f"sqlite://{workdir / 'bench.sqlite3'}"
    await migrate(url)
    await open_db(url)
    try:
        ddis = await seed(subscribers, ddis_each)
        peer = sandbox_ami() if launcher is None else real_asterisk(launcher, workdir / "pbx")
        async with peer as (port, secret):
            cold = await login(port, secret)
            warm = await login(port, secret)
    finally:
        await close_db()
    return ddis, cold, warm


HEAD = (
    f"{'login':<24} {'DDIs':>7} {'written':>8} {'deleted':>8} {'seconds':>8} "
    f"{'our CPU s':>9} {'stall ms':>9}"
)


def row(name: str, ddis: int, login: Login) -> str:
    r = login.result
    return (
        f"{name:<24} {ddis:>7,} {r.written:>8,} {r.deleted:>8,} {r.seconds:>8.2f} "
        f"{login.cpu_s:>9.2f} {login.stall_ms:>9.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--ddis-each", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    ap.add_argument("--asterisk", type=Path, help="also against this real Asterisk launcher")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.getLogger("gateway.pbx.client").setLevel(logging.ERROR)  # each logoff's warning
    if args.serve:
        asyncio.run(serve())
        return
    print(HEAD)
    with tempfile.TemporaryDirectory() as tmp:
        ddis, cold, warm = asyncio.run(run(Path(tmp), args.subscribers, args.ddis_each))
    print(row("sandbox cold (empty)", ddis, cold))
    print(row("sandbox warm (agrees)", ddis, warm))
    figures: dict[str, float | int] = {
        "reassert_s": round(cold.result.seconds, 3),
        "reassert_warm_s": round(warm.result.seconds, 3),
        "reassert_ddis": ddis,
        "reassert_stall_ms": round(max(cold.stall_ms, warm.stall_ms), 1),
    }
    if args.asterisk:
        with tempfile.TemporaryDirectory() as tmp:
            ddis, a_cold, a_warm = asyncio.run(
                run(Path(tmp), args.subscribers, args.ddis_each, args.asterisk)
            )
        print(row("asterisk cold (empty)", ddis, a_cold))
        print(row("asterisk warm (agrees)", ddis, a_warm))
        figures["reassert_asterisk_s"] = round(a_cold.result.seconds, 3)
        figures["reassert_asterisk_warm_s"] = round(a_warm.result.seconds, 3)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    main()
