"""`make demo`'s day against the sandbox passes its own checks: the report says what each
person received and the demo exits 0 only if every check held. (The same day on a real
Asterisk: tests/pbx/test_demo_pbx.py.)"""

from __future__ import annotations

import json
from pathlib import Path

from demo.day import run_demo


async def test_the_demo_day_passes_its_checks(tmp_path: Path) -> None:
    report_path = tmp_path / "demo-report.json"
    assert await run_demo(str(report_path)) == 0
    report = json.loads(report_path.read_text("utf-8"))
    for key in ("calls", "deliveries", "agents", "agent_cards", "tasks", "console", "usage"):
        assert report[key], key
    assert {a["state"] for a in report["agents"] if a["role"] == "agent"} == {"ready"}
