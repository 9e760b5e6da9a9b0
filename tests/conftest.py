"""Shared fixtures: paths to the recorded Asterisk streams."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
CAPTURES = FIXTURES / "asterisk"


@pytest.fixture
def capture_bytes() -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in CAPTURES.glob("*.ami")}


@pytest.fixture
async def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A migrated SQLite database, open for the test."""
    from models.database import close_db, migrate, open_db

    url = f"sqlite://{tmp_path / 'test.sqlite3'}"
    await migrate(url)
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
