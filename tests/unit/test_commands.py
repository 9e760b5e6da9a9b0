"""The text command grammar: every form in four languages, a fixed clock, fuzzing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.control import grammar as commands
from gateway.control.grammar import (
    LANGS,
    Book,
    CallBack,
    Calls,
    Command,
    Diary,
    Forward,
    Help,
    Lang,
    SetScenario,
    Status,
    Unknown,
    examples,
    parse,
    redact,
)

TZ = "Europe/Athens"
ATHENS = ZoneInfo(TZ)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ATHENS)  # a Monday


def at(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ATHENS)


def p(text: str, lang: str = "en") -> Command:
    return parse(text, lang, TZ, NOW)


ROWS: list[tuple[str, str, Command]] = [
    # -- scenarios: English
    ("closed", "en", SetScenario("closed", None)),
    ("Close", "en", SetScenario("closed", None)),
    ("CLOSED until 18:00", "en", SetScenario("closed", at(11, 23, 18))),
    ("closed till 6pm", "en", SetScenario("closed", at(11, 23, 18))),
    ("closed until 09:00", "en", SetScenario("closed", at(11, 24, 9))),
    ("closed until tomorrow 12:15", "en", SetScenario("closed", at(11, 24, 12, 15))),
    ("voicemail for 2h", "en", SetScenario("voicemail", at(11, 23, 12))),
    ("vm for 30m", "en", SetScenario("voicemail", at(11, 23, 10, 30))),
    ("voicemail for 1h30", "en", SetScenario("voicemail", at(11, 23, 11, 30))),
    ("vm 1 hour and 15 minutes", "en", SetScenario("voicemail", at(11, 23, 11, 15))),
    ("closed for 2 days", "en", SetScenario("closed", at(11, 25, 10))),
    ("agent", "en", SetScenario("agent", None)),
    ("secretary", "en", SetScenario("agent", None)),
    ("office until 17.30", "en", SetScenario("agent", at(11, 23, 17, 30))),
    ("forward", "en", SetScenario("forward", None)),
    ("fwd for 45 min", "en", SetScenario("forward", at(11, 23, 10, 45))),
    ("scenario closed", "en", SetScenario("closed", None)),
    ("/closed", "en", SetScenario("closed", None)),
    # -- scenarios: Greek (accents optional)
    ("κλειστό", "el", SetScenario("closed", None)),
    ("ΚΛΕΙΣΤΑ", "el", SetScenario("closed", None)),
    ("κλειστό μέχρι 18:00", "el", SetScenario("closed", at(11, 23, 18))),
    ("κλειστο μεχρι 18:00", "el", SetScenario("closed", at(11, 23, 18))),
    ("κλειστό έως 7 μ.μ.", "el", SetScenario("closed", at(11, 23, 19))),
    ("τηλεφωνητής για 2 ώρες", "el", SetScenario("voicemail", at(11, 23, 12))),
    ("τηλεφωνητης για 2 ωρες", "el", SetScenario("voicemail", at(11, 23, 12))),
    ("φωνητικό για 20 λεπτά", "el", SetScenario("voicemail", at(11, 23, 10, 20))),
    ("γραμματεία", "el", SetScenario("agent", None)),
    ("Τηλεφωνήτρια", "el", SetScenario("agent", None)),
    ("σενάριο γραμματέας", "el", SetScenario("agent", None)),
    ("προώθηση", "el", SetScenario("forward", None)),
    # -- scenarios: Russian
    ("закрыто", "ru", SetScenario("closed", None)),
    ("Закрыто до 18:00", "ru", SetScenario("closed", at(11, 23, 18))),
    ("закрыто до 8 утра", "ru", SetScenario("closed", at(11, 24, 8))),
    ("автоответчик на 2 часа", "ru", SetScenario("voicemail", at(11, 23, 12))),
    ("голосовая почта на 30 минут", "ru", SetScenario("voicemail", at(11, 23, 10, 30))),
    ("секретарь", "ru", SetScenario("agent", None)),
    ("режим агент", "ru", SetScenario("agent", None)),
    ("переадресация на 1 час", "ru", SetScenario("forward", at(11, 23, 11))),
    # -- scenarios: Chinese
    ("关闭", "zh", SetScenario("closed", None)),
    ("关闭 到 18:00", "zh", SetScenario("closed", at(11, 23, 18))),
    ("下班到18:00", "zh", SetScenario("closed", at(11, 23, 18))),
    ("关闭 到 下午6点", "zh", SetScenario("closed", at(11, 23, 18))),
    ("语音信箱 2小时", "zh", SetScenario("voicemail", at(11, 23, 12))),
    ("留言 1小时30分钟", "zh", SetScenario("voicemail", at(11, 23, 11, 30))),
    ("秘书", "zh", SetScenario("agent", None)),
    ("模式 人工", "zh", SetScenario("agent", None)),
    ("转移", "zh", SetScenario("forward", None)),
    ("关闭 到 １８：００", "zh", SetScenario("closed", at(11, 23, 18))),  # full-width
    # -- forward number / off
    ("forward +30 69 1234 5678", "en", Forward("+306912345678")),
    ("fwd 210-123.4567", "en", Forward("2101234567")),
    ("forward off", "en", Forward(None)),
    ("προώθηση +30 6912345678", "el", Forward("+306912345678")),
    ("προώθηση ανενεργό", "el", Forward(None)),
    ("προωθηση οχι", "el", Forward(None)),
    ("переадресация +7 912 345-67-89", "ru", Forward("+79123456789")),
    ("переадресация выкл", "ru", Forward(None)),
    ("переадресация отключить", "ru", Forward(None)),
    ("转接 +86 138 0013 8000", "zh", Forward("+8613800138000")),
    ("转接 关", "zh", Forward(None)),
    ("转接 取消", "zh", Forward(None)),
    # -- book
    ("book 2026-11-25 14:30 Maria cleaning", "en", Book(at(11, 25, 14, 30), "Maria", "cleaning")),
    (
        "book 25/11 14:30 Maria Papadopoulou - cleaning",
        "en",
        Book(at(11, 25, 14, 30), "Maria Papadopoulou", "cleaning"),
    ),
    (
        "appt 25.11 14.30 John Smith, new patient",
        "en",
        Book(at(11, 25, 14, 30), "John Smith", "new patient"),
    ),
    ("appointment 1/12/2026 9 Bob", "en", Book(at(12, 1, 9), "Bob", "")),
    ("book tomorrow 2pm Anna: first visit", "en", Book(at(11, 24, 14), "Anna", "first visit")),
    ("book today 12:00 Anna", "en", Book(at(11, 23, 12), "Anna", "")),
    ("book friday at 11 Tom check-up", "en", Book(at(11, 27, 11), "Tom", "check-up")),
    ("book monday 9 Tom", "en", Book(at(11, 30, 9), "Tom", "")),  # today's 9:00 is gone
    ("book 20/11 9:00 Tom", "en", Book(at(11, 20, 9, year=2027), "Tom", "")),
    (
        "ραντεβού αύριο 14:30 Μαρία καθαρισμός",
        "el",
        Book(at(11, 24, 14, 30), "Μαρία", "καθαρισμός"),
    ),
    (
        "κράτηση Τετάρτη 10:00 Γιώργος Π. - έλεγχος",
        "el",
        Book(at(11, 25, 10), "Γιώργος Π.", "έλεγχος"),
    ),
    ("ραντεβου σημερα 16:00 Ελένη", "el", Book(at(11, 23, 16), "Ελένη", "")),
    ("запись завтра 14:30 Иван стрижка", "ru", Book(at(11, 24, 14, 30), "Иван", "стрижка")),
    (
        "записать в пятницу в 2 дня Иван Петров: стрижка",
        "ru",
        Book(at(11, 27, 14), "Иван Петров", "стрижка"),
    ),
    ("бронь 25.11.2026 9:15 Ольга", "ru", Book(at(11, 25, 9, 15), "Ольга", "")),
    ("预约 明天 14:30 王先生 洗牙", "zh", Book(at(11, 24, 14, 30), "王先生", "洗牙")),
    ("预约明天下午2点王先生", "zh", Book(at(11, 24, 14), "王先生", "")),
    ("预订 周三 10:00 李女士，复诊", "zh", Book(at(11, 25, 10), "李女士", "复诊")),
    ("预约 11月25日 9点半 张三", "zh", Book(at(11, 25, 9, 30), "张三", "")),
    ("预约 星期五 15:00 张三", "zh", Book(at(11, 27, 15), "张三", "")),
    # -- diary
    ("diary", "en", Diary(date(2026, 11, 23))),
    ("diary tomorrow", "en", Diary(date(2026, 11, 24))),
    ("diary 25/11", "en", Diary(date(2026, 11, 25))),
    ("diary 20/11", "en", Diary(date(2026, 11, 20))),  # the diary looks back too
    ("ημερολόγιο αύριο", "el", Diary(date(2026, 11, 24))),
    ("ατζέντα Παρασκευή", "el", Diary(date(2026, 11, 27))),
    ("расписание завтра", "ru", Diary(date(2026, 11, 24))),
    ("дневник на понедельник", "ru", Diary(date(2026, 11, 23))),
    ("日程 明天", "zh", Diary(date(2026, 11, 24))),
    ("日历 周日", "zh", Diary(date(2026, 11, 29))),
    # -- calls, callback, status, lang, help
    ("calls", "en", Calls()),
    ("incoming", "en", Calls()),
    ("κλήσεις", "el", Calls()),
    ("звонки", "ru", Calls()),
    ("来电", "zh", Calls()),
    ("callback last", "en", CallBack("last")),
    ("call back +30 210 1234567", "en", CallBack("+302101234567")),
    ("cb", "en", CallBack("last")),
    ("επανάκληση τελευταίο", "el", CallBack("last")),
    ("κάλεσε 6912345678", "el", CallBack("6912345678")),
    ("перезвонить последний", "ru", CallBack("last")),
    ("回拨 13800138000", "zh", CallBack("13800138000")),
    ("回电 最后", "zh", CallBack("last")),
    ("status", "en", Status()),
    ("st", "en", Status()),
    ("κατασταση", "el", Status()),
    ("статус", "ru", Status()),
    ("状态", "zh", Status()),
    ("lang el", "en", Lang("el")),
    ("language English", "el", Lang("en")),
    ("γλώσσα ελληνικά", "el", Lang("el")),
    ("язык русский", "ru", Lang("ru")),
    ("语言 中文", "zh", Lang("zh")),
    ("lang: zh", "en", Lang("zh")),
    ("help", "en", Help()),
    ("?", "en", Help()),
    ("βοήθεια", "el", Help()),
    ("ПОМОЩЬ", "ru", Help()),
    ("帮助", "zh", Help()),
    # -- languages mix: keywords work whatever the subscriber's language
    ("closed until 18:00", "zh", SetScenario("closed", at(11, 23, 18))),
    ("закрыто", "el", SetScenario("closed", None)),
    ("预约 tomorrow 9 Anna", "ru", Book(at(11, 24, 9), "Anna", "")),
    ("关闭到明天9点", "zh", SetScenario("closed", at(11, 24, 9))),
    ("κλειστό μέχρι αύριο 08:30", "el", SetScenario("closed", at(11, 24, 8, 30))),
    ("закрыто до завтра 9:00", "ru", SetScenario("closed", at(11, 24, 9))),
]


@pytest.mark.parametrize(("text", "lang", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_grammar_table(text: str, lang: str, expected: Command) -> None:
    assert p(text, lang) == expected


@pytest.mark.parametrize(("text", "lang", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_datetimes_are_aware_and_in_the_subscribers_zone(
    text: str, lang: str, expected: Command
) -> None:
    got = p(text, lang)
    for value in (getattr(got, "until", None), getattr(got, "start", None)):
        if value is not None:
            assert value.tzinfo is not None and value.utcoffset() == ATHENS.utcoffset(value)


UNKNOWN: list[tuple[str, str, str]] = [
    ("closd", "en", "closed"),
    ("τηλεφωνητη", "el", "τηλεφωνητής"),
    ("τηλεφωνητη", "en", "voicemail"),  # the suggestion speaks the subscriber's language
    ("закрыта", "ru", "закрыто"),
    ("语音信", "zh", "语音信箱"),
    ("stauts", "en", "status"),
    ("xyzzy", "en", "help"),
    ("qqqq", "el", "βοήθεια"),
    ("", "ru", "помощь"),
    ("🙂🙂", "zh", "帮助"),
    ("book 31/02 14:30 Maria", "en", "book 25/11 14:30 Name note"),
    ("book 25/11", "en", "book 25/11 14:30 Name note"),
    ("book tomorrow 25:00 Maria", "en", "book 25/11 14:30 Name note"),
    ("book tomorrow 14:00", "en", "book 25/11 14:30 Name note"),
    ("ραντεβού χθες 10 Μαρία", "el", "ραντεβού 25/11 14:30 Όνομα σημείωση"),
    ("closed until lunch", "en", "closed until 18:00"),
    ("voicemail for 0h", "en", "voicemail until 18:00"),
    ("voicemail for 9999 hours", "en", "voicemail until 18:00"),
    ("forward +30 69x", "en", "forward +30 691 234 5678"),
    ("forward 12", "el", "προώθηση +30 691 234 5678"),
    ("lang klingon", "en", "lang en"),
    ("diary someday", "ru", "расписание завтра"),
    ("closedown", "en", "closed"),
]


@pytest.mark.parametrize(("text", "lang", "suggestion"), UNKNOWN, ids=[u[0] for u in UNKNOWN])
def test_unknown_suggests_the_closest_form(text: str, lang: str, suggestion: str) -> None:
    got = p(text, lang)
    assert isinstance(got, Unknown)
    assert got.suggestion == suggestion
    assert got.text == text.strip()


# -- clock and time zone ------------------------------------------------------------------


def test_until_a_time_already_past_today_means_tomorrow() -> None:
    assert p("closed until 09:00") == SetScenario("closed", at(11, 24, 9))
    assert p("closed until 10:00") == SetScenario("closed", at(11, 24, 10))  # "now" is past too
    assert p("closed until 10:01") == SetScenario("closed", at(11, 23, 10, 1))


def test_until_uses_the_given_zone_not_the_clocks() -> None:
    got = parse("closed until 18:00", "en", "Asia/Shanghai", NOW)  # NOW is 16:00 in Shanghai
    assert got == SetScenario(
        "closed", datetime(2026, 11, 23, 18, tzinfo=ZoneInfo("Asia/Shanghai"))
    )


def test_for_across_dst_end_is_real_hours() -> None:
    now = datetime(2026, 10, 25, 2, 30, tzinfo=ATHENS)  # clocks go back at 04:00 EEST
    got = parse("voicemail for 2h", "en", TZ, now)
    assert isinstance(got, SetScenario) and got.until is not None
    assert got.until.astimezone(UTC) - now.astimezone(UTC) == timedelta(hours=2)
    assert got.until.astimezone(UTC) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert got.until.utcoffset() == timedelta(hours=2)  # already back on EET


def test_for_across_dst_start_is_real_hours() -> None:
    now = datetime(2026, 3, 29, 2, 30, tzinfo=ATHENS)  # clocks jump 03:00 -> 04:00
    got = parse("closed for 2h", "en", TZ, now)
    assert got == SetScenario("closed", datetime(2026, 3, 29, 5, 30, tzinfo=ATHENS))


def test_until_a_wall_time_in_the_dst_gap_is_a_real_instant() -> None:
    now = datetime(2026, 3, 29, 1, 0, tzinfo=ATHENS)
    got = parse("closed until 03:30", "en", TZ, now)
    assert isinstance(got, SetScenario) and got.until is not None
    assert got.until.astimezone(UTC).astimezone(ATHENS) == got.until
    assert got.until > now


def test_a_bad_zone_or_naive_clock_does_not_break_commands() -> None:
    assert parse("closed until 18:00", "en", "Not/AZone", NOW) == SetScenario(
        "closed", at(11, 23, 18)
    )
    naive = datetime(2026, 11, 23, 10, 0)
    assert parse("vm for 1h", "xx", TZ, naive) == SetScenario("voicemail", at(11, 23, 11))


# -- PIN ----------------------------------------------------------------------------------


def test_a_leading_pin_is_returned_on_every_command() -> None:
    assert p("1234 closed") == SetScenario("closed", None, pin="1234")
    assert p("  12345678 status") == Status(pin="12345678")
    assert p("1234\nbook tomorrow 9 Anna") == Book(at(11, 24, 9), "Anna", "", pin="1234")
    got = p("9999 closd")
    assert isinstance(got, Unknown) and got.pin == "9999" and got.suggestion == "closed"
    assert p("closed").pin is None
    assert p("123 closed") == Unknown("123 closed", "closed")  # too short for a PIN


def test_the_pin_never_reaches_a_repr_or_unknown_text() -> None:
    assert "4321" not in repr(p("4321 closed until 18:00"))
    got = p("4321 nonsense 4321")
    assert isinstance(got, Unknown) and "4321" not in got.text and "4321" not in repr(got)


def test_redact_masks_a_leading_pin() -> None:
    assert redact("1234 closed") == "**** closed"
    assert redact("closed 1234") == "closed 1234"
    assert redact("forward +30 6912345678") == "forward +30 6912345678"


@settings(max_examples=200, deadline=None)
@given(pin=st.from_regex(r"[0-9]{4,8}", fullmatch=True), rest=st.text(max_size=40))
def test_redact_never_shows_the_pin(pin: str, rest: str) -> None:
    text = f"{pin} {rest}"
    assert pin not in redact(text)
    assert parse(text, "en", TZ, NOW).pin == pin


# -- robustness ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(text=st.text(), lang=st.sampled_from(LANGS))
def test_any_text_parses_to_a_command(text: str, lang: str) -> None:
    # _parse has no safety net, so a crash here is a real grammar bug rather than hidden.
    assert isinstance(commands._parse(text, lang, TZ, NOW), Command)


KEYWORDISH = st.sampled_from(
    [w for ex in (examples(lang) for lang in LANGS) for w in " ".join(ex).split()]
    + ["до", "για", "for", "until", "+", "/", ":", " - ", ",", "2h", "9", "25/11", "1h30"]
)


@settings(max_examples=200, deadline=None)
@given(words=st.lists(KEYWORDISH | st.text(max_size=5), max_size=8), lang=st.sampled_from(LANGS))
def test_keyword_soup_parses_to_a_command(words: list[str], lang: str) -> None:
    assert isinstance(commands._parse(" ".join(words), lang, TZ, NOW), Command)


@pytest.mark.parametrize(
    "text",
    ["", " ", "\x00\x01\x1b", "\u200b\u200d", "🙂" * 50, "closed " + "x" * 10_000, "9" * 10_000],
)
def test_awkward_input_is_unknown_or_a_command(text: str) -> None:
    """(How fast: bench/grammar.py.)"""
    for lang in LANGS:
        got = commands._parse(text, lang, TZ, NOW)
        assert isinstance(got, Command)
        if isinstance(got, Unknown):
            assert len(got.text) <= 200


def test_parse_turns_an_internal_error_into_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> Command:
        raise RuntimeError("bug")

    monkeypatch.setattr(commands, "_parse", broken)
    assert parse("5678 closed", "el", TZ, NOW) == Unknown("", "βοήθεια", pin="5678")


def test_ten_kilobytes_of_mixed_text() -> None:
    # parse() never raises (its safety net answers Unknown("", help)): check what it says.
    chunk = "κλειστό μέχρι 18:00 закрыто 关闭 🙂\t"
    text = chunk * 300
    got = parse(text, "el", TZ, NOW)
    # One line of a known command with trailing words: not understood, quoted (cut to 200
    # characters) and answered with the example of that command, not the generic help.
    assert got == Unknown(text[:199] + "…", "κλειστό μέχρι 18:00")
    # The same ten kilobytes after a line break: the first line is the command.
    first_line = parse("κλειστό μέχρι 18:00\n" + text, "el", TZ, NOW)
    assert first_line == SetScenario("closed", at(11, 23, 18))


def test_only_the_first_line_counts_so_quoted_email_history_is_ignored() -> None:
    reply = "closed until 18:00\n\nOn Mon, Frontdesk wrote:\n> You have 2 new calls"
    assert p(reply) == SetScenario("closed", at(11, 23, 18))


# -- vocabulary and examples --------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_every_example_parses_to_a_real_command(lang: str) -> None:
    lines = examples(lang)
    assert len(lines) == 12
    kinds = {type(p(line, lang)) for line in lines}
    assert Unknown not in kinds
    assert kinds == {SetScenario, Forward, Book, Diary, Calls, CallBack, Status, Lang, Help}


def test_no_folded_keyword_means_two_commands() -> None:
    seen: dict[str, str] = {}
    for concept, by_lang in commands._KEYWORDS.items():
        for words in by_lang.values():
            for word in words:
                folded = commands._fold(word)
                assert seen.setdefault(folded, concept) == concept, word


def test_unknown_language_falls_back_to_english() -> None:
    assert examples("xx") == examples("en")
    got = parse("closd", "fr", TZ, NOW)
    assert isinstance(got, Unknown) and got.suggestion == "closed"
