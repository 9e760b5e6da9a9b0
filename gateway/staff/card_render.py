"""The screen-pop card's words and buttons (pure: facts in, text out).

A card is a body (who the call is for, what to say, the subscriber's instructions and
day, the caller and their history) shown as it was when the call rang, and a status line
under it that follows the call ("Ringing", "Answered by Maria", "Caller hung up").
Card labels are in the agent's language; the greeting is in the subscriber's, since it
is said to the subscriber's callers. Times are the subscriber's local times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from babel.dates import format_time

from gateway.control import callbacks
from gateway.control.labels import SCENARIO_LABELS
from gateway.delivery.render import local_time
from gateway.staff.history import Booking, Interaction, OpenTask, Was
from locales import N_, tr
from models.vocab import Scenario
from notifiers.base import Button

DETAIL_CHARS = 60  # a message or transcript quoted in a history line, at most
DIARY_SHOWN = 8  # today's appointments listed; more are counted

_WAS = {
    Was.CALL_ANSWERED: N_("call, answered"),
    Was.CALL_MISSED: N_("call, missed"),
    Was.CALL_FORWARDED: N_("call, put through to the mobile"),
    Was.CALL_OTHER: N_("call"),
    Was.MESSAGE: N_("message"),
    Was.REQUEST: N_("request"),
    Was.APPOINTMENT_TAKEN: N_("appointment taken"),
    Was.BOOKED: N_("appointment booked"),
    Was.VOICEMAIL: N_("voicemail"),
    Was.FAX: N_("fax"),
}


class Shown(StrEnum):
    """What the status line says."""

    RINGING = "ringing"
    ANSWERED_BY_YOU = "answered_by_you"
    ANSWERED_BY = "answered_by"  # another agent, named
    FORWARDED = "forwarded"  # put through to the subscriber's mobile
    HUNG_UP = "hung_up"
    VOICEMAIL = "voicemail"  # nobody answered; the caller left a message
    ENDED = "ended"  # how it ended is not known


_STATUS = {
    Shown.RINGING: N_("Ringing…"),
    Shown.ANSWERED_BY_YOU: N_("Answered by you"),
    Shown.ANSWERED_BY: N_("Answered by {name}"),
    Shown.FORWARDED: N_("Put through to the subscriber's mobile"),
    Shown.HUNG_UP: N_("Caller hung up"),
    Shown.VOICEMAIL: N_("The caller left a voicemail"),
    Shown.ENDED: N_("Call ended"),
}
_ICON = {
    Shown.RINGING: "🔔",
    Shown.ANSWERED_BY_YOU: "✅",
    Shown.ANSWERED_BY: "☑️",
    Shown.FORWARDED: "📲",
    Shown.HUNG_UP: "❌",
    Shown.VOICEMAIL: "📼",
    Shown.ENDED: "⏹",
}


@dataclass(frozen=True)
class CardFacts:
    """Everything a card's body says, read once per call."""

    subscriber: str
    subscriber_language: str
    timezone: str
    greeting: str  # the subscriber's own; "" for the default
    instructions: str
    scenario: str  # a Scenario value (or "" when not known)
    diary: list[Booking]
    caller_number: str  # E.164, or "" when withheld
    caller_name: str  # what the caller id says
    contact: str | None  # the subscriber's contact of that number
    history: list[Interaction] = field(default_factory=list)
    tasks: list[OpenTask] = field(default_factory=list)
    at: datetime | None = None  # when it rang (the greeting's time of day); None: unknown


def greeting(facts: CardFacts) -> str:
    """What to say on answering: the subscriber's greeting, else good morning, afternoon
    or evening (their local time) and their name, in their language."""
    if facts.greeting.strip():
        return facts.greeting.strip()
    lang = facts.subscriber_language
    hour = facts.at.astimezone(ZoneInfo(facts.timezone)).hour if facts.at else 12
    if 5 <= hour < 12:
        return tr(lang, "Good morning, {name}", name=facts.subscriber)
    if 12 <= hour < 18:
        return tr(lang, "Good afternoon, {name}", name=facts.subscriber)
    return tr(lang, "Good evening, {name}", name=facts.subscriber)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def _time_of_day(lang: str, timezone: str, at: datetime) -> str:
    return format_time(at, format="short", tzinfo=ZoneInfo(timezone), locale=lang)


def history_line(lang: str, timezone: str, item: Interaction) -> str:
    what = tr(lang, _WAS[item.was])
    if item.was is Was.FAX and item.detail:
        what = tr(lang, "fax, {pages} page(s)", pages=item.detail)
    elif item.was is Was.BOOKED and item.when is not None:
        when = local_time(lang, timezone, item.when)
        what = tr(lang, "appointment booked for {time}", time=when)
    elif item.detail:
        what = f"{what}: {_short(item.detail)}"
    return f"• {local_time(lang, timezone, item.at)} · {what}"


def body(lang: str, facts: CardFacts) -> str:
    """The card's body in the agent's language `lang`."""
    tz = facts.timezone
    lines = [
        "📞 " + tr(lang, "Call for {subscriber}", subscriber=facts.subscriber),
        tr(lang, "Say: “{greeting}”", greeting=greeting(facts)),
    ]
    if facts.instructions.strip():
        lines.append(tr(lang, "Instructions: {text}", text=facts.instructions.strip()))
    if facts.scenario in Scenario._value2member_map_:
        label = tr(lang, SCENARIO_LABELS[Scenario(facts.scenario)])
        lines.append(tr(lang, "Now: {scenario}", scenario=label))
    if facts.diary:
        shown = [f"{_time_of_day(lang, tz, b.starts_at)} {b.name}" for b in facts.diary]
        more = len(shown) - DIARY_SHOWN
        listed = "; ".join(shown[:DIARY_SHOWN]) + (f" (+{more})" if more > 0 else "")
        lines.append(tr(lang, "Diary today: {appointments}", appointments=listed))
    else:
        lines.append(tr(lang, "Diary today: nothing booked"))
    lines.append("")
    number = facts.caller_number or tr(lang, "a withheld number")
    if facts.contact:
        lines.append(tr(lang, "Caller: {name} ({number})", name=facts.contact, number=number))
    else:
        said = f"{facts.caller_name}, {number}" if facts.caller_name else number
        lines.append(tr(lang, "Caller: new caller ({number})", number=said))
    if facts.history:
        lines.append(tr(lang, "Last interactions:"))
        lines.extend(history_line(lang, tz, item) for item in facts.history)
    elif facts.caller_number:
        lines.append(tr(lang, "No earlier interactions."))
    for task in facts.tasks:
        due = local_time(lang, tz, task.due_at)
        lines.append(tr(lang, "Open task: {text} (due {time})", text=_short(task.text), time=due))
    return "\n".join(lines)


def status_line(lang: str, shown: Shown, name: str = "", ended: bool = False) -> str:
    line = f"{_ICON[shown]} {tr(lang, _STATUS[shown], name=name)}"
    if ended and shown is Shown.ANSWERED_BY_YOU:
        line += " · " + tr(lang, "Call ended")
    return line


def text(body_text: str, status: str, transfer_note: str = "", lang: str = "en") -> str:
    parts = [body_text]
    if transfer_note.strip():
        parts.append(tr(lang, "Transfer note: {note}", note=transfer_note.strip()))
    parts.append(status)
    return "\n\n".join(parts)


_LABELS = {
    callbacks.CARD_MESSAGE: N_("Take message"),
    callbacks.CARD_REQUEST: N_("Request"),
    callbacks.CARD_APPOINTMENT: N_("Appointment"),
    callbacks.CARD_TASK: N_("Task"),
    callbacks.CARD_TRANSFER: N_("Transfer"),
}
_ROWS_LIVE = (
    (callbacks.CARD_MESSAGE, callbacks.CARD_REQUEST, callbacks.CARD_APPOINTMENT),
    (callbacks.CARD_TASK, callbacks.CARD_TRANSFER),
)
# After someone else answered or the caller hung up: a message can still be taken down
# from the call, or a task made of it; the rest is for the agent on the line.
_ROWS_AFTER = ((callbacks.CARD_MESSAGE, callbacks.CARD_TASK),)


def buttons(lang: str, card_id: int, live_for_you: bool) -> list[list[Button]]:
    """All five while the call rings or you are on it; Take message and Task after."""
    rows = _ROWS_LIVE if live_for_you else _ROWS_AFTER
    return [
        [Button(tr(lang, _LABELS[action]), callbacks.card(card_id, action)) for action in row]
        for row in rows
    ]
