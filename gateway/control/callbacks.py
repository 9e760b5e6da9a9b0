"""The data of inline buttons (Telegram's callback_data): written and read here only.

We write it (`ack:<id>`, `callback:<id>`, `fwdme:<id>`, `book:<id>`, `bk:<id>:<epoch>`,
`scn:<scenario>`), but it comes back from the client, so anything may arrive: these
readers never raise, and give None for whatever we would not have written. What a button
says reads as a command of the text grammar (gateway/control/grammar.py), so a press runs
through the same `CommandDesk.run` as a typed command.

The formats never change: buttons already sent keep working after an upgrade.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from gateway.control import grammar as cmd
from models.vocab import Scenario

# Our ids are INTEGER columns: 32-bit signed in PostgreSQL (SQLite allows 64).
MAX_ID = 2**31 - 1
# A slot offered by "Book a time" lies ahead; one pressed late is at most this old, and
# none is offered this far ahead.
SLOT_PAST = timedelta(days=366)
SLOT_AHEAD = timedelta(days=2 * 366)
_ID = re.compile(r"[1-9][0-9]{0,9}")  # ASCII only: str.isdigit() also takes "²" and "٣"
_EPOCH = re.compile(r"[1-9][0-9]{0,11}")


def parse_id(text: str) -> int | None:
    """A database id, or None."""
    if not _ID.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def parse_slot(text: str, now: datetime) -> datetime | None:
    """A slot's start from its Unix time, or None when it is no sane slot (checked as a
    number first: far-off values overflow datetime)."""
    if not _EPOCH.fullmatch(text):
        return None
    value = int(text)
    if not (now - SLOT_PAST).timestamp() <= value <= (now + SLOT_AHEAD).timestamp():
        return None
    return datetime.fromtimestamp(value, UTC)


# -- packing: the only place callback data is written ------------------------------------------
# Telegram allows 64 bytes; every string below holds DB ids and short words, so it survives
# a restart (nothing lives in memory) and stays far below the limit.

ACK = "ack"  # ack:<notification id>          "Got it" on an urgent notification
CALL_BACK = "callback"  # callback:<call id>   ring the subscriber's mobile, then the caller
FORWARD_TO_ME = "fwdme"  # fwdme:<call id>     forward now and move the ringing call
BOOK = "book"  # book:<call id>                show the nearest free slots
BOOK_SLOT = "bk"  # bk:<call id>:<unix time>   book the caller into that slot
SCENARIO = "scn"  # scn:<scenario>              the /scenario keyboard
PREFIXES = (ACK, CALL_BACK, FORWARD_TO_ME, BOOK, BOOK_SLOT, SCENARIO)


def pattern(prefix: str) -> str:
    """The regular expression a handler for `prefix` is registered with."""
    return rf"^{prefix}:"


def ack(notification_id: int) -> str:
    return f"{ACK}:{notification_id}"


def call_back(call_id: int) -> str:
    return f"{CALL_BACK}:{call_id}"


def forward_to_me(call_id: int) -> str:
    return f"{FORWARD_TO_ME}:{call_id}"


def book(call_id: int) -> str:
    return f"{BOOK}:{call_id}"


def book_slot(call_id: int, start: datetime) -> str:
    return f"{BOOK_SLOT}:{call_id}:{int(start.timestamp())}"


def scenario(value: str) -> str:
    return f"{SCENARIO}:{value}"


# -- unpacking: data back into the grammar's commands (None: forged) ---------------------------

Unpacker = Callable[[str, datetime], "cmd.Command | None"]


def _argument(data: str, prefix: str) -> str | None:
    """What follows `prefix:`, or None when the data does not start so."""
    head, colon, rest = data.partition(":")
    return rest if head == prefix and colon else None


def _id_after(data: str, prefix: str) -> int | None:
    rest = _argument(data, prefix)
    return parse_id(rest) if rest is not None else None


def unpack_ack(data: str, now: datetime) -> cmd.Acknowledge | None:
    notification_id = _id_after(data, ACK)
    return cmd.Acknowledge(notification_id) if notification_id else None


def unpack_call_back(data: str, now: datetime) -> cmd.CallBackCall | None:
    call_id = _id_after(data, CALL_BACK)
    return cmd.CallBackCall(call_id) if call_id else None


def unpack_forward_to_me(data: str, now: datetime) -> cmd.ForwardToMe | None:
    call_id = _id_after(data, FORWARD_TO_ME)
    return cmd.ForwardToMe(call_id) if call_id else None


def unpack_book(data: str, now: datetime) -> cmd.ShowSlots | None:
    call_id = _id_after(data, BOOK)
    return cmd.ShowSlots(call_id) if call_id else None


def unpack_book_slot(data: str, now: datetime) -> cmd.BookSlot | None:
    """`bk:<call id>:<unix time>`: a slot we could have offered, else None."""
    rest = _argument(data, BOOK_SLOT)
    if rest is None:
        return None
    call, _, epoch = rest.partition(":")
    call_id, start = parse_id(call), parse_slot(epoch, now)
    return cmd.BookSlot(call_id, start) if call_id and start else None


def unpack_scenario(data: str, now: datetime) -> cmd.SetScenario | None:
    """`scn:<scenario>`: switch now, until changed again."""
    value = _argument(data, SCENARIO)
    if value is None or value not in Scenario._value2member_map_:
        return None
    return cmd.SetScenario(Scenario(value), None)


UNPACK: dict[str, Unpacker] = {
    ACK: unpack_ack,
    CALL_BACK: unpack_call_back,
    FORWARD_TO_ME: unpack_forward_to_me,
    BOOK: unpack_book,
    BOOK_SLOT: unpack_book_slot,
    SCENARIO: unpack_scenario,
}
assert tuple(UNPACK) == PREFIXES


def unpack(data: str | None, now: datetime) -> cmd.Command | None:
    """Any callback data: the command it says, or None."""
    if not data:
        return None
    reader = UNPACK.get(data.partition(":")[0])
    return reader(data, now) if reader else None


# -- the operator desk's guided exchanges and tasks (staff chats; gateway/staff) -----------------
# Not commands of the grammar: bot/staff_desk.py registers its own handlers for these, and
# gateway/staff checks rights on the conversation or task named before acting.

CONVERSATION = "cv"  # cv:<conversation id>:<step>:<choice>   one answer in a guided exchange
TASK = "tk"  # tk:<task id>:<action>                      done, follow-up, call now
_WORD = re.compile(r"[a-z][a-z0-9_]{0,15}")
_CHOICE = re.compile(r"[a-z0-9_]{1,24}")


def conversation(conversation_id: int, step: str, choice: str) -> str:
    return f"{CONVERSATION}:{conversation_id}:{step}:{choice}"


def task(task_id: int, action: str) -> str:
    return f"{TASK}:{task_id}:{action}"


def unpack_conversation(data: str | None) -> tuple[int, str, str] | None:
    """`cv:<id>:<step>:<choice>` as (id, step, choice), or None."""
    rest = _argument(data or "", CONVERSATION)
    if rest is None:
        return None
    parts = rest.split(":")
    if len(parts) != 3:
        return None
    head, step, choice = parts
    conversation_id = parse_id(head)
    if not conversation_id or not _WORD.fullmatch(step) or not _CHOICE.fullmatch(choice):
        return None
    return conversation_id, step, choice


def unpack_task(data: str | None) -> tuple[int, str] | None:
    """`tk:<id>:<action>` as (id, action), or None."""
    rest = _argument(data or "", TASK)
    if rest is None:
        return None
    head, colon, action = rest.partition(":")
    task_id = parse_id(head)
    if not task_id or not colon or not _WORD.fullmatch(action):
        return None
    return task_id, action


# -- the screen-pop card's buttons (gateway/staff/cards.py packs them onto the card) -------------
# cd:<card id>:<action>; the handlers of the presses check rights on the card named.

CARD = "cd"
CARD_MESSAGE = "msg"  # take a message
CARD_REQUEST = "req"  # take a request (service ticket)
CARD_APPOINTMENT = "appt"  # book an appointment in the subscriber's diary
CARD_TASK = "task"  # make a task (call back ...)
CARD_TRANSFER = "xfer"  # put the live call through, with a note
CARD_ACTIONS = (CARD_MESSAGE, CARD_REQUEST, CARD_APPOINTMENT, CARD_TASK, CARD_TRANSFER)


def card(card_id: int, action: str) -> str:
    assert action in CARD_ACTIONS, action
    return f"{CARD}:{card_id}:{action}"


def unpack_card(data: str | None) -> tuple[int, str] | None:
    """`cd:<card id>:<action>` as (card id, action), or None."""
    rest = _argument(data or "", CARD)
    if rest is None:
        return None
    head, colon, action = rest.partition(":")
    card_id = parse_id(head)
    if not card_id or not colon or action not in CARD_ACTIONS:
        return None
    return card_id, action


# -- putting a live call through, from its card (gateway/staff/transfer.py) ---------------------
# xf:<card id>:<kind>:<target id>; kind m = the subscriber's mobile (id 0), a = another
# agent (their agent id), e = an extension typed next (id 0). The press only picks the
# target: the note typed next puts the call through, after the rights on the card and on
# the target are checked again.

TRANSFER_TO = "xf"
TRANSFER_KINDS = ("m", "a", "e")


def transfer_to(card_id: int, kind: str, target_id: int = 0) -> str:
    assert kind in TRANSFER_KINDS, kind
    return f"{TRANSFER_TO}:{card_id}:{kind}:{target_id}"


def unpack_transfer_to(data: str | None) -> tuple[int, str, int] | None:
    """`xf:<card id>:<kind>:<target id>` as (card id, kind, target id), or None. The
    target id is 0 exactly for the kinds that name none (m, e)."""
    rest = _argument(data or "", TRANSFER_TO)
    if rest is None:
        return None
    parts = rest.split(":")
    if len(parts) != 3:
        return None
    head, kind, target = parts
    card_id = parse_id(head)
    if not card_id or kind not in TRANSFER_KINDS:
        return None
    if kind == "a":
        target_id = parse_id(target)
        return (card_id, kind, target_id) if target_id else None
    return (card_id, kind, 0) if target == "0" else None


# -- agents' presence (staff chats; gateway/staff/presence.py, bot/staff.py) --------------------

PAUSE = "pz"  # pz:<agent id>:<reason key>      pause that agent for a preset reason
_REASON = re.compile(r"[a-z]{1,16}")


def pause(agent_id: int, reason: str) -> str:
    return f"{PAUSE}:{agent_id}:{reason}"


def unpack_pause(data: str | None) -> tuple[int, str] | None:
    """`pz:<agent id>:<reason key>` as (agent id, reason key), or None."""
    rest = _argument(data or "", PAUSE)
    if rest is None:
        return None
    head, colon, reason = rest.partition(":")
    agent_id = parse_id(head)
    if not agent_id or not colon or not _REASON.fullmatch(reason):
        return None
    return agent_id, reason


# -- the admins' menus (admin chats; gateway/admin/menus.py, bot/admin.py) -----------------------
# ad:<action>[:<arg>...]: menus and lists (ad:m, ad:sl:<page>, ad:s:<subscriber id>, ...) and
# a form's answers (ad:f:<conversation id>:<step>:<choice>). Every part is a short word or
# a DB id; gateway/admin checks rights and the ids named before acting.

ADMIN = "ad"
_ADMIN_PART = re.compile(r"[a-z0-9_]{1,24}")


def admin(action: str, *args: object) -> str:
    return ":".join((ADMIN, action, *(str(a) for a in args)))


def unpack_admin(data: str | None) -> tuple[str, ...] | None:
    """`ad:<action>[:<arg>...]` as (action, arg, ...) of short words, or None."""
    rest = _argument(data or "", ADMIN)
    if rest is None:
        return None
    parts = tuple(rest.split(":"))
    if len(parts) > 5 or not all(_ADMIN_PART.fullmatch(p) for p in parts):
        return None
    return parts


# -- the console of live and recent calls (staff chats; gateway/admin/console.py) ---------------
# cs:<view>:<page>:<period>:<status>:<subscriber id>:<agent id>   the list (l) or a picker of
#   period (p), status (s), subscriber (u) or agent (a), with the filters in force (0: any;
#   status: 1 + its index in the console's order);
# cs:d:<call id>  a call's detail;   cs:c:<call id>  call that caller back.

CONSOLE = "cs"
CONSOLE_VIEWS = ("l", "p", "s", "u", "a")
CONSOLE_PERIODS = ("t", "y", "w", "m")  # today, yesterday, the last 7 days, this month
CONSOLE_CALL_ACTIONS = ("d", "c")
_SMALL = re.compile(r"0|[1-9][0-9]{0,3}")  # a page or a status index


def console(view: str, page: int, period: str, status: int, subscriber: int, agent: int) -> str:
    assert view in CONSOLE_VIEWS and period in CONSOLE_PERIODS, (view, period)
    return f"{CONSOLE}:{view}:{page}:{period}:{status}:{subscriber}:{agent}"


def console_call(action: str, call_id: int) -> str:
    assert action in CONSOLE_CALL_ACTIONS, action
    return f"{CONSOLE}:{action}:{call_id}"


def _id_or_zero(text: str) -> int | None:
    return 0 if text == "0" else parse_id(text)


def unpack_console(data: str | None) -> tuple[str, int, str, int, int, int] | None:
    """`cs:<view>:<page>:<period>:<status>:<subscriber>:<agent>` as a tuple, or None."""
    rest = _argument(data or "", CONSOLE)
    if rest is None:
        return None
    parts = rest.split(":")
    if len(parts) != 6:
        return None
    view, page, period, status, subscriber, agent = parts
    if view not in CONSOLE_VIEWS or period not in CONSOLE_PERIODS:
        return None
    if not _SMALL.fullmatch(page) or not _SMALL.fullmatch(status):
        return None
    subscriber_id, agent_id = _id_or_zero(subscriber), _id_or_zero(agent)
    if subscriber_id is None or agent_id is None:
        return None
    return view, int(page), period, int(status), subscriber_id, agent_id


def unpack_console_call(data: str | None) -> tuple[str, int] | None:
    """`cs:d:<call id>` or `cs:c:<call id>` as (action, call id), or None."""
    rest = _argument(data or "", CONSOLE)
    if rest is None:
        return None
    action, colon, head = rest.partition(":")
    call_id = parse_id(head)
    if action not in CONSOLE_CALL_ACTIONS or not colon or not call_id:
        return None
    return action, call_id
