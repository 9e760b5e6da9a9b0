"""`make bench` in small: bench/run_all.py --quick runs the latency and ingest benchmarks
as children (the gateway as `main.py run` against the sandbox peers) and writes every
key the issue names, with the machine it ran on; a benchmark that is missing is a row
with its reason, not a crash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.run_all import Bench, merge, run_child, table

ROOT = Path(__file__).resolve().parents[2]
RUN_ALL = [sys.executable, "bench/run_all.py", "--quick"]
KEYS = (
    "latency_p50_ms",
    "latency_p99_ms",
    "live_calls",
    "burst_per_s",
    "rss_mb",
    "rss_subscribers",
    "reassert_s",
    "smpp_per_s",
    "ingest_ratio",
    "outbox_drain",
)


def test_run_all_quick_writes_every_key(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    proc = subprocess.run(
        [*RUN_ALL, "--only", "latency,ingest", "--results", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(results.read_text())
    assert set(KEYS) <= figures.keys()
    for key in ("latency_p50_ms", "latency_p99_ms", "burst_per_s", "ingest_ratio"):
        assert isinstance(figures[key], float) and figures[key] > 0, key
    assert figures["live_calls"] == 200 and figures["burst_429s"] == 0
    assert figures["rss_mb"] is None  # not run: null, not left out
    assert figures["databases"]["latency_p99_ms"] == "sqlite"
    assert {"cpu", "cores", "ram_gb", "python"} <= figures["machine"].keys()
    table = proc.stdout[proc.stdout.index("machine:") :]
    assert "latency_p99_ms" in table and "<= 25 ms" in table and "ingest_ratio" in table


def test_a_missing_or_failing_benchmark_is_a_row_and_only_a_failure_crashes(
    tmp_path: Path,
) -> None:
    missing = Bench("ghost", "no_such_bench.py", ("smpp_per_s",))
    failing = Bench("ingest", "ami_ingest.py", ("ingest_ratio",), quick=["--copies", "many"])
    outcomes = [run_child(b, [], True, tmp_path) for b in (missing, failing)]
    assert [(o.crashed, o.error.split(":")[0]) for o in outcomes] == [
        (False, "bench/no_such_bench.py is missing"),
        (True, "exit 2"),
    ]
    figures, _, errors = merge(outcomes)
    assert figures["smpp_per_s"] is None and figures["ingest_ratio"] is None
    assert set(errors) == {"ghost", "ingest"}
    rows = table([missing, failing], outcomes, figures, {})
    assert rows[0][:2] == ("smpp_per_s", "— (bench/no_such_bench.py is missing)")
    assert rows[1][0] == "ingest_ratio" and rows[1][1].startswith("— (exit 2:")
