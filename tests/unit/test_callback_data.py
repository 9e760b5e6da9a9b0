"""Button presses whose callback data is malformed, forged or out of range: the handlers
registered per prefix (and the fallback) answer every query once with a localised refusal
(a query left unanswered keeps the user's spinner turning). Table cases, then a hypothesis
fuzz of the handlers, routed as python-telegram-bot routes them, error handler included."""

from __future__ import annotations

import asyncio
import contextvars
import re
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.handlers import FAILED as FAILED_MSGID
from bot.handlers import button_routes, on_error
from gateway.control import admin, callbacks
from gateway.control import grammar as cmd
from gateway.control.callbacks import MAX_ID, PREFIXES, parse_id, parse_slot, unpack
from gateway.control.desk import NOT_FOR_YOU, CommandDesk
from gateway.control.lines import Control
from gateway.delivery.notices import Notices
from gateway.pbx.client import AmiUnavailable
from gateway.pbx.errors import UNREACHABLE
from locales import tr
from models.database import close_db, open_db
from models.db import Appointment, AuditEntry, Call, Notification
from models.settings import RoutingSettings
from tests.conftest import copy_migrated

CHAT, STRANGER_CHAT = 6060, 6161
LANG = "el"
NOT_YOURS = tr(LANG, NOT_FOR_YOU)
FAILED = tr(LANG, FAILED_MSGID)
HUGE = "99999999999999999999999"
T = TypeVar("T")


# --- Telegram's side, as the dispatcher sees it -----------------------------------------


@dataclass
class Chat:
    id: int


@dataclass
class Sender:
    language_code: str | None = LANG


@dataclass
class Message:
    chat: Chat
    text: str | None = "Αναπάντητη κλήση"
    caption: str | None = None
    reply_markup: Any = None


@dataclass
class Query:
    data: str | None
    message: Message
    answers: list[str | None] = field(default_factory=list)
    edits: int = 0

    async def answer(self, text: str | None = None, **_: Any) -> bool:
        self.answers.append(text)
        return True

    async def edit_message_text(self, *_: Any, **__: Any) -> bool:
        self.edits += 1
        return True

    edit_message_caption = edit_message_text
    edit_message_reply_markup = edit_message_text


@dataclass
class Update:
    callback_query: Query
    effective_chat: Chat
    effective_user: Sender = field(default_factory=Sender)


class AcceptingAmi:
    async def send_action(self, action: dict[str, str], timeout: float = 5.0) -> dict[str, str]:
        return {"Response": "Success", "Value": ""}


@dataclass
class Office:
    call_id: int  # a call of the chat's subscriber
    others_call_id: int
    notification_id: int
    dispatch: Any
    desk: CommandDesk

    async def press(self, data: str | None, chat: int = CHAT) -> Query:
        query = Query(data, Message(Chat(chat)))
        update = Update(query, Chat(chat))
        await self.dispatch(cast(Any, update), None)
        return query


async def set_up(template: Path, path: Path, ami: Any = None) -> Office:
    await open_db(copy_migrated(template, path))
    mine = await admin.add_subscriber(
        name="Γραφείο", ddis=["2100001"], language=LANG, timezone="Europe/Athens"
    )
    await admin.set_contact_points(mine.subscriber.id, mobile="+306912345678")
    await admin.link_chat(mine.link_code, CHAT, "Office", LANG)
    other = await admin.add_subscriber(
        name="Other", ddis=["2100002"], language="en", timezone="UTC"
    )
    call = await Call.create(
        linkedid="1.1",
        ddi="2100001",
        subscriber=mine.subscriber,
        caller_number="+302101234567",
        started_at=datetime.now(UTC),
    )
    others = await Call.create(
        linkedid="2.1", ddi="2100002", subscriber=other.subscriber, started_at=datetime.now(UTC)
    )
    notification = await Notification.create(
        dedupe_key="missed_call:1.1", subscriber=mine.subscriber, call=call, kind="missed_call"
    )
    notices = Notices({"telegram"}, RoutingSettings())
    desk = CommandDesk(Control(ami or AcceptingAmi()), notices)
    return Office(call.id, others.id, notification.id, dispatcher(desk), desk)


@dataclass
class Context:
    error: Exception | None = None


def dispatcher(desk: CommandDesk) -> Any:
    """As python-telegram-bot runs a callback query: the first handler whose pattern
    matches (empty data matches any), and on an exception the error handler."""
    routes = button_routes(desk)

    async def dispatch(update: Any, _: Any) -> None:
        data = update.callback_query.data
        handler = next(h for p, h in routes if p is None or not data or re.match(p, data))
        try:
            await handler(update, cast(Any, Context()))
        except Exception as exc:
            await on_error(update, cast(Any, Context(exc)))

    return dispatch


@pytest.fixture
async def office(migrated_db: Path, tmp_path: Path) -> AsyncIterator[Office]:
    yield await set_up(migrated_db, tmp_path / "buttons.sqlite3")
    await close_db()


# --- Table ----------------------------------------------------------------------------


MALFORMED = [
    f"fwdme:{HUGE}",
    f"callback:{HUGE}",
    f"ack:{HUGE}",
    f"book:{HUGE}",
    f"bk:{HUGE}:1700000000",
    f"fwdme:{MAX_ID + 1}",
    "fwdme:²",  # a digit to str.isdigit(), not to int()
    "ack:٣",
    "callback:0",
    "callback:-1",
    "callback:",
    "bk:1:1e400",
    f"bk:1:{HUGE}",
    "bk:1:²",
    "bk:1:-5",
    "bk:1:",
    "bk:1",
    "bk:1:100",  # 1970
    "scn:nope",
    "scn:",
    "nope",
    "",
    ":",
    "x" * 300,
]


async def test_malformed_data_is_refused_in_the_chats_language(office: Office) -> None:
    answers = {}
    for data in MALFORMED:
        query = await office.press(data.replace("bk:1", f"bk:{office.call_id}"))
        answers[data] = query.answers
    assert answers == {data: [NOT_YOURS] for data in MALFORMED}
    assert await Appointment.all().count() == 0


async def test_no_data_at_all_is_refused(office: Office) -> None:
    assert (await office.press(None)).answers == [NOT_YOURS]


async def test_another_subscribers_call_and_a_stranger_are_refused(office: Office) -> None:
    assert (await office.press(f"fwdme:{office.others_call_id}")).answers == [NOT_YOURS]
    stranger = await office.press(f"ack:{office.notification_id}", STRANGER_CHAT)
    assert stranger.answers == [NOT_YOURS]  # in the stranger's Telegram language


async def test_well_formed_buttons_still_work(office: Office) -> None:
    assert (await office.press(f"ack:{office.notification_id}")).answers == [tr(LANG, "Noted.")]
    slot = await office.press(f"book:{office.call_id}")
    assert slot.answers == [tr(LANG, "Book a time")] and slot.edits == 1
    tomorrow = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    tomorrow += timedelta(days=1 if datetime.now(UTC).weekday() < 4 else 3)
    booked = await office.press(f"bk:{office.call_id}:{int(tomorrow.timestamp())}")
    [answer] = booked.answers
    assert answer is not None and answer.startswith(tr(LANG, "Booked: {name}, {time}.")[:6])
    assert await Appointment.all().count() == 1


async def test_an_unexpected_failure_still_answers_the_query(
    office: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(Notices, "acknowledge", broken)
    assert (await office.press(f"ack:{office.notification_id}")).answers == [FAILED]


async def test_a_refused_button_is_audited_and_changes_nothing(office: Office) -> None:
    forged = [f"fwdme:{office.others_call_id}", "callback:", "rm -rf:1"]
    for data in forged:
        assert (await office.press(data)).answers == [NOT_YOURS]
    entries = await AuditEntry.all().order_by("id")
    assert [(e.channel, e.actor, e.command, e.result) for e in entries] == [
        ("telegram", str(CHAT), data, "refused") for data in forged
    ]
    assert await Notification.filter(acknowledged_at__isnull=False).count() == 0


class DeadAmi:
    async def send_action(self, action: dict[str, str], timeout: float = 5.0) -> dict[str, str]:
        raise AmiUnavailable("not connected")


async def test_an_unreachable_pbx_gets_one_answer_on_buttons_and_text(
    migrated_db: Path, tmp_path: Path
) -> None:
    office = await set_up(migrated_db, tmp_path / "dead.sqlite3", DeadAmi())
    try:
        unreachable = tr(LANG, UNREACHABLE)
        for data in (f"callback:{office.call_id}", f"fwdme:{office.call_id}", "scn:closed"):
            assert (await office.press(data)).answers == [unreachable], data
        assert await office.desk.from_telegram(CHAT, "κλειστό", datetime.now(UTC)) == unreachable
        results = await AuditEntry.all().order_by("id").values_list("result", flat=True)
        assert results == ["failed"] * 4
    finally:
        await close_db()


# --- The parsers alone ------------------------------------------------------------------


def test_buttons_read_as_the_commands_text_parses_into() -> None:
    now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    slot = now + timedelta(days=1)
    assert [
        unpack(callbacks.ack(7), now),
        unpack(callbacks.call_back(8), now),
        unpack(callbacks.forward_to_me(9), now),
        unpack(callbacks.book(10), now),
        unpack(callbacks.book_slot(11, slot), now),
        unpack(callbacks.scenario("closed"), now),
    ] == [
        cmd.Acknowledge(7),
        cmd.CallBackCall(8),
        cmd.ForwardToMe(9),
        cmd.ShowSlots(10),
        cmd.BookSlot(11, slot),
        cmd.SetScenario("closed", None),
    ]
    # The formats of buttons already sent, unchanged.
    assert callbacks.book_slot(11, slot) == f"bk:11:{int(slot.timestamp())}"
    assert [callbacks.ack(1), callbacks.call_back(1), callbacks.forward_to_me(1)] == [
        "ack:1",
        "callback:1",
        "fwdme:1",
    ]
    assert [callbacks.book(1), callbacks.scenario("agent")] == ["book:1", "scn:agent"]


@pytest.mark.parametrize("data", MALFORMED)
def test_malformed_data_unpacks_to_nothing(data: str) -> None:
    assert unpack(data, datetime.now(UTC)) is None


def test_parse_id_takes_only_ascii_ids_in_the_databases_range() -> None:
    assert [parse_id(t) for t in ("1", "42", str(MAX_ID))] == [1, 42, MAX_ID]
    bad = ["", "0", "-1", "+1", " 1", "1 ", "²", "٣", "1e3", "0x1", str(MAX_ID + 1), HUGE]
    assert [parse_id(t) for t in bad] == [None] * len(bad)


def test_parse_slot_takes_only_sane_times() -> None:
    now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert parse_slot(str(int(now.timestamp()) + 3600), now) == now + timedelta(hours=1)
    for text in ("", "1e400", HUGE, "-5", "100", "²", str(int(now.timestamp()) + 10 * 366 * 86400)):
        assert parse_slot(text, now) is None, text


# --- Fuzz -------------------------------------------------------------------------------


ARGS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["1", "2", "0", "²", "٣", "1e400", "-0", " 1", "", HUGE, str(MAX_ID + 1)]),
    st.text(max_size=20),
)
DATA = st.one_of(
    st.text(max_size=70),
    st.tuples(st.sampled_from(PREFIXES), st.lists(ARGS, min_size=0, max_size=3)).map(
        lambda t: ":".join([t[0], *t[1]])
    ),
)


@dataclass
class Loop:
    """A loop of the test's own, since hypothesis runs each example synchronously; every
    step runs in one context, where the database connection set up first lives."""

    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    context: contextvars.Context = field(default_factory=contextvars.copy_context)

    def run(self, step: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(self.loop.create_task(step, context=self.context))


@pytest.fixture
def loop_office(migrated_db: Path, tmp_path: Path) -> Iterator[tuple[Loop, Office]]:
    own = Loop()
    try:
        yield own, own.run(set_up(migrated_db, tmp_path / "fuzz.sqlite3"))
    finally:
        own.run(close_db())
        own.loop.close()


def test_fuzzed_callback_data_is_always_answered_once(
    loop_office: tuple[Loop, Office],
) -> None:
    own, office = loop_office

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=DATA, stranger=st.booleans())
    def press(data: str, stranger: bool) -> None:
        query = own.run(office.press(data, STRANGER_CHAT if stranger else CHAT))
        [answer] = query.answers  # exactly once, whatever the data
        assert answer, data

    press()
