"""The ledger's own counting, on rows and copies written by hand (no peers, no database)."""

from __future__ import annotations

from models.db import DeliveryStatus
from tests.faults.ledger import Copy, Row, compare

SENT, FAILED, PENDING = DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.PENDING


def test_copies_are_tied_to_deliveries_and_counted() -> None:
    rows = [
        Row(10, 1, "telegram", "7", "hello", SENT, "5"),
        Row(20, 2, "sms", "+3069", "undeliverable", FAILED, "p1"),  # fell back to 21
        Row(21, 2, "telegram", "7", "fallback", SENT, "8"),
        Row(30, 3, "email", "a@example.org", "x", PENDING, ""),  # never reached the sink
        Row(40, 4, "sms", "+3069", "gone", FAILED, "p4"),  # undeliverable, no fallback
        Row(50, 5, "mms", "+3069", "", SENT, "m1"),
    ]
    parts = {"sms": {"p1": 20, "p4": 40}}
    copies = [
        Copy("telegram", "5", address="7", text="hello"),
        Copy("telegram", "6", address="7", text="hello"),  # sent again, outcome unstored
        Copy("sms", "p1", address="3069", text="undeliverable"),
        Copy("telegram", "8", address="7", text="fallback"),
        Copy("sms", "p4", address="3069", text="gone"),
        Copy("mms", "m1", delivery=50),
        Copy("mms", "m2", delivery=50),  # the same TransactionID twice
        Copy("mms", "m3", delivery=99),  # no such delivery
        Copy("telegram", "9", address="7", text="a reply to a command"),
    ]
    tally = compare("hand", rows, parts, copies)
    assert tally.notifications == 5
    assert tally.lost == [3, 4]
    assert (tally.sent, tally.duplicated) == (5, 2)
    telegram, mms = tally.channels["telegram"], tally.channels["mms"]
    assert (telegram.sent, telegram.duplicated, telegram.unrecorded, telegram.stray) == (2, 1, 1, 1)
    assert (mms.sent, mms.duplicated, mms.unrecorded, mms.stray) == (1, 1, 1, 1)
    assert tally.line() == "FAULT hand: sent=5 lost=2 duplicated=2"


def test_an_unrecorded_sms_is_matched_by_its_text_as_the_smsc_received_it() -> None:
    rows = [Row(1, 1, "sms", "+306944000001", "At 8:38\u202fAM, call back.", SENT, "b")]
    copies = [
        Copy("sms", "a", address="306944000001", text="At 8:38 AM, call back."),  # killed
        Copy("sms", "b", address="306944000001", text="At 8:38 AM, call back."),
    ]
    sms = compare("sms", rows, {"sms": {"b": 1}}, copies).channels["sms"]
    assert (sms.sent, sms.duplicated, sms.unrecorded, sms.stray) == (1, 1, 1, 0)
