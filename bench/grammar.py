"""Command grammar speed on awkward input: milliseconds per parse, in every language.

    python bench/grammar.py [--repeat R] [--limit-ms MS]

The inputs are those of the grammar's awkward-input test (tests/unit/test_commands.py,
which checks what they parse to): empty and blank text, control characters, zero-width
joiners, fifty emoji, a keyword followed by 10,000 letters, 10,000 digits, and ten
kilobytes of mixed scripts on one line. Each is parsed in en, el, ru and zh, R times; the
best time of the four languages together is kept (noise only slows a run down). Exit 1 if
one input takes more than --limit-ms (default 1,000: a command is answered at once).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.control.grammar import LANGS, parse  # noqa: E402

TZ = "Europe/Athens"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo(TZ))
INPUTS = {
    "empty": "",
    "blank": " ",
    "control characters": "\x00\x01\x1b",
    "zero-width joiners": "\u200b\u200d",
    "50 emoji": "🙂" * 50,
    "keyword + 10,000 letters": "closed " + "x" * 10_000,
    "10,000 digits": "9" * 10_000,
    "10 kB of mixed scripts": "κλειστό μέχρι 18:00 закрыто 关闭 🙂\t" * 300,
}


def best_ms(text: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for lang in LANGS:
            parse(text, lang, TZ, NOW)
        best = min(best, time.perf_counter() - started)
    return best * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--limit-ms", type=float, default=1000.0)
    args = ap.parse_args()
    worst = 0.0
    print(f"{'input':<26} {'chars':>6} {'ms (' + ', '.join(LANGS) + ')':>22}")
    for name, text in INPUTS.items():
        ms = best_ms(text, args.repeat)
        worst = max(worst, ms)
        print(f"{name:<26} {len(text):>6} {ms:>22.2f}")
    verdict = "ok" if worst <= args.limit_ms else "OVER"
    print(f"slowest: {worst:.2f} ms for all languages (limit {args.limit_ms:g} ms): {verdict}")
    return 0 if worst <= args.limit_ms else 1


if __name__ == "__main__":
    sys.exit(main())
