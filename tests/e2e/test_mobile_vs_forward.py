"""The subscriber's own mobile (identity, SMS/MMS address, call back, "Forward calls to
me") is not the forward target ("forward <number>"): one subscriber forwarding to another's
mobile must not touch either one's SMS control, and `forward off` removes only the target."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tortoise import Tortoise
from tortoise.migrations.api import migrate as run_migrations

import main
from gateway.control import admin, pins
from gateway.control.desk import CommandDesk
from gateway.control.inbound import InboundDesk
from gateway.control.lines import CALLBACK_CONTEXT, Control
from gateway.delivery.notices import Notices
from models.database import tortoise_config
from models.db import AuditEntry, Call, Delivery, Subscriber
from models.settings import RoutingSettings
from models.vocab import Scenario
from notifiers.base import InboundMessage

A_MOBILE, B_MOBILE, ELSEWHERE = "+306944000001", "+306944000002", "+306944000099"
PIN_A, PIN_B = "1111", "2222"


class Pbx:
    """Records actions and keeps AstDB as a dict."""

    def __init__(self) -> None:
        self.actions: list[dict[str, str]] = []
        self.astdb: dict[str, str] = {}

    async def send_action(self, action: dict[str, str], timeout: float = 5.0) -> dict[str, str]:
        self.actions.append(action)
        if action["Action"] == "DBPut":
            self.astdb[action["Key"]] = action["Val"]
        return {"Response": "Success"}


class Line:
    """Two subscribers, A and B, with their mobiles and PINs, and the inbound path."""

    def __init__(self) -> None:
        self.pbx = Pbx()
        self.control = Control(self.pbx)
        self.notices = Notices({"telegram", "sms"}, RoutingSettings(default_channels="sms"))
        self.inbound = InboundDesk(self.notices)
        self.inbound.on_text = CommandDesk(self.control, self.notices).on_inbound

    async def add(self, name: str, ddi: str, mobile: str, pin: str) -> Subscriber:
        created = await admin.add_subscriber(
            name=name, ddis=[ddi], language="en", timezone="UTC", mobile=mobile
        )
        return await admin.set_contact_points(created.subscriber.id, pin=pin)

    async def sms(self, sender: str, text: str) -> str:
        """What the desk answered (the reply SMS it queued to the sender)."""
        message = InboundMessage("sms", sender, "Frontdesk", text, datetime.now(UTC))
        await self.inbound.receive(message)
        reply = await Delivery.filter(kind="reply", address=sender).order_by("-id").first()
        assert reply is not None, f"no answer to {sender}"
        return reply.text


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pins, "ITERATIONS", 1_000)


@pytest.fixture
async def line(db: str) -> Line:
    return Line()


async def test_forwarding_to_another_subscribers_mobile_leaves_their_sms_control(
    line: Line,
) -> None:
    a = await line.add("A", "2100001", A_MOBILE, PIN_A)
    b = await line.add("B", "2100002", B_MOBILE, PIN_B)
    assert "forwarded to " + B_MOBILE in await line.sms(A_MOBILE, f"{PIN_A} forward {B_MOBILE}")
    # B's SMS is still B's: answered, audited as B's, acting on B's line only.
    assert (await line.sms(B_MOBILE, f"{PIN_B} closed")).startswith("Calls: Closed")
    entry = await AuditEntry.filter(actor=B_MOBILE).order_by("-id").first()
    assert entry is not None and entry.subscriber_id == b.id  # type: ignore[attr-defined]
    assert (await Subscriber.get(id=b.id)).scenario is Scenario.CLOSED
    assert (await Subscriber.get(id=a.id)).scenario is Scenario.AGENT
    # And A's own SMS control still works from A's mobile.
    assert (await line.sms(A_MOBILE, f"{PIN_A} status")).startswith("Calls: Our secretary")
    assert (await Subscriber.get(id=a.id)).forward_target == B_MOBILE


async def test_forward_changes_only_the_target_and_off_falls_back_to_the_mobile(
    line: Line,
) -> None:
    a = await line.add("A", "2100001", A_MOBILE, PIN_A)
    assert line.pbx.astdb == {}  # nothing pushed yet
    await line.sms(A_MOBILE, f"{PIN_A} forward {ELSEWHERE}")
    row = await Subscriber.get(id=a.id)
    assert (row.mobile, row.forward_number) == (A_MOBILE, ELSEWHERE)
    assert line.pbx.astdb["forward/2100001"] == ELSEWHERE  # the forward scenario dials it
    # SMS notifications still go to the subscriber's own phone.
    await admin.take_message(line.notices, a.id, "Call the lab.")
    assert await Delivery.filter(kind="message").values_list("address", flat=True) == [A_MOBILE]

    assert (await line.sms(A_MOBILE, f"{PIN_A} forward off")).startswith("Forwarding number")
    row = await Subscriber.get(id=a.id)
    assert (row.mobile, row.forward_number) == (A_MOBILE, None)  # the mobile stays
    assert line.pbx.astdb["forward/2100001"] == A_MOBILE  # forward rings the mobile again
    assert (await line.sms(A_MOBILE, f"{PIN_A} status")).startswith("Calls: ")  # still A


async def test_forward_calls_to_me_and_call_back_ring_the_own_mobile(line: Line) -> None:
    a = await line.add("A", "2100001", A_MOBILE, PIN_A)
    await admin.set_contact_points(a.id, forward=ELSEWHERE)
    a = await Subscriber.get(id=a.id)
    await line.control.call_back(a, Call(caller_number="+302101234567", ddi="2100001"))
    [originate] = [x for x in line.pbx.actions if x["Action"] == "Originate"]
    assert originate["Channel"] == f"Local/{A_MOBILE}@{CALLBACK_CONTEXT}"

    forwarded = await line.control.forward_to_mobile(a)
    assert str(forwarded) == A_MOBILE
    assert line.pbx.astdb["forward/2100001"] == A_MOBILE  # to me: the lines ring my mobile
    assert (await Subscriber.get(id=a.id)).scenario is Scenario.FORWARD


async def test_a_mobile_identifies_one_subscriber_and_a_duplicate_is_refused(line: Line) -> None:
    a = await line.add("A", "2100001", A_MOBILE, PIN_A)
    with pytest.raises(admin.AdminError, match=rf"mobile \{A_MOBILE} is already subscriber"):
        await line.add("B", "2100002", A_MOBILE, PIN_B)
    b = await line.add("B", "2100002", B_MOBILE, PIN_B)
    with pytest.raises(admin.AdminError, match="already subscriber"):
        await admin.set_contact_points(b.id, mobile="694 400 0001")  # the same, written locally
    await admin.set_contact_points(b.id, forward=A_MOBILE)  # forwarding there is fine
    await admin.set_contact_points(a.id, mobile=A_MOBILE)  # its own number again: fine
    assert (await Subscriber.get(id=b.id)).mobile == B_MOBILE


async def test_a_shared_email_address_identifies_nobody(line: Line) -> None:
    a = await line.add("A", "2100001", A_MOBILE, PIN_A)
    b = await line.add("B", "2100002", B_MOBILE, PIN_B)
    for s in (a, b):
        await admin.set_contact_points(s.id, email="office@example.org")
    message = InboundMessage(
        "email", "office@example.org", "r@x", f"{PIN_A} closed", datetime.now(UTC)
    )
    stored = await line.inbound.receive(message)  # no MultipleObjectsReturned
    assert stored.subscriber_id is None  # type: ignore[attr-defined]
    assert (await Subscriber.get(id=a.id)).scenario is Scenario.AGENT


async def test_the_migration_keeps_each_number_and_refuses_to_guess(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'old.sqlite3'}"
    await run_migrations(config=tortoise_config(url), target="models.0004_control")
    await Tortoise.close_connections()
    with sqlite3.connect(tmp_path / "old.sqlite3") as con:
        # A forwards to B's mobile, so both rows hold it; C has its own; D has none.
        for name, number in (("A", B_MOBILE), ("B", B_MOBILE), ("C", A_MOBILE), ("D", None)):
            con.execute(
                "INSERT INTO subscriber (name, language, timezone, scenario, forward_number,"
                " instructions, sms_pin_failures, created_at)"
                " VALUES (?, 'en', 'UTC', 'agent', ?, '', 0, '2026-01-01 00:00:00')",
                (name, number),
            )
    await run_migrations(config=tortoise_config(url))
    await Tortoise.close_connections()
    with sqlite3.connect(tmp_path / "old.sqlite3") as con:
        rows = con.execute("SELECT name, mobile, forward_number FROM subscriber ORDER BY name")
        assert rows.fetchall() == [
            ("A", None, B_MOBILE),  # ambiguous: kept as forward target, no identity
            ("B", None, B_MOBILE),
            ("C", A_MOBILE, None),  # its mobile; forwarding follows it (the same number)
            ("D", None, None),
        ]


def test_the_cli_sets_mobile_and_forward_separately(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FRONTDESK__DATABASE__URL", f"sqlite://{tmp_path / 'cli.sqlite3'}")
    add = ["subscriber", "add", "--name", "A", "--ddi", "2100001", "--mobile", A_MOBILE]
    assert main.main(add) == 0
    assert main.main(["subscriber", "set", "1", "--forward", ELSEWHERE]) == 0
    assert f"mobile={A_MOBILE}\tforward={ELSEWHERE}" in capsys.readouterr().out
    assert main.main(["subscriber", "set", "1", "--forward", ""]) == 0
    assert f"mobile={A_MOBILE}\tforward={A_MOBILE}" in capsys.readouterr().out
    assert main.main([*add[:5], "2100002", "--mobile", A_MOBILE]) == 2
    assert "already subscriber 1's" in capsys.readouterr().err
