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
    """Print a tally now and keep it for the session's table (as a user property of the
    test's report: under pytest-xdist the table is made by the controller, which sees the
    workers' reports but neither their output nor their memory)."""

    def report(tally: Tally, *notes: str) -> None:
        with capsys.disabled():
            print("\n" + "\n".join([*tally.detail(), *(f"  {n}" for n in notes)]), flush=True)
        channels = ", ".join(
            f"{name} {c.sent}/{c.duplicated}" for name, c in sorted(tally.channels.items())
        )
        row = (tally.name, tally.sent, len(tally.lost), tally.duplicated, channels)
        request.node.user_properties.append((_FAULT, row))

    return report


_FAULT = "fault_tally"


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    rows = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", "") == "call"
        for key, value in getattr(report, "user_properties", ())
        if key == _FAULT
    ]
    if not rows:
        return
    width = max(len(str(r[0])) for r in rows)
    terminalreporter.section("fault suite: sent, lost, duplicated")
    terminalreporter.write_line(
        f"{'fault':<{width}}  {'sent':>6} {'lost':>5} {'dup':>4}  by channel"
    )
    for name, sent, lost, duplicated, channels in rows:
        terminalreporter.write_line(
            f"{name:<{width}}  {sent:>6} {lost:>5} {duplicated:>4}  {channels}"
        )
    terminalreporter.write_line("(by channel: sent/duplicated)")
