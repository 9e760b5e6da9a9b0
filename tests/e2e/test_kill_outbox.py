"""The kill drill (bench/kill_outbox.py) with smaller numbers: 200 notifications by
Telegram and SMS, the real `main.py run` SIGKILLed twice at seeded-random points and
restarted. Each channel repeats at most one message per kill, no SMS is left without its
part ids, and every SMS ends delivered or failed with its Telegram fallback sent: a
receipt is acknowledged to the SMSC only once stored, so one a kill interrupted comes
again."""

from __future__ import annotations

from pathlib import Path

from bench.kill_outbox import drill

NOTIFICATIONS = 200
KILLS = 2
SEED = 20261130


async def test_sigkills_lose_nothing_and_repeat_at_most_one_message_per_kill(
    tmp_path: Path,
) -> None:
    figures = await drill(tmp_path, NOTIFICATIONS, KILLS, SEED)
    report = "\n".join(figures.lines())
    print(report)  # the kill points and figures, for the record
    assert figures.killed_at and len(figures.killed_at) == KILLS, report
    assert figures.lost == [], report
    # One send in flight per channel (outbox.in_flight = 1): at most one repeat per kill.
    assert figures.duplicates["telegram"] <= KILLS, report
    assert figures.duplicates["sms"] <= KILLS, report
    # `sent` and the part ids are stored together: no SMS is left unmatchable.
    assert figures.sms_without_parts == [], report
    assert figures.sms_without_fallback == [], report
    assert figures.sms_receipt_lost == [], report
    assert set(figures.sms_states) <= {"delivered", "failed"}, report
