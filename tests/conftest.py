"""Shared fixtures: the recorded Asterisk streams, a migrated database; the live PBX switch."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests import pg_cluster

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


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's `postgres` database: FRONTDESK_TEST_PG_URL's, or a
    private cluster started for this session (skipped, with the reason, where there is no
    PostgreSQL to start; FRONTDESK_PG_REQUIRED makes that an error, as in CI)."""
    if url := os.environ.get(pg_cluster.PG_URL_ENV):
        yield url
        return
    if pg_cluster.binaries() is None:
        reason = "PostgreSQL server binaries not found (make pgdeps installs them)"
        if os.environ.get(pg_cluster.REQUIRED_ENV):
            pytest.fail(reason)
        pytest.skip(reason)
    # Not under pytest's own tmp folder: the server runs as `postgres`, which cannot enter it.
    folder = Path(tempfile.mkdtemp(prefix="frontdesk-pg-"))
    url = pg_cluster.start(folder)
    os.environ[pg_cluster.PG_URL_ENV] = url  # for database_url_for, and child processes
    try:
        yield url
    finally:
        os.environ.pop(pg_cluster.PG_URL_ENV, None)
        pg_cluster.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _database_backend(request: pytest.FixtureRequest) -> None:
    """With FRONTDESK_TEST_DB=postgres every test database is a PostgreSQL one."""
    if pg_cluster.on_postgres():
        request.getfixturevalue("pg_server")


@pytest.fixture(autouse=True)
def _fresh_insert_statements() -> Iterator[None]:
    """tortoise caches each model's INSERT statement by connection name, not by database:
    a SQLite test followed by a PostgreSQL one in this process would reuse SQLite's `?`
    placeholders. The product opens one database per process; tests open several."""
    yield
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    EXECUTOR_CACHE.clear()


@pytest.fixture
async def db(migrated_db: Path, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database (SQLite, or PostgreSQL with FRONTDESK_TEST_DB=postgres), open."""
    from models.database import close_db, open_db

    if pg_cluster.on_postgres():
        url = pg_cluster.database_url_for(tmp_path / "test.sqlite3")
    else:
        url = copy_migrated(migrated_db, tmp_path / "test.sqlite3")
    await open_db(url)
    yield url
    await close_db()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only(why): relies on SQLite itself (its file, its locking); skipped with "
        "FRONTDESK_TEST_DB=postgres",
    )


def _skip_sqlite_only(items: list[pytest.Item]) -> None:
    """On PostgreSQL, what holds only for SQLite skips, saying why."""
    if not pg_cluster.on_postgres():
        return
    for item in items:
        if marker := item.get_closest_marker("sqlite_only"):
            why = marker.args[0] if marker.args else "uses the SQLite file"
            item.add_marker(pytest.mark.skip(reason=f"SQLite-specific: {why}"))


def pytest_report_header(config: pytest.Config) -> str:
    from tests.pbx_stack import why_not_live

    return why_not_live() or "live PBX tests: on (a real Asterisk per test)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without an Asterisk the `pbx` tests skip with one line; where one is required (CI),
    the run stops instead of passing without them."""
    import os

    from tests.pbx_stack import REQUIRED_ENV, why_not_live

    _skip_sqlite_only(items)
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
