"""Settings every end-to-end test starts from: the sandbox peers on loopback, a throw-away
SQLite database, an ephemeral HTTP port and short polls. Tests add their own sections."""

from __future__ import annotations

from pathlib import Path

from models.settings import Settings, load_settings, with_section
from sandbox.ami_server import AmiServer
from sandbox.telegram_api import BotApiServer


def sandbox_settings(
    database: Path, ami: AmiServer, bot: BotApiServer, token: str, ami_secret: str = "s"
) -> Settings:
    s = load_settings(None, environ={})
    s = with_section(s, "database", url=f"sqlite://{database}")
    s = with_section(s, "ami", port=ami.port, secret=ami_secret)
    s = with_section(
        s,
        "telegram",
        token=token,
        base_url=bot.base_url,
        base_file_url=bot.base_file_url,
        poll_timeout=1.0,
    )
    s = with_section(s, "http", port=0)
    return with_section(s, "outbox", idle_poll=0.1)
