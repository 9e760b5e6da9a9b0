"""No configured secret reaches the log: the real `main.py run` at DEBUG against the sandbox
Bot API and AMI (httpx and python-telegram-bot log Bot API URLs, which carry the token),
a refused token (InvalidToken quotes it in its traceback), and the filter itself."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from models import redact
from models.settings import Settings, load_settings
from sandbox.ami_server import AmiServer
from sandbox.telegram_api import BotApiServer

ROOT = Path(__file__).resolve().parents[2]
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
WAIT = 20.0


def environment(tmp: Path, ami: AmiServer, bot: BotApiServer) -> dict[str, str]:
    return {
        **os.environ,
        **SECRETS,
        "FRONTDESK__DATABASE__URL": f"sqlite://{tmp / 'redact.sqlite3'}",
        "FRONTDESK__LOG__LEVEL": "DEBUG",
        "FRONTDESK__AMI__PORT": str(ami.port),
        "FRONTDESK__TELEGRAM__BASE_URL": bot.base_url,
        "FRONTDESK__TELEGRAM__BASE_FILE_URL": bot.base_file_url,
        "FRONTDESK__TELEGRAM__POLL_TIMEOUT": "1.0",
        "FRONTDESK__HTTP__PORT": "0",
        "FRONTDESK__SMTP__USERNAME": "frontdesk",
        "FRONTDESK__MMS__USERNAME": "vasp",
    }


async def run_gateway(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable, "main.py", "run", cwd=ROOT, env=env, stdout=sink, stderr=sink
        )


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
        gateway = await run_gateway(environment(tmp_path, ami, bot), log)
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


async def test_a_refused_token_fails_with_a_redacted_traceback(tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    async with (
        AmiServer(secret=SECRETS["FRONTDESK__AMI__SECRET"]) as ami,
        BotApiServer(TOKEN) as bot,
    ):
        bot.fail_next("getMe", status=401, description="Unauthorized")
        gateway = await run_gateway(environment(tmp_path, ami, bot), log)
        await asyncio.wait_for(gateway.wait(), WAIT)
    output = log.read_text("utf-8")
    assert gateway.returncode == 1, output
    assert "Traceback (most recent call last)" in output
    assert "telegram.error.InvalidToken: The token `***` was rejected by the server." in output
    assert_no_secret(output)


# -- the filter alone, on the root handlers --------------------------------------------------


@pytest.fixture
def written() -> Iterator[io.StringIO]:
    """What a root handler writes, with the redaction installed as main.py installs it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in ("", "httpx")}
    for name in levels:  # main.setup_logging quiets httpx below DEBUG; here it speaks
        logging.getLogger(name).setLevel(logging.DEBUG)
    settings: Settings = load_settings(None, environ=SECRETS | {"FRONTDESK__MMS__USERNAME": "vasp"})
    redact.install(settings)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def test_every_field_of_every_loggers_record_is_redacted(written: io.StringIO) -> None:
    mms = SECRETS["FRONTDESK__MMS__PASSWORD"]
    logging.getLogger("httpx").debug("HTTP Request: POST https://x/bot%s/getMe", TOKEN)
    logging.getLogger("telegram.ext").info(f"inline {SECRETS['FRONTDESK__AMI__SECRET']}")
    logging.getLogger("aiohttp.client").debug("quoted %s", "mm7%2Fpass%20word%2B1")
    basic = base64.b64encode(f"vasp:{mms}".encode()).decode()
    logging.getLogger("any").debug("Authorization: Basic %s", basic)
    logging.getLogger("any").warning("%d%% of %s", 50, {"token": TOKEN})
    try:
        raise RuntimeError(f"the fax secret {SECRETS['FRONTDESK__FAX__SECRET']} failed")
    except RuntimeError:
        logging.getLogger("gateway").exception("failed")
    logging.getLogger("gateway").debug(
        "here %s", SECRETS["FRONTDESK__SMTP__PASSWORD"], stack_info=True
    )
    logging.getLogger("odd").info("no placeholder", TOKEN)  # a bad format keeps its arguments
    output = written.getvalue()
    assert_no_secret(output)
    assert "https://x/bot***/getMe" in output and "50% of {'token': '***'}" in output
    assert "RuntimeError: the fax secret *** failed" in output
    assert "Stack (most recent call last)" in output and "no placeholder ('***',)" in output


def test_installing_twice_keeps_one_filter(written: io.StringIO) -> None:
    settings = load_settings(None, environ={"FRONTDESK__TELEGRAM__TOKEN": "other-Token-1"})
    redact.install(settings)
    root_handlers = logging.getLogger().handlers
    for handler in root_handlers:
        assert sum(isinstance(f, redact.RedactSecrets) for f in handler.filters) == 1
    logging.getLogger("x").info("%s and %s", "other-Token-1", TOKEN)
    assert "*** and " + TOKEN in written.getvalue()  # the new settings' secrets replace the old


def test_every_secret_key_is_masked_in_the_settings_line_too() -> None:
    settings = load_settings(None, environ=SECRETS)
    shown = str(settings.redacted())
    assert [value for value in SECRETS.values() if value in shown] == []
    assert settings.redacted()["mms"]["report_password"] == "***"
