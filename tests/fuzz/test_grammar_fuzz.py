"""The command grammar (gateway/control/grammar.py) and the button data
(gateway/control/callbacks.py) under Hypothesis. Beyond tests/unit/test_commands.py (any
text, one zone and clock): any text with any language code, any zone name and any clock,
including the hours around daylight-saving changes, parses to a command or to `Unknown`
with a suggestion in the subscriber's language; the keywords, numbers and times it reads
come back as written; every kind of button data reads back as packed, and anything else
reads as None (the modules' "bad data"), never an exception."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import assume, example, given
from hypothesis import strategies as st

from gateway.control import callbacks
from gateway.control import grammar as g
from gateway.control.grammar import Command, Unknown
from models.vocab import LANGUAGES, Scenario
from tests.fuzz.budget import budget

ZONES = sorted(available_timezones())
DST_ZONES = ["Europe/Athens", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham"]
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@cache
def transitions() -> list[datetime]:
    """The UTC instants at which the DST zones changed offset in 2025-2027."""
    found = []
    for name in DST_ZONES:
        zone = ZoneInfo(name)
        at = datetime(2025, 1, 1, tzinfo=UTC)
        offset = at.astimezone(zone).utcoffset()
        while at.year < 2028:
            at += timedelta(minutes=30)
            now = at.astimezone(zone).utcoffset()
            if now != offset:
                found.append(at)
                offset = now
    return found


ZONE_NAMES = st.sampled_from(ZONES) | st.sampled_from(DST_ZONES) | st.text(max_size=30)
LANGS = st.sampled_from(LANGUAGES) | st.text(max_size=5)
INSTANTS = st.one_of(
    st.datetimes(datetime(1971, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC)),
    st.builds(
        lambda t, minutes: t + timedelta(minutes=minutes),
        st.sampled_from(transitions()),
        st.integers(-150, 150),
    ),
)
ZONED_NOW = st.builds(
    lambda at, zone: at.astimezone(zone),
    INSTANTS,
    st.sampled_from([ZoneInfo(z) for z in DST_ZONES] + [UTC]),
)
TEXT = st.text(max_size=80) | st.text(st.characters(codec="utf-8"), max_size=20)


def script_of(lang: str, text: str) -> bool:
    """Whether every letter of `text` is of `lang`'s script."""
    letters = [c for c in text if c.isalpha()]
    if lang == "en":
        return all(c.isascii() for c in letters)
    names = {"el": "GREEK", "ru": "CYRILLIC", "zh": "CJK"}
    return all(unicodedata.name(c, "").startswith(names[lang]) for c in letters)


@budget(200)
@given(text=TEXT, lang=LANGS, tz=ZONE_NAMES, now=ZONED_NOW | INSTANTS)
def test_any_text_in_any_zone_at_any_time_is_a_command_or_a_localised_unknown(
    text: str, lang: str, tz: str, now: datetime
) -> None:
    got = g._parse(text, lang, tz, now)  # no safety net: a crash here is a grammar bug
    assert isinstance(got, Command)
    if isinstance(got, Unknown):
        assert got.suggestion and len(got.text) <= 200
        assert script_of(g._lang(lang), got.suggestion), (lang, got.suggestion)
        if got.pin:
            assert got.pin not in got.text


KEYWORDS = [
    (concept, word)
    for concept, by_lang in g._KEYWORDS.items()
    for ws in by_lang.values()
    for word in ws
]
SCENARIO_WORDS = [(Scenario(c), w) for c, w in KEYWORDS if c in set(Scenario)]
PINS = st.none() | st.from_regex(r"[0-9]{4,8}", fullmatch=True)


def cased(word: str, upper: bool) -> str:
    return word.upper() if upper else word


@budget(100)
@given(
    said=st.sampled_from(SCENARIO_WORDS),
    upper=st.booleans(),
    pin=PINS,
    slash=st.booleans(),
    lang=st.sampled_from(LANGUAGES),
    tz=st.sampled_from(DST_ZONES),
    now=INSTANTS,
)
def test_every_scenario_word_sets_that_scenario(
    said: tuple[Scenario, str],
    upper: bool,
    pin: str | None,
    slash: bool,
    lang: str,
    tz: str,
    now: datetime,
) -> None:
    scenario, word = said
    text = f"{pin + ' ' if pin else ''}{'/' if slash else ''}{cased(word, upper)}"
    assert g._parse(text, lang, tz, now) == g.SetScenario(scenario, None, pin=pin)


@budget(150)
@given(
    said=st.sampled_from([(c, w) for c, w in SCENARIO_WORDS if c != Scenario.FORWARD]),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    until=st.sampled_from(g._UNTIL),
    tz=st.sampled_from(DST_ZONES),
    now=INSTANTS,
)
@example(  # 01:45 said at 01:30 in the hour that repeats when the clocks go back
    said=(Scenario.CLOSED, "closed"),
    hour=3,
    minute=45,
    until="until",
    tz="Europe/Athens",
    now=datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # the second 03:30 in Athens
)
def test_until_a_time_is_the_next_such_time(
    said: tuple[Scenario, str], hour: int, minute: int, until: str, tz: str, now: datetime
) -> None:
    scenario, word = said
    got = g._parse(f"{word} {until} {hour}:{minute:02d}", "en", tz, now)
    assert isinstance(got, g.SetScenario) and got.scenario is scenario
    assert got.until is not None
    assert now < got.until <= now + timedelta(hours=25), (now, got.until)
    assert got.until.astimezone(ZoneInfo(tz)).minute in (minute, (minute + 30) % 60)


@budget(100)
@given(
    word=st.sampled_from([w for c, w in KEYWORDS if c in ("agent", "voicemail", "closed")]),
    hours=st.integers(1, 48),
    minutes=st.integers(0, 59),
    tz=st.sampled_from(DST_ZONES),
    now=INSTANTS,
)
def test_for_a_duration_is_that_many_real_minutes_ahead(
    word: str, hours: int, minutes: int, tz: str, now: datetime
) -> None:
    got = g._parse(f"{word} for {hours}h{minutes:02d}", "en", tz, now)
    assert isinstance(got, g.SetScenario) and got.until is not None
    assert got.until - now == timedelta(hours=hours, minutes=minutes)


@budget(100)
@given(
    concept=st.sampled_from(["forward", "callback"]),
    data=st.data(),
    plus=st.booleans(),
    groups=st.lists(st.text("0123456789", min_size=1, max_size=4), min_size=1, max_size=6),
    separator=st.sampled_from([" ", "-", ".", ""]),
    pin=PINS,
)
def test_a_number_is_read_back_as_its_digits(
    concept: str,
    data: st.DataObject,
    plus: bool,
    groups: list[str],
    separator: str,
    pin: str | None,
) -> None:
    word = data.draw(st.sampled_from([w for c, w in KEYWORDS if c == concept]))
    digits = "".join(groups)
    assume(3 <= len(digits) <= 15)
    text = f"{pin + ' ' if pin else ''}{word} {'+' if plus else ''}{separator.join(groups)}"
    got = g._parse(text, "en", "Europe/Athens", NOW)
    number = ("+" if plus else "") + digits
    expected = g.Forward(number, pin=pin) if concept == "forward" else g.CallBack(number, pin=pin)
    assert got == expected


@budget(100)
@given(
    word=st.sampled_from([w for c, w in KEYWORDS if c == "lang"]),
    name=st.sampled_from([(code, n) for code, names in g._LANG_NAMES.items() for n in names]),
    upper=st.booleans(),
)
def test_every_language_name_switches_to_that_language(
    word: str, name: tuple[str, str], upper: bool
) -> None:
    code, said = name
    assert g._parse(f"{word} {cased(said, upper)}", "en", "UTC", NOW) == g.Lang(code)


# --- Button data ------------------------------------------------------------------------

IDS = st.integers(1, callbacks.MAX_ID)
WORDS = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
CHOICES = st.from_regex(r"[a-z0-9_]{1,24}", fullmatch=True)
TELEGRAM_LIMIT = 64  # bytes of callback_data


@budget(100)
@given(
    item=IDS,
    other=IDS,
    now=st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
    ahead=st.integers(-366 * 86400 + 1, 2 * 366 * 86400 - 1),  # a second inside the bounds
    scenario=st.sampled_from(list(Scenario)),
    step=WORDS,
    choice=CHOICES,
    reason=st.from_regex(r"[a-z]{1,16}", fullmatch=True),
)
def test_every_button_reads_back_as_packed(
    item: int,
    other: int,
    now: datetime,
    ahead: int,
    scenario: Scenario,
    step: str,
    choice: str,
    reason: str,
) -> None:
    slot = datetime.fromtimestamp(int(now.timestamp()) + ahead, UTC)
    cases: list[tuple[str, object, object]] = [
        (callbacks.ack(item), callbacks.unpack(callbacks.ack(item), now), g.Acknowledge(item)),
        (
            callbacks.call_back(item),
            callbacks.unpack(callbacks.call_back(item), now),
            g.CallBackCall(item),
        ),
        (
            callbacks.forward_to_me(item),
            callbacks.unpack(callbacks.forward_to_me(item), now),
            g.ForwardToMe(item),
        ),
        (callbacks.book(item), callbacks.unpack(callbacks.book(item), now), g.ShowSlots(item)),
        (
            callbacks.book_slot(item, slot),
            callbacks.unpack(callbacks.book_slot(item, slot), now),
            g.BookSlot(item, slot),
        ),
        (
            callbacks.scenario(scenario),
            callbacks.unpack(callbacks.scenario(scenario), now),
            g.SetScenario(scenario, None),
        ),
    ]
    packed = callbacks.conversation(item, step, choice)
    cases.append((packed, callbacks.unpack_conversation(packed), (item, step, choice)))
    packed = callbacks.task(item, step)
    cases.append((packed, callbacks.unpack_task(packed), (item, step)))
    for action in callbacks.CARD_ACTIONS:
        packed = callbacks.card(item, action)
        cases.append((packed, callbacks.unpack_card(packed), (item, action)))
    for kind in callbacks.TRANSFER_KINDS:
        target = other if kind == "a" else 0
        packed = callbacks.transfer_to(item, kind, target)
        cases.append((packed, callbacks.unpack_transfer_to(packed), (item, kind, target)))
    packed = callbacks.pause(item, reason)
    cases.append((packed, callbacks.unpack_pause(packed), (item, reason)))
    packed = callbacks.admin(choice, item, step)
    cases.append((packed, callbacks.unpack_admin(packed), (choice, str(item), step)))
    view, period = callbacks.CONSOLE_VIEWS[item % 5], callbacks.CONSOLE_PERIODS[other % 4]
    packed = callbacks.console(view, item % 10_000, period, other % 10_000, item, other)
    cases.append(
        (
            packed,
            callbacks.unpack_console(packed),
            (view, item % 10_000, period, other % 10_000, item, other),
        )
    )
    for action in callbacks.CONSOLE_CALL_ACTIONS:
        packed = callbacks.console_call(action, item)
        cases.append((packed, callbacks.unpack_console_call(packed), (action, item)))
    for packed, got, expected in cases:
        assert got == expected, packed
        assert len(packed.encode()) <= TELEGRAM_LIMIT, packed


READERS = [
    lambda d: callbacks.unpack(d, NOW),
    callbacks.unpack_conversation,
    callbacks.unpack_task,
    callbacks.unpack_card,
    callbacks.unpack_transfer_to,
    callbacks.unpack_pause,
    callbacks.unpack_admin,
    callbacks.unpack_console,
    callbacks.unpack_console_call,
]
PREFIXES = [*callbacks.PREFIXES, "cv", "tk", "cd", "xf", "pz", "ad", "cs"]
PIECES = st.one_of(
    st.integers(-(10**25), 10**25).map(str),
    st.sampled_from(["0", "00", "²", "٣", "1e9", " 1", "", "m", "a", "msg", "l", "t", str(2**31)]),
    st.text(max_size=12),
)
DATA = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.tuples(st.sampled_from(PREFIXES), st.lists(PIECES, max_size=7)).map(
        lambda t: ":".join([t[0], *t[1]])
    ),
)


@budget(200)
@given(data=DATA)
@example(data="cs:l:0:t:0:0:0")
def test_any_button_data_reads_as_none_or_a_well_formed_value(data: str | None) -> None:
    for read in READERS:
        got = read(data)
        assert got is None or isinstance(got, (Command, tuple)), (data, got)
        if isinstance(got, tuple):
            for part in got:
                assert isinstance(part, (int, str))
                assert not isinstance(part, int) or 0 <= part <= callbacks.MAX_ID
