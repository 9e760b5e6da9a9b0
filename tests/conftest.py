"""Shared fixtures: the recorded Asterisk streams, a migrated database; the live PBX switch."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
CAPTURES = FIXTURES / "asterisk"


@pytest.fixture
def capture_bytes() -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in CAPTURES.glob("*.ami")}


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database migrated for the whole session: migrating takes over a second,
    copying the file a millisecond."""
    from models.database import migrate

    path = tmp_path_factory.mktemp("migrated") / "template.sqlite3"
    asyncio.run(migrate(f"sqlite://{path}"))
    return path


def copy_migrated(template: Path, path: Path) -> str:
    """A fresh copy of the migrated template at `path` (its WAL too, if one was left)."""
    for suffix in ("", "-wal"):
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copyfile(source, path.with_name(path.name + suffix))
    return f"sqlite://{path}"


@pytest.fixture
async def db(migrated_db: Path, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated SQLite database, open for the test."""
    from models.database import close_db, open_db

    url = copy_migrated(migrated_db, tmp_path / "test.sqlite3")
    await open_db(url)
    yield url
    await close_db()


def pytest_report_header(config: pytest.Config) -> str:
    from tests.pbx_stack import why_not_live

    return why_not_live() or "live PBX tests: on (a real Asterisk per test)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without an Asterisk the `pbx` tests skip with one line; where one is required (CI),
    the run stops instead of passing without them."""
    import os

    from tests.pbx_stack import REQUIRED_ENV, why_not_live

    reason = why_not_live()
    live = [item for item in items if item.get_closest_marker("pbx")]
    if reason is None or not live:
        return
    if os.environ.get(REQUIRED_ENV):
        raise pytest.UsageError(f"{reason}; {REQUIRED_ENV} is set, so they must run")
    skip = pytest.mark.skip(reason=reason)
    for item in live:
        item.add_marker(skip)
    config.stash[_LIVE_SKIPPED] = f"{reason} ({len(live)} tests)"


_LIVE_SKIPPED = pytest.StashKey[str]()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """The one line that says the live PBX suite did not run, even under -q."""
    if skipped := config.stash.get(_LIVE_SKIPPED, None):
        terminalreporter.write_line(skipped)
