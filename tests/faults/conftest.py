"""The fault suite's report: each test prints its `FAULT <name>: sent= lost= duplicated=`
line (and the per-channel detail) as it ends, even under -q, and the session ends with a
table of them all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests import pg_cluster
from tests.conftest import copy_migrated
from tests.faults.ledger import Tally

_TALLIES = pytest.StashKey[list[Tally]]()

Report = Callable[..., None]  # (tally, *notes): notes are printed under its lines


@pytest.fixture
def fault_db(migrated_db: Path, tmp_path: Path) -> Path:
    """A migrated SQLite database file of the test's own (a copy: migrating takes seconds)."""
    path = tmp_path / "faults.sqlite3"
    if not pg_cluster.on_postgres():  # else the stack maps the path to a database of its own
        copy_migrated(migrated_db, path)
    return path


@pytest.fixture
def fault_report(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> Report:
    """Print a tally now and keep it for the session's table."""

    def report(tally: Tally, *notes: str) -> None:
        with capsys.disabled():
            print("\n" + "\n".join([*tally.detail(), *(f"  {n}" for n in notes)]), flush=True)
        request.config.stash.setdefault(_TALLIES, []).append(tally)

    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    tallies = config.stash.get(_TALLIES, [])
    if not tallies:
        return
    width = max(len(t.name) for t in tallies)
    terminalreporter.section("fault suite: sent, lost, duplicated")
    terminalreporter.write_line(
        f"{'fault':<{width}}  {'sent':>6} {'lost':>5} {'dup':>4}  by channel"
    )
    for t in tallies:
        channels = ", ".join(
            f"{name} {c.sent}/{c.duplicated}" for name, c in sorted(t.channels.items())
        )
        terminalreporter.write_line(
            f"{t.name:<{width}}  {t.sent:>6} {len(t.lost):>5} {t.duplicated:>4}  {channels}"
        )
    terminalreporter.write_line("(by channel: sent/duplicated)")
