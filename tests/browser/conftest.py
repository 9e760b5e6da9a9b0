"""The web desk in a real browser: the gateway (and bot) in this process against the sandbox
AMI and Bot API on loopback, two seeded subscribers, and Debian's headless chromium driven
by Playwright on the same event loop.

The loop is function-scoped (pytest-asyncio), and a Playwright connection lives on the loop
that started it, so each test launches its own chromium (about a second and a half).
Chromium is never downloaded: `/usr/bin/chromium` (`make browserdeps`). Where it or
Playwright cannot start, the tests skip saying why, unless FRONTDESK_BROWSER_REQUIRED=1.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from models.settings import Settings, with_section
from sandbox.ami_server import AmiServer
from sandbox.telegram_api import BotApiServer
from tests.browser import seed
from tests.conftest import copy_migrated
from tests.pg_cluster import on_postgres
from tests.stack import running, sandbox_settings

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

    from bot.runtime import Runtime

CHROMIUM = Path(os.environ.get("FRONTDESK_CHROMIUM", "/usr/bin/chromium"))
REQUIRED_ENV = "FRONTDESK_BROWSER_REQUIRED"
# The machine's network is closed: without these chromium waits on connections it tries
# on its own (updates, sync, QUIC probes). Autoplay: the test plays a voicemail by script.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
TOKEN = "123456:BROWSER-token"
SESSION_SECRET = "browser-test-session-secret-0123456789"
WAIT = 10.0  # seconds: the longest any awaited condition may take
PAGE_WAIT_MS = 10_000


@dataclass
class Desk:
    """The running gateway and what was seeded into it."""

    ami: AmiServer
    bot: BotApiServer
    runtime: Runtime
    settings: Settings
    base_url: str  # http://127.0.0.1:<port>, no trailing slash
    alice: seed.Seeded  # the subscriber the browser logs in as
    bob: seed.Seeded  # another subscriber, whose data must stay out of reach

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def _free_port() -> int:
    """A loopback port free now: the magic links name the port before the gateway binds it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRED_ENV) == "1":
        pytest.fail(f"browser required ({REQUIRED_ENV}=1) but {reason}")
    pytest.skip(f"no headless browser: {reason}")


def _expect_patiently() -> None:
    """`expect(...)` waits as long as page actions do (its own default is 5 s: too short on
    a loaded two-core machine running other tests beside)."""
    from playwright.async_api import expect

    expect.set_options(timeout=PAGE_WAIT_MS)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium, checked before any gateway starts (skip or fail at once)."""
    if importlib.util.find_spec("playwright") is None:
        _unavailable("Playwright is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} not found (make browserdeps installs Debian's chromium)")
    return CHROMIUM


@pytest.fixture
async def desk(chromium: Path, tmp_path: Path, migrated_db: Path) -> AsyncIterator[Desk]:
    database = tmp_path / "desk.sqlite3"
    if not on_postgres():
        copy_migrated(migrated_db, database)  # a copy: two seconds of migrations saved
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot:
        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        s = sandbox_settings(database, ami, bot, TOKEN)
        s = with_section(s, "http", port=port)
        s = with_section(s, "web", base_url=base_url, session_secret=SESSION_SECRET)
        async with running(s) as runtime:
            await ami.wait_logged_in(timeout=WAIT)
            media = tmp_path / "media"
            alice = await seed.subscriber(
                media, name="Alice Dental", ddi="2100101", mobile="+306944000101",
                language="en", tag="alice",
            )  # fmt: skip
            bob = await seed.subscriber(
                media, name="Bob Law", ddi="2100202", mobile="+306944000202",
                language="el", tag="bob",
            )  # fmt: skip
            yield Desk(ami, bot, runtime, s, base_url, alice, bob)


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    from playwright.async_api import Error, async_playwright

    _expect_patiently()
    async with async_playwright() as playwright:
        try:
            launched = await playwright.chromium.launch(
                executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS, timeout=30_000
            )
        except Error as exc:
            _unavailable(f"chromium at {chromium} did not start: {exc.message.splitlines()[0]}")
            raise
        try:
            yield launched
        finally:
            await launched.close()


async def new_context(browser: Browser, desk: Desk, locale: str = "en-US") -> BrowserContext:
    """A fresh profile (no cookies) on the desk, speaking `locale`, patient as `expect`."""
    ctx = await browser.new_context(base_url=desk.base_url, locale=locale)
    ctx.set_default_timeout(PAGE_WAIT_MS)
    return ctx


@pytest.fixture
async def context(browser: Browser, desk: Desk) -> AsyncIterator[BrowserContext]:
    """A fresh profile (no cookies) per test."""
    ctx = await new_context(browser, desk)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()
