"""No configured secret reaches the log: the real `main.py run` at DEBUG against the sandbox
Bot API and AMI (httpx and python-telegram-bot log Bot API URLs, which carry the token), and
a refused token (InvalidToken quotes it in its traceback), in text and in JSON lines.
The filter and the formatters alone: tests/unit/test_logs.py."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from models import redact
from models.settings import load_settings
from sandbox.ami_server import AmiServer
from sandbox.telegram_api import BotApiServer
from tests.pg_cluster import database_url_for
from tests.stack import environment, start_main

TOKEN = "918273:REDACT-me-Bot-token"
SECRETS = {
    "FRONTDESK__TELEGRAM__TOKEN": TOKEN,
    "FRONTDESK__AMI__SECRET": "ami-Secret-4711",
    "FRONTDESK__SMTP__PASSWORD": "smtp-Pass-w0rd",
    "FRONTDESK__SMPP__PASSWORD": "smpp-pw",
    "FRONTDESK__MMS__PASSWORD": "mm7/pass word+1",
    "FRONTDESK__MMS__REPORT_PASSWORD": "mm7-report-pw",
    "FRONTDESK__FAX__SECRET": "fax-hmac-Secret",
}
WAIT = 60.0  # a gateway process starting under CI load (imports, migrations) takes a while


def settings_env(tmp: Path, ami: AmiServer, bot: BotApiServer) -> dict[str, str]:
    return environment(
        **SECRETS,
        FRONTDESK__DATABASE__URL=database_url_for(tmp / "redact.sqlite3"),
        FRONTDESK__LOG__LEVEL="DEBUG",
        FRONTDESK__AMI__PORT=str(ami.port),
        FRONTDESK__TELEGRAM__BASE_URL=bot.base_url,
        FRONTDESK__TELEGRAM__BASE_FILE_URL=bot.base_file_url,
        FRONTDESK__TELEGRAM__POLL_TIMEOUT="1.0",
        FRONTDESK__HTTP__PORT="0",
        FRONTDESK__SMTP__USERNAME="frontdesk",
        FRONTDESK__MMS__USERNAME="vasp",
    )


async def run_gateway(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as sink:
        return await start_main("run", env=env, stdout=sink, stderr=sink)


def assert_no_secret(output: str) -> None:
    settings = load_settings(None, environ=SECRETS | {"FRONTDESK__MMS__USERNAME": "vasp"})
    leaked = [form for form in redact.secret_forms(settings) if form in output]
    assert leaked == [], f"secrets in the log: {leaked}"


async def test_a_debug_run_never_logs_the_token(tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    async with (
        AmiServer(secret=SECRETS["FRONTDESK__AMI__SECRET"]) as ami,
        BotApiServer(TOKEN) as bot,
    ):
        gateway = await run_gateway(settings_env(tmp_path, ami, bot), log)
        try:
            await ami.wait_logged_in(1, timeout=WAIT)
            await bot.wait_polling(1, timeout=WAIT)
            bot.inject_message(501, "/start nonsense")  # a handler runs, an answer goes out
            await bot.wait_for(lambda c: c.method == "sendMessage", timeout=WAIT)
        finally:
            gateway.send_signal(signal.SIGTERM)
            await asyncio.wait_for(gateway.wait(), WAIT)
    output = log.read_text("utf-8")
    assert gateway.returncode == 0, output
    # The libraries did log the Bot API URLs at DEBUG, with the token masked.
    assert "HTTP Request: POST" in output and f"{bot.base_url}***/getUpdates" in output
    assert_no_secret(output)


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_a_refused_token_fails_with_a_redacted_traceback(
    tmp_path: Path, log_format: str
) -> None:
    log = tmp_path / "gateway.log"
    async with (
        AmiServer(secret=SECRETS["FRONTDESK__AMI__SECRET"]) as ami,
        BotApiServer(TOKEN) as bot,
    ):
        bot.fail_next("getMe", status=401, description="Unauthorized")
        env = settings_env(tmp_path, ami, bot) | {"FRONTDESK__LOG__FORMAT": log_format}
        gateway = await run_gateway(env, log)
        await asyncio.wait_for(gateway.wait(), WAIT)
    output = log.read_text("utf-8")
    assert gateway.returncode == 1, output
    assert_no_secret(output)
    if log_format == "json":  # one object per line, the traceback inside one of them
        records = [json.loads(line) for line in output.splitlines()]
        [failed] = [r for r in records if r["msg"] == "frontdesk run failed"]
        assert failed["level"] == "ERROR" and failed["logger"] == "frontdesk"
        output = failed["exc_info"]
    assert "Traceback (most recent call last)" in output
    assert "telegram.error.InvalidToken: The token `***` was rejected by the server." in output
    assert_no_secret(output)
