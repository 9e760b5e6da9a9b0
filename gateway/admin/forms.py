"""The admins' guided forms: what each asks, in which order, and how a typed or pressed
answer is checked. A form is a `models.staff.Conversation` of kind "admin": its answers
(`form`, the subscriber or DDI it is about, and each step's value) are stored before the
next question is asked, so a restart halfway goes on at the same step.

Every check answers in the admin's language (a bad time zone, a DDI already used, a
number that is no phone number...); nothing here writes anything but the form itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.control.labels import SCENARIO_LABELS
from gateway.delivery.notices import hop_channels
from gateway.delivery.quiet_hours import BadQuietHours, parse_hhmm
from locales import LANGUAGES, N_, tr
from models.db import Ddi, Subscriber, Urgency
from models.phone import InvalidNumber, to_e164
from models.staff import Agent, Team
from models.vocab import CHANNELS, KINDS, Kind, Scenario

KIND = "admin"  # Conversation.kind of every admin form
SKIP, CLEAR, CANCEL, DEFAULT = "skip", "clear", "cancel", "default"

# Language names as their speakers write them (not translated).
LANGUAGE_NAMES = {"en": "English", "el": "Ελληνικά", "ru": "Русский", "zh": "中文"}
ROLE_LABELS = {
    "agent": N_("Agent"),
    "supervisor": N_("Supervisor"),
    "director": N_("Director"),
}
KIND_LABELS: dict[str, str] = {
    Kind.MISSED_CALL: N_("Missed calls"),
    Kind.MESSAGE: N_("Messages"),
    Kind.VOICEMAIL: N_("Voicemails"),
    Kind.FAX: N_("Faxes"),
    Kind.APPOINTMENT: N_("Appointments"),
}

EMPTY = N_("Please type something.")
BAD_NUMBER = N_("That is not a phone number: {number}")
BAD_TIMEZONE = N_("Unknown time zone: {value}. Write it like Europe/Athens.")
BAD_LANGUAGE = N_("The language must be one of {languages}.")
BAD_DDI = N_("A DDI is written in digits only: {value}")
DDI_USED = N_("DDI {number} already belongs to a subscriber.")
MOBILE_USED = N_("The mobile {number} is already another subscriber's.")
BAD_EMAIL = N_("That is not an email address: {value}")
BAD_QUIET = N_("Quiet hours are written like 22:00-07:00.")
BAD_CHANNELS = N_(
    "Write the channels in order, separated by commas, from {channels}; "
    "join channels told at once with + (telegram+email)."
)
BAD_INTERFACE = N_("A queue member interface is written like PJSIP/207: {value}")
INTERFACE_USED = N_("The interface {value} is another staff member's already.")
TEAM_EXISTS = N_("The team {value} exists already.")
NEEDS_TEAM = N_("An agent belongs to a team: choose one.")
BAD_CHOICE = N_("Please answer with the buttons.")


@dataclass(frozen=True)
class Step:
    name: str  # also the key of its answer
    question: str  # msgid
    typed: bool = True  # a typed answer is taken (else buttons only)
    optional: str = ""  # SKIP or CLEAR: a button that leaves it empty


NAME = Step("name", N_("Name?"))
DDI = Step("ddi", N_("DDI number (the line calls arrive on)?"))
LANGUAGE = Step("language", N_("Language?"), typed=False)
TIMEZONE = Step("timezone", N_("Time zone (e.g. Europe/Athens)?"))
MAILBOX = Step("mailbox", N_("Voicemail box of this DDI (e.g. 100@default)?"), optional=SKIP)

FIELDS: dict[str, Step] = {
    "name": NAME,
    "language": LANGUAGE,
    "timezone": TIMEZONE,
    "mobile": Step("mobile", N_("Their own mobile number?"), optional=CLEAR),
    "email": Step("email", N_("Email address?"), optional=CLEAR),
    "forward": Step(
        "forward", N_("Forward calls to which number (none: the mobile)?"), optional=CLEAR
    ),
    "quiet": Step("quiet", N_("Quiet hours (e.g. 22:00-07:00)?"), optional=CLEAR),
    "scenario": Step("scenario", N_("How are calls answered?"), typed=False),
    "instructions": Step("instructions", N_("Instructions for the agents?"), optional=CLEAR),
    "greeting": Step("greeting", N_("Greeting when answering?"), optional=CLEAR),
}

FORMS: dict[str, tuple[Step, ...]] = {
    "new_sub": (NAME, DDI, LANGUAGE, TIMEZONE),
    "ddi": (DDI, MAILBOX),
    "mailbox": (Step("mailbox", MAILBOX.question, optional=CLEAR),),
    "route": (
        Step("kind", N_("Which kind of notice?"), typed=False),
        Step("urgency", N_("Normal or urgent ones?"), typed=False),
        Step("channels", N_("Channels in order (e.g. telegram,sms or telegram+email,sms)?")),
    ),
    "staff": (
        NAME,
        Step("role", N_("Role?"), typed=False),
        Step("team", N_("Team?"), typed=False),
        Step("interface", N_("Queue member interface (e.g. PJSIP/207)?"), optional=SKIP),
        LANGUAGE,
    ),
    "team": (Step("name", N_("Name of the team?")),),
    "admin": (NAME, LANGUAGE),
}
TITLES = {
    "new_sub": N_("New subscriber"),
    "edit": N_("Edit {subscriber}"),
    "ddi": N_("New DDI for {subscriber}"),
    "mailbox": N_("Voicemail box of {ddi}"),
    "route": N_("Route for {subscriber}"),
    "staff": N_("New staff member"),
    "team": N_("New team"),
    "admin": N_("New admin"),
}


def steps(a: dict[str, Any]) -> tuple[Step, ...]:
    """The steps of the form these answers belong to (an edit asks for one field)."""
    if a.get("form") == "edit":
        return (FIELDS[a["field"]],)
    return FORMS[a["form"]]


def step_named(a: dict[str, Any], name: str) -> Step | None:
    return next((s for s in steps(a) if s.name == name), None)


def next_step(a: dict[str, Any], after: str | None) -> str | None:
    """The step after `after` (the first when None); None when the form is complete."""
    names = [s.name for s in steps(a)]
    index = 0 if after is None else names.index(after) + 1
    return names[index] if index < len(names) else None


async def choices(
    step: Step, a: dict[str, Any], lang: str, default_tz: str
) -> list[tuple[str, str]]:
    """The buttons of a step: (label, choice)."""
    match step.name:
        case "language":
            return [(LANGUAGE_NAMES.get(code, code), code) for code in LANGUAGES]
        case "scenario":
            return [(tr(lang, label), str(s)) for s, label in SCENARIO_LABELS.items()]
        case "timezone":
            return [(default_tz, DEFAULT)]
        case "role":
            return [(tr(lang, label), role) for role, label in ROLE_LABELS.items()]
        case "team":
            teams = [(t.name, f"t{t.id}") for t in await Team.all().order_by("name")]
            return [*teams, (tr(lang, "No team"), "none")]
        case "kind":
            return [(tr(lang, KIND_LABELS[Kind(k)]), k) for k in KINDS]
        case "urgency":
            return [(tr(lang, "Normal"), Urgency.NORMAL), (tr(lang, "Urgent"), Urgency.URGENT)]
    return []


class Problem(ValueError):
    """An answer that will not do: the localised reason, said to the admin."""


async def store(
    a: dict[str, Any],
    step: Step,
    lang: str,
    *,
    text: str | None = None,
    choice: str | None = None,
    region: str = "GR",
    default_tz: str = "UTC",
) -> None:
    """Check one answer and keep it in `a` (raises Problem, `a` unchanged)."""
    if choice in (SKIP, CLEAR) and step.optional:
        a[step.name] = ""
        return
    if choice is not None:
        a[step.name] = await _choice(a, step, lang, choice, default_tz)
        return
    if not step.typed:
        raise Problem(tr(lang, BAD_CHOICE))
    value = (text or "").strip()
    if not value:
        raise Problem(tr(lang, EMPTY))
    a[step.name] = await _typed(a, step.name, lang, value, region)


async def _choice(a: dict[str, Any], step: Step, lang: str, choice: str, default_tz: str) -> str:
    offered = {c for _, c in await choices(step, a, lang, default_tz)}
    if choice not in offered:
        raise Problem(tr(lang, BAD_CHOICE))
    if step.name == "timezone" and choice == DEFAULT:
        return default_tz
    if step.name == "team" and choice == "none" and a.get("role") == "agent":
        raise Problem(tr(lang, NEEDS_TEAM))
    return choice


async def _typed(a: dict[str, Any], name: str, lang: str, value: str, region: str) -> str:
    match name:
        case "timezone":
            return check_timezone(value, lang)
        case "language":
            return check_language(value, lang)
        case "ddi":
            return await check_ddi(value, lang)
        case "mobile":
            number = check_number(value, lang, region)
            owner = await Subscriber.filter(mobile=number).exclude(id=a.get("subscriber_id", 0))
            if owner:
                raise Problem(tr(lang, MOBILE_USED, number=number))
            return number
        case "forward":
            return check_number(value, lang, region)
        case "email":
            if "@" not in value or value.startswith("@") or value.endswith("@") or " " in value:
                raise Problem(tr(lang, BAD_EMAIL, value=value))
            return value
        case "quiet":
            start, _, end = value.partition("-")
            try:
                parse_hhmm(start.strip())
                parse_hhmm(end.strip())
            except BadQuietHours as exc:
                raise Problem(tr(lang, BAD_QUIET)) from exc
            return f"{start.strip()}-{end.strip()}"
        case "channels":
            return check_channels(value, lang)
        case "interface":
            if "/" not in value or " " in value:
                raise Problem(tr(lang, BAD_INTERFACE, value=value))
            if await Agent.exists(interface=value):
                raise Problem(tr(lang, INTERFACE_USED, value=value))
            return value
        case "name" if a.get("form") == "team":
            if await Team.exists(name=value):
                raise Problem(tr(lang, TEAM_EXISTS, value=value))
            return value[:100]
        case "instructions":
            return value[:2000]
    return value[:200]


def check_timezone(value: str, lang: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Problem(tr(lang, BAD_TIMEZONE, value=value)) from exc
    return value


def check_language(value: str, lang: str) -> str:
    if value not in LANGUAGES:
        raise Problem(tr(lang, BAD_LANGUAGE, languages=", ".join(LANGUAGES)))
    return value


def check_number(value: str, lang: str, region: str) -> str:
    try:
        return to_e164(value, region)
    except InvalidNumber as exc:
        raise Problem(tr(lang, BAD_NUMBER, number=value)) from exc


async def check_ddi(value: str, lang: str) -> str:
    number = value.replace(" ", "")
    if not number.lstrip("+").isdigit() or not number.lstrip("+").isascii():
        raise Problem(tr(lang, BAD_DDI, value=value))
    if await Ddi.exists(number=number):
        raise Problem(tr(lang, DDI_USED, number=number))
    return number


def check_channels(value: str, lang: str) -> str:
    hops = [h.strip().replace(" ", "") for h in value.split(",") if h.strip()]
    named = [c for hop in hops for c in hop_channels(hop)]
    if not named or any(c not in CHANNELS for c in named) or len(set(named)) != len(named):
        raise Problem(tr(lang, BAD_CHANNELS, channels=", ".join(CHANNELS)))
    return ",".join(hops)


def scenario_label(lang: str, value: str) -> str:
    label = SCENARIO_LABELS.get(Scenario(value)) if value in Scenario._value2member_map_ else None
    return tr(lang, label) if label else value
