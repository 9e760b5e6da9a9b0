"""`main.py message` against a busy SQLite database: it waits for the lock and queues the
message, or says clearly that it did not; never a traceback, never a silent loss. Fifty at
once beside a running gateway all queue (on PostgreSQL too, FRONTDESK_TEST_DB=postgres)."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from models.database import close_db, open_db
from models.db import Notification
from sandbox.ami_server import AmiServer
from sandbox.telegram_api import BotApiServer
from tests.pg_cluster import database_url_for
from tests.stack import environment, run_main, sandbox_config, start_main

TOKEN = "654321:BUSY-token"
SECRET = "busy-secret"
ENV = environment(FRONTDESK__AMI__SECRET=SECRET, FRONTDESK__TELEGRAM__TOKEN=TOKEN)

WAIT = 60.0
SQLITE_LOCKED = pytest.mark.sqlite_only("a second process holds BEGIN EXCLUSIVE on the file")
# A second process takes the database for itself until told (a line on stdin) to let go.
LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
print("released", flush=True)
"""


def _config(tmp: Path, busy_timeout_ms: int) -> Path:
    path = tmp / "frontdesk.toml"
    url = f"sqlite://{tmp / 'busy.sqlite3'}?busy_timeout={busy_timeout_ms}"
    path.write_text(f'[database]\nurl = "{url}"\n', "utf-8")
    return path


@asynccontextmanager
async def _locked(db: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    locker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOCKER,
        str(db),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert locker.stdin is not None and locker.stdout is not None
    try:
        assert await asyncio.wait_for(locker.stdout.readline(), WAIT) == b"locked\n"
        yield locker
    finally:
        if locker.returncode is None:
            locker.stdin.write(b"go\n")
            await locker.stdin.drain()
            await asyncio.wait_for(locker.wait(), WAIT)


async def _release(locker: asyncio.subprocess.Process) -> None:
    assert locker.stdin is not None and locker.stdout is not None
    locker.stdin.write(b"go\n")
    await locker.stdin.drain()
    assert await asyncio.wait_for(locker.stdout.readline(), WAIT) == b"released\n"


async def _message(config: Path, *args: str) -> asyncio.subprocess.Process:
    pipe = asyncio.subprocess.PIPE
    text = "Call back Ms Papadopoulou"
    return await start_main(
        "message", "1", "--text", text, *args, "-c", str(config), env=ENV, stdout=pipe, stderr=pipe
    )


async def _cli(config: Path, *args: str) -> str:
    return await run_main(*args, "-c", str(config), env=ENV)


async def _stderr_until(proc: asyncio.subprocess.Process, pattern: str) -> str:
    """Read the process's stderr until a line matches (its log says what it is doing)."""
    assert proc.stderr is not None
    seen = ""
    while not re.search(pattern, seen):
        line = await asyncio.wait_for(proc.stderr.readline(), WAIT)
        assert line, f"ended before {pattern!r}: {seen}"
        seen += line.decode()
    return seen


async def _messages(url: str) -> int:
    """The messages queued in the database at `url`, read as the gateway's own models."""
    await open_db(url)
    try:
        return await Notification.filter(dedupe_key__startswith="message:").count()
    finally:
        await close_db()


async def _setup(tmp_path: Path, busy_timeout_ms: int) -> tuple[Path, Path]:
    config = _config(tmp_path, busy_timeout_ms)
    await _cli(config, "subscriber", "add", "--name", "Γραφείο Κ.", "--ddi", "2100009")
    return config, tmp_path / "busy.sqlite3"


@SQLITE_LOCKED
async def test_message_waits_for_a_lock_and_queues_after_it(tmp_path: Path) -> None:
    config, db = await _setup(tmp_path, busy_timeout_ms=200)
    async with _locked(db) as locker:
        proc = await _message(config)
        logged = await _stderr_until(proc, r"database locked \(try 2\)")
        assert proc.returncode is None  # still waiting, not failed
        await _release(locker)
        out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    logged += err.decode()
    assert proc.returncode == 0, logged
    assert re.fullmatch(r"message message:[0-9a-f]{16} queued\n", out.decode())
    assert "Traceback" not in logged
    assert await _messages(f"sqlite://{db}") == 1


@SQLITE_LOCKED
async def test_message_gives_up_clearly_when_the_lock_stays(tmp_path: Path) -> None:
    config, db = await _setup(tmp_path, busy_timeout_ms=100)
    async with _locked(db):
        proc = await _message(config, "--wait", "1")
        out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 3, err.decode()
    assert "database stayed locked for 1s" in err.decode()
    assert "NOT queued" in err.decode() and "Traceback" not in err.decode()
    assert out == b"" and await _messages(f"sqlite://{db}") == 0


async def test_fifty_concurrent_messages_against_a_running_gateway_all_queue(
    tmp_path: Path,
) -> None:
    async with AmiServer(secret=SECRET) as ami, BotApiServer(TOKEN) as bot:
        config = sandbox_config(tmp_path, ami, bot, tmp_path / "gateway.sqlite3")
        await _cli(config, "subscriber", "add", "--name", "Γραφείο Κ.", "--ddi", "2100009")
        with (tmp_path / "gateway.log").open("ab") as log:
            gateway = await start_main("run", "-c", str(config), env=ENV, stderr=log)
        try:
            await ami.wait_logged_in(1, timeout=WAIT)  # running: its loops use the database
            procs = [await _message(config) for _ in range(50)]
            results = await asyncio.gather(*(p.communicate() for p in procs))
        finally:
            gateway.terminate()
            await asyncio.wait_for(gateway.wait(), WAIT)
    errors = [err.decode() for p, (_, err) in zip(procs, results, strict=True) if p.returncode]
    assert errors == []
    assert all(b"queued" in out for out, _ in results)
    assert not any(b"Traceback" in err for _, err in results)
    # SQLite's file or, with FRONTDESK_TEST_DB=postgres, the database named after it.
    assert await _messages(database_url_for(tmp_path / "gateway.sqlite3")) == 50
