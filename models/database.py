"""Database lifecycle: tortoise config, schema migrations, connections.

SQLite is shared by the gateway and command-line writers (`main.py message`), each with
its own connection: WAL (readers never block the writer), a busy timeout (a writer waits
for the lock rather than failing at once), and write transactions that take the write
lock when they begin (BEGIN IMMEDIATE): a deferred transaction that reads first and then
writes fails at once with "database is locked" if another process wrote in between,
whatever the busy timeout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate as run_migrations

from models import sqlite_engine

MODELS_APP = "models"
BUSY_TIMEOUT_MS = 5000  # a writer waits this long for another's lock before "locked"
SQLITE_PRAGMAS: dict[str, Any] = {
    "journal_mode": "WAL",
    "busy_timeout": BUSY_TIMEOUT_MS,
    "synchronous": "NORMAL",  # durable with WAL except on power loss; far fewer fsyncs
}


def is_locked(exc: BaseException) -> bool:
    """Whether an error (or one it wraps) is SQLite's "database is locked"."""
    seen: BaseException | None = exc
    while seen is not None:
        if "database is locked" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def connection_config(url: str) -> str | dict[str, Any]:
    """The tortoise connection for a URL: SQLite with our pragmas and client (parameters
    in the URL win), any other database as the URL."""
    if not url.startswith("sqlite://"):
        return url
    config = expand_db_url(url)
    config["engine"] = sqlite_engine.__name__
    config["credentials"] = {**SQLITE_PRAGMAS, **config["credentials"]}
    return config


def tortoise_config(url: str) -> dict[str, Any]:
    return {
        "connections": {"default": connection_config(url)},
        "apps": {
            MODELS_APP: {
                "models": [
                    "models.db",
                    "models.staff",
                    "models.web",
                    "models.schedule",
                    "models.reminders",
                    "models.campaigns",
                ],
                "migrations": "models.migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _ensure_sqlite_dir(url: str) -> None:
    # SQLite creates the file but not its folder; operators expect a fresh checkout to work.
    if url.startswith("sqlite://") and ":memory:" not in url:
        Path(url.removeprefix("sqlite://")).parent.mkdir(parents=True, exist_ok=True)


async def migrate(url: str) -> None:
    """Bring the schema up to date (idempotent); the only way tables are created."""
    _ensure_sqlite_dir(url)
    try:
        await run_migrations(config=tortoise_config(url))
    finally:
        # An open aiosqlite thread would keep a failed CLI command from exiting.
        await Tortoise.close_connections()


async def open_db(url: str) -> None:
    _ensure_sqlite_dir(url)
    await Tortoise.init(config=tortoise_config(url))


async def close_db() -> None:
    await Tortoise.close_connections()


# For tortoise's own CLI: `tortoise -c models.database.TORTOISE_ORM makemigrations`.
TORTOISE_ORM = tortoise_config("sqlite://var/frontdesk.sqlite3")
