"""Database lifecycle: tortoise config, schema migrations, connections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.migrations.api import migrate as run_migrations

MODELS_APP = "models"


def tortoise_config(url: str) -> dict[str, Any]:
    return {
        "connections": {"default": url},
        "apps": {
            MODELS_APP: {
                "models": ["models.db"],
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
