"""Taking a message, a request or an appointment from a card in a guided exchange: every
step stored before the next question, one message per exchange, urgent ones on every
channel at once, contacts saved or corrected, and refusals that change nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import gateway.renderers  # noqa: F401  every kind's renderer
from gateway.control import callbacks
from gateway.delivery.notices import Notices
from gateway.staff.conversation import Conversations, parse_when
from gateway.staff.replies import Reply
from gateway.staff.tasks import Tasks
from models.db import Appointment, AuditEntry, Contact, Delivery, Notification, Urgency
from models.settings import RoutingSettings
from models.staff import Conversation, Taken, TakenMessage
from tests.desk_people import CALLER, ELENI, MARIA, SUPERVISOR, People, make_people

# 09:00 UTC is 11:00 in Athens, a weekday: the diary has free times this morning.
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ALL = ("telegram", "email", "sms", "mms")


def desk(channels: tuple[str, ...] = ALL) -> Conversations:
    notices = Notices(set(channels), RoutingSettings(), clock=lambda: NOW)
    return Conversations(notices, Tasks(None, clock=lambda: NOW), "GR", clock=lambda: NOW)


def data(reply: Reply, label: str) -> str:
    """The data of the button labelled `label` (or starting so)."""
    for row in reply.buttons:
        for text, value in row:
            if text == label or text.startswith(label):
                return value
    raise AssertionError(f"no button {label!r} in {reply.buttons}")


async def take(c: Conversations, people: People, kind: str = "msg") -> Reply:
    return await c.from_card(MARIA, callbacks.card(people.card.id, kind), "en")


@pytest.fixture
async def people(db: str) -> People:
    return await make_people()


async def test_a_message_step_by_step_reaches_the_subscriber_once(people: People) -> None:
    c = desk(("telegram",))
    reply = await take(c, people)
    assert "Message for Dr Papadopoulos" in reply.text and "Caller's name?" in reply.text
    reply = await c.text(MARIA, "Anna Georgiou", "en") or Reply()
    assert "Caller's number?" in reply.text and f"Now: {CALLER}" in reply.text
    reply = await c.press(MARIA, data(reply, "Keep"), "en")
    assert "What is the message?" in reply.text
    reply = await c.text(MARIA, "Please call about the test results.", "en") or Reply()
    reply = await c.press(MARIA, data(reply, "Results or documents"), "en")
    reply = await c.press(MARIA, data(reply, "Normal"), "en")
    assert "Send it?" in reply.text and "Anna Georgiou" in reply.text
    send = data(reply, "Send")
    done = await c.press(MARIA, send, "en")
    assert "Sent to Dr Papadopoulos." in done.toast
    again = await c.press(MARIA, send, "en")  # a double tap
    assert again.toast == "That question has been answered already."

    [taken] = await TakenMessage.all()
    assert (taken.kind, taken.caller_name, taken.caller_number) == (
        Taken.MESSAGE,
        "Anna Georgiou",
        CALLER,
    )
    assert (taken.category, taken.urgency) == ("results", Urgency.NORMAL)
    [n] = await Notification.all()
    assert n.dedupe_key == f"message:taken:{taken.id}" and n.kind == "message"
    [d] = await Delivery.filter(notification_id=n.id)
    assert d.channel == "telegram"
    assert d.text.splitlines()[0] == "Message for Dr Papadopoulos"
    assert "Category: Results or documents" in d.text
    assert d.text.endswith("Please call about the test results.")


async def test_each_step_is_stored_so_a_new_desk_goes_on_where_it_was(people: People) -> None:
    first = desk()
    reply = await take(first, people)
    reply = await first.text(MARIA, "Anna", "en") or Reply()
    [row] = await Conversation.filter(done=False)
    assert (row.step, row.answers["name"]) == ("number", "Anna")
    keep = data(reply, "Keep")

    second = desk()  # the gateway restarted: nothing of the first is in memory
    reply = await second.press(MARIA, keep, "en")
    assert "What is the message?" in reply.text
    reply = await second.text(MARIA, "Call back", "en") or Reply()
    reply = await second.press(MARIA, data(reply, "Other"), "en")
    reply = await second.press(MARIA, data(reply, "Normal"), "en")
    await second.press(MARIA, data(reply, "Send"), "en")
    await first.press(MARIA, data(reply, "Send"), "en")  # the old process's replay
    assert await TakenMessage.all().count() == 1
    assert await Notification.all().count() == 1


async def test_an_urgent_message_goes_on_every_channel_at_once(people: People) -> None:
    c = desk()
    reply = await take(c, people)
    reply = await c.text(MARIA, "Anna", "en") or Reply()
    reply = await c.press(MARIA, data(reply, "Keep"), "en")
    reply = await c.text(MARIA, "Chest pain, call now", "en") or Reply()
    reply = await c.press(MARIA, data(reply, "Other"), "en")
    reply = await c.press(MARIA, data(reply, "Urgent"), "en")
    await c.press(MARIA, data(reply, "Send"), "en")
    [n] = await Notification.all()
    assert (n.urgency, n.route) == (Urgency.URGENT, ["telegram+email+sms+mms"])
    rows = await Delivery.filter(notification_id=n.id).order_by("id")
    assert sorted(r.channel for r in rows) == sorted(ALL)
    assert all(r.text.startswith("Urgent:") for r in rows if r.channel != "email")


async def test_a_request_has_its_ticket_fields(people: People) -> None:
    c = desk(("telegram",))
    reply = await take(c, people, "req")
    assert "Request for Dr Papadopoulos" in reply.text
    reply = await c.text(MARIA, "Anna", "en") or Reply()
    reply = await c.press(MARIA, data(reply, "Keep"), "en")
    reply = await c.text(MARIA, "The invoice is wrong", "en") or Reply()
    reply = await c.text(MARIA, "Billing question", "en") or Reply()  # nature
    reply = await c.text(MARIA, "Explained the items", "en") or Reply()  # handling
    reply = await c.press(MARIA, data(reply, "No"), "en")  # resolved
    reply = await c.press(MARIA, data(reply, "Skip"), "en")  # cause
    reply = await c.press(MARIA, data(reply, "Billing"), "en")
    reply = await c.press(MARIA, data(reply, "Normal"), "en")
    await c.press(MARIA, data(reply, "Send"), "en")
    [taken] = await TakenMessage.all()
    assert (taken.kind, taken.nature, taken.handling, taken.resolved, taken.cause) == (
        Taken.REQUEST,
        "Billing question",
        "Explained the items",
        False,
        "",
    )
    [d] = await Delivery.filter(kind="message")
    assert d.text.splitlines()[0] == "Request for Dr Papadopoulos"
    for line in ("Nature of the call: Billing question", "Handling: Explained", "Resolved: no"):
        assert line in d.text


async def test_an_appointment_is_booked_in_the_diary(people: People) -> None:
    c = desk(("telegram",))
    reply = await take(c, people, "appt")
    reply = await c.text(MARIA, "Anna", "en") or Reply()
    reply = await c.press(MARIA, data(reply, "Keep"), "en")
    assert "When?" in reply.text
    slot = reply.buttons[0][0][1]  # the first free time offered
    reply = await c.press(MARIA, slot, "en")
    reply = await c.press(MARIA, data(reply, "Skip"), "en")  # no note
    assert "Appointment:" in reply.text
    await c.press(MARIA, data(reply, "Send"), "en")
    [booked] = await Appointment.all()
    assert booked.name == "Anna" and booked.starts_at > NOW
    [taken] = await TakenMessage.all()
    assert taken.kind == Taken.APPOINTMENT
    [d] = await Delivery.filter(kind="message")
    assert d.text.startswith("Appointment for Dr Papadopoulos") and "Appointment: " in d.text


async def test_a_typed_time_in_the_past_is_asked_again(people: People) -> None:
    c = desk(("telegram",))
    reply = await take(c, people, "appt")
    reply = await c.text(MARIA, "Anna", "en") or Reply()
    reply = await c.press(MARIA, data(reply, "Keep"), "en")
    reply = await c.text(MARIA, "soon", "en") or Reply()
    assert reply.text.startswith("I could not read that time")
    assert (await Conversation.get(done=False)).step == "when"


async def test_an_unknown_caller_is_saved_and_a_known_one_corrected(people: People) -> None:
    c = desk(("telegram",))
    reply = await take(c, people)
    reply = await c.text(MARIA, "Anna Georgiou", "en") or Reply()
    reply = await c.press(MARIA, data(reply, "Keep"), "en")
    reply = await c.text(MARIA, "Hello", "en") or Reply()
    reply = await c.press(MARIA, data(reply, "Other"), "en")
    reply = await c.press(MARIA, data(reply, "Normal"), "en")
    reply = await c.press(MARIA, data(reply, "Save as a new contact"), "en")
    assert data(reply, "✓ Save as a new contact")
    await c.press(MARIA, data(reply, "Send"), "en")
    [contact] = await Contact.all()
    assert (contact.name, contact.number) == ("Anna Georgiou", CALLER)

    reply = await take(c, people)  # the next call: the contact's name comes prefilled
    assert "Now: Anna Georgiou" in reply.text
    reply = await c.text(MARIA, "Anna Georgiou-Pappa", "en") or Reply()
    reply = await c.press(MARIA, data(reply, "Keep"), "en")
    reply = await c.text(MARIA, "Again", "en") or Reply()
    reply = await c.press(MARIA, data(reply, "Other"), "en")
    reply = await c.press(MARIA, data(reply, "Normal"), "en")
    reply = await c.press(MARIA, data(reply, "Correct the contact's name"), "en")
    await c.press(MARIA, data(reply, "Send"), "en")
    assert [c.name for c in await Contact.all()] == ["Anna Georgiou-Pappa"]


async def test_another_teams_card_or_exchange_is_refused_audited_and_unchanged(
    people: People,
) -> None:
    c = desk()
    forged = await c.from_card(ELENI, callbacks.card(people.card.id, "msg"), "en")
    assert forged.refused and forged.toast == "That is not yours to do."
    assert await Conversation.all().count() == 0

    reply = await take(c, people)  # Maria's own exchange
    step = data(reply, "Cancel")
    before = await Conversation.get()
    answer = await c.press(ELENI, step, "en")
    assert answer.refused
    after = await Conversation.get()
    assert (after.step, after.done, after.answers) == (before.step, before.done, before.answers)
    assert await c.text(ELENI, "typed by another", "en") is None  # not her exchange
    audits = await AuditEntry.filter(result="refused").order_by("id")
    assert [a.actor for a in audits] == [str(ELENI), str(ELENI)]

    # Maria's supervisor leads her team: the card is theirs to act on too.
    assert not (await c.from_card(SUPERVISOR, callbacks.card(people.card.id, "msg"), "en")).refused


async def test_a_press_for_a_step_that_is_over_changes_nothing(people: People) -> None:
    c = desk()
    reply = await take(c, people)
    cancel_at_name = data(reply, "Cancel")
    await c.text(MARIA, "Anna", "en")
    old = await c.press(MARIA, cancel_at_name, "en")
    assert old.toast == "That question has been answered already."
    assert (await Conversation.get()).step == "number"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("14:30", datetime(2026, 11, 23, 12, 30, tzinfo=UTC)),  # Athens is UTC+2 in November
        ("10:00", datetime(2026, 11, 24, 8, 0, tzinfo=UTC)),  # passed today: tomorrow
        ("25/12 10:00", datetime(2026, 12, 25, 8, 0, tzinfo=UTC)),
        ("25.12.2026 9.15", datetime(2026, 12, 25, 7, 15, tzinfo=UTC)),
        ("2027-01-04 16:00", datetime(2027, 1, 4, 14, 0, tzinfo=UTC)),
        ("1/1 10:00", datetime(2027, 1, 1, 8, 0, tzinfo=UTC)),  # passed this year: next
        ("31/02 10:00", None),
        ("25:00", None),
        ("tomorrow", None),
        ("", None),
    ],
)
def test_typed_times(text: str, expected: datetime | None) -> None:
    assert parse_when(text, "Europe/Athens", NOW) == expected


def test_conversation_button_data_round_trips_and_forged_data_is_none() -> None:
    packed = callbacks.conversation(12, "urgency", "urgent")
    assert callbacks.unpack_conversation(packed) == (12, "urgency", "urgent")
    assert len(callbacks.conversation(2**31 - 1, "handling", "s1799999999")) <= 64
    for forged in ("cv:0:a:b", "cv:1:a", "cv:1:A:b", "cv:1:a:b:c", "cv:x:a:b", "tk:1:done"):
        assert callbacks.unpack_conversation(forged) is None
    assert callbacks.unpack_task(callbacks.task(5, "call")) == (5, "call")
    assert callbacks.unpack_task("tk:5") is None and callbacks.unpack_task("tk:²:done") is None
