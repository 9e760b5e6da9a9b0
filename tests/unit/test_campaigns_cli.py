"""The call lists' CLI: `campaign add` (with typed contacts), `campaign import FILE.csv`
(bad lines reported by number, the good ones added) and `campaign show` (the counters)."""

from __future__ import annotations

from pathlib import Path

import pytest

import main


def test_campaign_add_import_and_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FRONTDESK__DATABASE__URL", f"sqlite://{tmp_path / 'cli.sqlite3'}")
    assert main.main(["subscriber", "add", "--name", "Dr P", "--ddi", "2100001"]) == 0
    assert main.main(["agent", "team", "add", "A"]) == 0
    window = ["--from", "2026-11-20", "--to", "2026-11-30"]
    add = ["campaign", "add", "--subscriber", "1", "--name", "Flu", "--script", "Hi", *window]
    assert main.main([*add, "--team", "1", "--contact", "Anna,6944000001"]) == 0
    out = capsys.readouterr().out
    assert "call list 1 'Flu' created" in out and "1 contact(s) added" in out
    assert main.main([*add, "--team", "9"]) == 2
    assert "no team 9" in capsys.readouterr().err

    csv = tmp_path / "list.csv"
    csv.write_text("name;phone\nBabis;6944000002\nAnna again;6944000001\nX;abc\n")
    assert main.main(["campaign", "import", "1", str(csv)]) == 2
    captured = capsys.readouterr()
    assert "1 contact(s) added to call list 1" in captured.out
    assert "line 3: +306944000001 is already on this list" in captured.err
    assert "line 4: not a phone number: abc" in captured.err

    assert main.main(["campaign", "show", "1"]) == 0
    shown = capsys.readouterr().out
    assert "in_progress=0\tunanswered=0\tpending=2\tdone=0\trefused=0\ttotal=2" in shown
    assert "2\tBabis\t+306944000002\tpending\t-\tcalls=0\t-" in shown
