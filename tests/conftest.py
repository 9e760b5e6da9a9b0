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
