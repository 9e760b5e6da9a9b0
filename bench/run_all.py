"""`make bench`: every benchmark of the issue as a child process, one table, one JSON file.

    python bench/run_all.py [--quick] [--only NAMES] [--results PATH] [--pg-url URL]

Each benchmark runs as `python bench/<name>.py ... --json FILE` and its figures are
merged into bench/results.json (or --results), beside a "machine" object (CPU model,
cores, RAM, Python, load average when the run began: figures taken on a busy machine are
slower, never faster) and "databases" (figure -> the database it was measured on). A
benchmark that is missing, fails or times out gets null figures and its error in the
table; the exit status is 1 if any benchmark crashed, else 0 (a target missed is a
figure, not a crash). --quick runs small sizes (the smoke test), --only a comma-separated
subset of: {names}.

The outbox drain runs on SQLite (1 instance) and on PostgreSQL (1 and 3 instances):
the server is --pg-url, else $FRONTDESK_TEST_PG_URL, else a private cluster started for
the run (tests/pg_cluster.py), each run on a fresh database; without PostgreSQL server
binaries those rows say so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results.json"
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


@dataclass(frozen=True)
class Target:
    """What a figure should be: at most / at least `bound`; None: reported only."""

    bound: float | None = None
    at_most: bool = True
    unit: str = ""

    def text(self) -> str:
        if self.bound is None:
            return ""
        return f"{'<=' if self.at_most else '>='} {self.bound:g}{self.unit}"

    def met(self, value: Any) -> str:
        if self.bound is None or not isinstance(value, int | float):
            return ""
        ok = value <= self.bound if self.at_most else value >= self.bound
        return "yes" if ok else "NO"


TARGETS: dict[str, Target] = {
    "latency_p50_ms": Target(unit=" ms"),
    "latency_p99_ms": Target(25, unit=" ms"),
    "live_calls": Target(),
    "burst_per_s": Target(28, at_most=False, unit="/s"),
    "burst_429s": Target(0),
    "rss_mb": Target(250, unit=" MB"),
    "rss_subscribers": Target(),
    "rss_ddis": Target(),
    "rss_live_calls": Target(),
    "reassert_s": Target(3, unit=" s"),
    "smpp_per_s": Target(5000, at_most=False, unit="/s"),
    "ingest_ratio": Target(0.60, at_most=False),
}


@dataclass
class Bench:
    """One benchmark script: its arguments (full and --quick) and the keys it must give."""

    name: str
    script: str
    keys: tuple[str, ...]
    args: list[str] = field(default_factory=list)
    quick: list[str] = field(default_factory=list)
    shows: tuple[str, ...] = ()  # more of its figures for the table
    timeout: float = 1800.0


BENCHES = [
    Bench(
        "latency",
        "latency.py",
        ("latency_p50_ms", "latency_p99_ms", "live_calls", "burst_per_s"),
        quick=["--live", "200", "--measure", "40", "--burst", "30"],
        shows=("burst_429s",),
    ),
    Bench(
        "rss",
        "rss.py",
        ("rss_mb", "rss_subscribers"),
        quick=["--quick"],
        shows=("rss_ddis", "rss_live_calls"),
    ),
    Bench("reassert", "reassert.py", ("reassert_s",), quick=["--subscribers", "1000"]),
    Bench(
        "smpp",
        "smpp_window.py",
        ("smpp_per_s",),
        args=["--windows", "100", "--latencies", "5"],
        quick=["--windows", "100", "--latencies", "5", "--count", "500", "--repeat", "1"],
    ),
    Bench("smpp_outbox", "smpp_outbox.py", ()),
    Bench("ingest", "ami_ingest.py", ("ingest_ratio",), quick=["--copies", "20", "--repeat", "1"]),
    Bench("outbox_drain", "outbox_drain.py", ("outbox_drain",)),
]
# Where the outbox drain runs: (database, instances).
DRAINS = (("sqlite", 1), ("postgres", 1), ("postgres", 3))
USAGE = (__doc__ or "").format(names=", ".join(b.name for b in BENCHES))


@dataclass
class Outcome:
    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    error: str = ""  # why there are no figures
    crashed: bool = False  # it ran and failed (a missing script is not a crash)
    seconds: float = 0.0


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def run_child(bench: Bench, extra: Sequence[str], quick: bool, tmp: Path) -> Outcome:
    """`python bench/<script> [args] --json FILE`: its figures, or why there are none."""
    script = ROOT / "bench" / bench.script
    tag = "-".join([bench.name, *(a.rsplit("/", 1)[-1] for a in extra if not a.startswith("-"))])
    outcome = Outcome(tag)
    if not script.exists():
        outcome.error = f"bench/{bench.script} is missing"
        return outcome
    out = tmp / f"{tag}.json"
    argv = [sys.executable, str(script), *(bench.quick if quick else bench.args), *extra]
    argv += ["--json", str(out)]
    print(f"\n== {tag}: {' '.join(a for a in argv[1:] if not a.startswith(str(tmp)))}", flush=True)
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=ROOT, timeout=bench.timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        outcome.error, outcome.crashed = f"timed out after {bench.timeout:.0f} s", True
        return outcome
    finally:
        outcome.seconds = time.monotonic() - started
    print(proc.stdout.rstrip(), flush=True)
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        outcome.error, outcome.crashed = f"exit {proc.returncode}: {tail}", True
        print(proc.stderr.rstrip()[-3000:], file=sys.stderr, flush=True)
        return outcome
    try:
        outcome.figures = json.loads(out.read_text())
    except ValueError as exc:
        outcome.error, outcome.crashed = f"unreadable --json output: {exc}", True
    return outcome


@contextmanager
def postgres_server(url: str | None, tmp: Path) -> Iterator[tuple[str | None, str]]:
    """(server URL, "") or (None, why not): the given one, or a private cluster."""
    from tests import pg_cluster

    url = url or os.environ.get(pg_cluster.PG_URL_ENV)
    if url:
        yield url, ""
        return
    if pg_cluster.binaries() is None:
        yield None, "no PostgreSQL server binaries (make pgdeps)"
        return
    folder = Path(tempfile.mkdtemp(prefix="frontdesk-bench-pg-"))
    try:
        server = pg_cluster.start(folder)
    except Exception as exc:  # a server that will not start is a row, not a crash
        yield None, f"PostgreSQL did not start: {exc}"
        return
    try:
        yield server, ""
    finally:
        pg_cluster.stop(folder)


def run_drains(bench: Bench, quick: bool, tmp: Path, pg_url: str | None) -> list[Outcome]:
    from tests import pg_cluster

    outcomes = []
    wanted = DRAINS[:1] if quick else DRAINS
    on_pg = any(db == "postgres" for db, _ in wanted)
    with postgres_server(pg_url, tmp) if on_pg else nullcontext((None, "")) as (server, why):
        for db, instances in wanted:
            if db == "sqlite":
                url = f"sqlite://{tmp / f'drain-{instances}.sqlite3'}"
            elif server is None:
                outcomes.append(Outcome(f"outbox_drain-{db}-{instances}", error=why))
                continue
            else:
                pg_cluster.make_template(server)
                url = pg_cluster.fresh_database(server, f"bench-drain-{instances}")
            extra = ["--database-url", url, "--instances", str(instances)]
            outcome = run_child(bench, extra, quick, tmp)
            outcome.name = f"outbox_drain-{db}-{instances}"
            outcomes.append(outcome)
    return outcomes


def merge(outcomes: Sequence[Outcome]) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """All figures in one object (outbox_drain merged per database and instances), the
    database of each figure, and the errors by benchmark."""
    figures: dict[str, Any] = {key: None for key in KEYS}
    databases: dict[str, str] = {}
    errors: dict[str, str] = {}
    for outcome in outcomes:
        if outcome.error:
            errors[outcome.name] = outcome.error
        found = dict(outcome.figures)
        database = str(found.pop("database", ""))
        drain = found.pop("outbox_drain", None)
        if isinstance(drain, dict):
            merged = figures["outbox_drain"] or {}
            for db, by_count in drain.items():
                merged.setdefault(db, {}).update(by_count)
            figures["outbox_drain"] = merged
        for key, value in found.items():
            figures[key] = value
            if database:
                databases[key] = database
    return figures, databases, errors


def table(
    benches: Sequence[Bench],
    outcomes: Sequence[Outcome],
    figures: dict[str, Any],
    databases: dict[str, str],
) -> list[tuple[str, str, str, str, str]]:
    rows: list[tuple[str, str, str, str, str]] = []
    by_name = {o.name: o for o in outcomes if not o.name.startswith("outbox_drain")}
    for bench in benches:
        if bench.name == "outbox_drain":
            for o in (o for o in outcomes if o.name.startswith("outbox_drain")):
                _, db, count = o.name.split("-")
                value = ((figures.get("outbox_drain") or {}).get(db) or {}).get(count)
                shown = f"{value:,.0f}/s" if isinstance(value, int | float) else f"— ({o.error})"
                rows.append((f"outbox_drain {db} x{count}", shown, "", "", db))
            continue
        outcome = by_name.get(bench.name)
        keys = [*bench.keys, *bench.shows]
        if not bench.keys:  # no key named: show what it gave, or why nothing
            keys = [k for k in (outcome.figures if outcome else {}) if k != "database"]
            if not keys:
                why = outcome.error if outcome is not None else "not run"
                rows.append((bench.name, f"— ({why})", "", "", ""))
        for key in keys:
            value = figures.get(key)
            target = TARGETS.get(key, Target())
            if value is None:
                why = outcome.error if outcome is not None else "not run"
                rows.append((key, f"— ({why})", target.text(), "", ""))
                continue
            shown = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
            db = databases.get(key, "")
            rows.append((key, shown, target.text(), target.met(value), db))
    return rows


def print_table(rows: Sequence[tuple[str, ...]], info: dict[str, Any]) -> None:
    head = ("figure", "value", "target", "met?", "database")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    line = "  ".join
    print()
    print(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, Python "
        f"{info['python']}, {info['system']}; load average {info['load_average_at_start']} "
        f"at start ({info['date']})"
    )
    print(line(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print(line("-" * w for w in widths))
    for row in rows:
        print(line(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=USAGE.splitlines()[0],
        epilog=USAGE.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    ap.add_argument(
        "--only", help="comma-separated benchmarks: " + ",".join(b.name for b in BENCHES)
    )
    ap.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    ap.add_argument("--pg-url", help="PostgreSQL server for the outbox drain (postgres://...)")
    args = ap.parse_args(argv)
    names = [b.name for b in BENCHES]
    only = args.only.split(",") if args.only else names
    if unknown := set(only) - set(names):
        ap.error(f"unknown benchmark(s) {sorted(unknown)}; known: {names}")
    benches = [b for b in BENCHES if b.name in only]
    info = machine()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="frontdesk-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for bench in benches:
            if bench.name == "outbox_drain":
                outcomes.extend(run_drains(bench, args.quick, tmp, args.pg_url))
            else:
                outcomes.append(run_child(bench, [], args.quick, tmp))
    figures, databases, errors = merge(outcomes)
    results = {
        **figures,
        "machine": info,
        "databases": databases,
        "errors": errors,
        "quick": args.quick,
        "seconds": {o.name: round(o.seconds, 1) for o in outcomes},
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print_table(table(benches, outcomes, figures, databases), info)
    print(f"\nwritten: {args.results}")
    crashed = [o.name for o in outcomes if o.crashed]
    if crashed:
        print(f"crashed: {', '.join(crashed)}", file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
