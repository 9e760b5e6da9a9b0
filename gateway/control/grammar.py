"""One channel-neutral grammar for subscribers' text commands (Telegram, SMS, e-mail replies).

Pure: no I/O, no database, no clock (the caller passes ``now``). ``parse`` never raises.

Telegram buttons decode into these same classes (gateway/control/callbacks.py): SetScenario,
and the button-only Acknowledge, CallBackCall, ForwardToMe, ShowSlots and BookSlot, which no
text produces. Both run through one ``CommandDesk.run`` (gateway/control/desk.py).

Conventions:

* Keywords of all four languages are recognised whatever the subscriber's ``lang`` (people mix
  languages); ``lang`` only picks the language of suggestions and examples.
* Matching runs on a *folded* copy of the text (casefold, compatibility decomposition, combining
  marks stripped, whitespace collapsed), so ``ΚΛΕΙΣΤΟ``, ``κλειστό`` and ``κλειστο`` are equal
  and full-width ``１８：００`` reads as ``18:00``. Names and notes are cut from the original text,
  so they keep their case and accents.
* Only the first non-blank line is parsed: e-mail replies carry quoted history below it.
* An SMS PIN (4-8 digits) may lead the text. It is returned as ``Command.pin`` on every result
  (including ``Unknown``), is excluded from ``repr``, and ``redact`` masks it for logs.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models.vocab import LANGUAGES, Scenario

__all__ = [
    "LANGS",
    "Acknowledge",
    "Book",
    "BookSlot",
    "CallBack",
    "CallBackCall",
    "Calls",
    "Command",
    "Diary",
    "Forward",
    "ForwardToMe",
    "Help",
    "Lang",
    "Scenario",
    "SetScenario",
    "ShowSlots",
    "Status",
    "Unknown",
    "examples",
    "parse",
    "redact",
]

LANGS = LANGUAGES

# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Command:
    """Base of every result. ``pin`` is keyword-only and hidden from repr so logs never show it."""

    pin: str | None = field(default=None, kw_only=True, repr=False)


@dataclass(frozen=True)
class SetScenario(Command):
    scenario: Scenario
    until: datetime | None  # aware, in the subscriber's zone; None = until changed again


@dataclass(frozen=True)
class Forward(Command):
    number: str | None  # digits with an optional leading "+"; None = forwarding off


@dataclass(frozen=True)
class Book(Command):
    start: datetime  # aware, in the subscriber's zone
    name: str
    note: str
    phone: str = ""  # the end customer's, as typed (the web desk's form): their reminder


@dataclass(frozen=True)
class Diary(Command):
    day: date


@dataclass(frozen=True)
class Calls(Command):
    pass


@dataclass(frozen=True)
class CallBack(Command):
    target: str  # digits with an optional leading "+", or "last"


@dataclass(frozen=True)
class Status(Command):
    pass


@dataclass(frozen=True)
class Lang(Command):
    code: str  # one of LANGS


@dataclass(frozen=True)
class Help(Command):
    pass


@dataclass(frozen=True)
class Unknown(Command):
    text: str  # the offending line, PIN masked, truncated: safe to log and to echo back
    suggestion: str  # a keyword or a full example, in the subscriber's language


# What buttons do that no text says: the data of a pressed button (gateway/control/callbacks.py)
# reads as one of these, or as SetScenario; the command desk runs them like any other.
# They name database rows, so the desk checks that the row is the actor's own.


@dataclass(frozen=True)
class Acknowledge(Command):
    notification_id: int  # "Got it": stop escalating this notification


@dataclass(frozen=True)
class CallBackCall(Command):
    call_id: int  # ring the subscriber's mobile, then this call's caller


@dataclass(frozen=True)
class ForwardToMe(Command):
    call_id: int  # forward the lines to the mobile now (the notification was about this call)


@dataclass(frozen=True)
class ShowSlots(Command):
    call_id: int  # offer the nearest free slots to book this call's caller into


@dataclass(frozen=True)
class BookSlot(Command):
    call_id: int  # book this call's caller...
    start: datetime  # ...at this slot (aware, UTC)


# ---------------------------------------------------------------------------------------------
# Vocabulary. The first word of each language is the canonical form shown in suggestions.

_KEYWORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "agent": {
        "en": ("agent", "secretary", "office"),
        "el": ("γραμματεία", "γραμματέας", "τηλεφωνήτρια"),
        "ru": ("секретарь", "агент"),
        "zh": ("秘书", "人工", "接线员"),
    },
    "voicemail": {
        "en": ("voicemail", "vm", "voice mail"),
        "el": ("τηλεφωνητής", "φωνητικό"),
        "ru": ("автоответчик", "голосовая почта"),
        "zh": ("语音信箱", "留言"),
    },
    "forward": {
        "en": ("forward", "fwd"),
        "el": ("προώθηση",),
        "ru": ("переадресация",),
        "zh": ("转接", "转移"),
    },
    "closed": {
        "en": ("closed", "close"),
        "el": ("κλειστό", "κλειστά"),
        "ru": ("закрыто",),
        "zh": ("关闭", "下班"),
    },
    "book": {
        "en": ("book", "appointment", "appt"),
        "el": ("ραντεβού", "κράτηση"),
        "ru": ("запись", "записать", "бронь"),
        "zh": ("预约", "预订"),
    },
    "diary": {
        "en": ("diary", "agenda", "schedule"),
        "el": ("ημερολόγιο", "ατζέντα"),
        "ru": ("расписание", "дневник"),
        "zh": ("日程", "日历"),
    },
    "calls": {
        "en": ("calls", "incoming"),
        "el": ("κλήσεις",),
        "ru": ("звонки",),
        "zh": ("来电", "通话"),
    },
    "callback": {
        "en": ("callback", "call back", "cb", "call"),
        "el": ("επανάκληση", "κάλεσε"),
        "ru": ("перезвонить", "перезвони"),
        "zh": ("回电", "回拨"),
    },
    "status": {
        "en": ("status", "st"),
        "el": ("κατάσταση",),
        "ru": ("статус",),
        "zh": ("状态",),
    },
    "lang": {
        "en": ("lang", "language"),
        "el": ("γλώσσα",),
        "ru": ("язык",),
        "zh": ("语言",),
    },
    "help": {
        "en": ("help", "?"),
        "el": ("βοήθεια",),
        "ru": ("помощь",),
        "zh": ("帮助",),
    },
}

_SCENARIOS: tuple[str, ...] = tuple(Scenario)
_SCENARIO_PREFIX = ("scenario", "mode", "σενάριο", "режим", "сценарий", "模式")
_OFF: tuple[str, ...] = (
    "off",
    "none",
    "stop",
    "cancel",
    "ανενεργό",
    "όχι",
    "ακύρωση",
    "выкл",
    "отключить",
)
_OFF += ("выключить", "нет", "关", "取消", "关闭")
_LAST: tuple[str, ...] = (
    "last",
    "τελευταίο",
    "τελευταία",
    "τελευταίος",
    "τελ",
    "последний",
    "последнему",
)
_LAST += ("посл", "最后", "最后一个", "上一个", "最近")
_UNTIL = ("until", "till", "til", "to", "μέχρι", "έως", "ως", "до", "到", "直到", "至")
_FOR = ("for", "για", "на", "持续")
_AND = ("and", "και", "и")
_ON = ("on", "την", "τη", "в", "во", "на", "在")  # before a date
_AT = ("at", "@", "στις", "στη", "в", "во")  # before a time
_LANG_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("en", "eng", "english", "αγγλικά", "английский", "英语", "英文"),
    "el": ("el", "gr", "greek", "ελληνικά", "ελ", "греческий", "希腊语", "希臘語"),
    "ru": ("ru", "rus", "russian", "русский", "рус", "ρωσικά", "俄语", "俄語"),
    "zh": ("zh", "cn", "chinese", "中文", "汉语", "普通话", "китайский", "κινέζικα"),
}
_RELATIVE_DAYS: dict[int, tuple[str, ...]] = {
    0: ("today", "tod", "σήμερα", "сегодня", "今天", "今日"),
    1: ("tomorrow", "tmrw", "tmr", "αύριο", "завтра", "明天", "明日"),
    2: ("day after tomorrow", "μεθαύριο", "послезавтра", "后天", "後天"),
}
_WEEKDAYS: tuple[tuple[str, ...], ...] = (
    ("monday", "mon", "δευτέρα", "δευ", "понедельник", "пн", "周一", "星期一", "礼拜一", "週一"),
    ("tuesday", "tue", "tues", "τρίτη", "τρι", "вторник", "вт", "周二", "星期二", "礼拜二", "週二"),
    ("wednesday", "wed", "τετάρτη", "τετ", "среда", "среду", "ср", "周三", "星期三", "週三"),
    ("thursday", "thu", "thur", "thurs", "πέμπτη", "πεμ", "четверг", "чт", "周四", "星期四"),
    ("friday", "fri", "παρασκευή", "παρ", "пятница", "пятницу", "пт", "周五", "星期五", "週五"),
    ("saturday", "sat", "σάββατο", "σαβ", "суббота", "субботу", "сб", "周六", "星期六", "週六"),
    ("sunday", "sun", "κυριακή", "κυρ", "воскресенье", "вс", "周日", "周天", "星期日", "星期天"),
)
_HOUR_UNITS: tuple[str, ...] = (
    "h",
    "hr",
    "hrs",
    "hour",
    "hours",
    "ω",
    "ώρα",
    "ώρες",
    "ωρ",
    "ч",
    "час",
    "часа",
)
_HOUR_UNITS += ("часов", "小时", "个小时", "小時", "钟头")
_MIN_UNITS: tuple[str, ...] = (
    "m",
    "min",
    "mins",
    "minute",
    "minutes",
    "λ",
    "λεπ",
    "λεπτό",
    "λεπτά",
    "м",
    "мин",
)
_MIN_UNITS += ("минута", "минуты", "минут", "минуту", "分钟", "分", "分鐘")
_DAY_UNITS: tuple[str, ...] = (
    "d",
    "day",
    "days",
    "μέρα",
    "μέρες",
    "ημέρα",
    "ημέρες",
    "д",
    "день",
    "дня",
    "дней",
)
_DAY_UNITS += ("天",)
_MAX_DURATION = timedelta(days=62)  # longer is surely a typo; also keeps datetime in range

_EXAMPLES: dict[str, dict[str, str]] = {
    "en": {
        "agent": "agent",
        "voicemail": "voicemail for 2h",
        "closed": "closed until 18:00",
        "forward": "forward +30 691 234 5678",
        "forward_off": "forward off",
        "book": "book 25/11 14:30 Name note",
        "diary": "diary tomorrow",
        "calls": "calls",
        "callback": "callback last",
        "status": "status",
        "lang": "lang en",
        "help": "help",
    },
    "el": {
        "agent": "γραμματεία",
        "voicemail": "τηλεφωνητής για 2 ώρες",
        "closed": "κλειστό μέχρι 18:00",
        "forward": "προώθηση +30 691 234 5678",
        "forward_off": "προώθηση ανενεργό",
        "book": "ραντεβού 25/11 14:30 Όνομα σημείωση",
        "diary": "ημερολόγιο αύριο",
        "calls": "κλήσεις",
        "callback": "επανάκληση τελευταίο",
        "status": "κατάσταση",
        "lang": "γλώσσα ελληνικά",
        "help": "βοήθεια",
    },
    "ru": {
        "agent": "секретарь",
        "voicemail": "автоответчик на 2 часа",
        "closed": "закрыто до 18:00",
        "forward": "переадресация +7 912 345-67-89",
        "forward_off": "переадресация выкл",
        "book": "запись 25/11 14:30 Имя заметка",
        "diary": "расписание завтра",
        "calls": "звонки",
        "callback": "перезвонить последний",
        "status": "статус",
        "lang": "язык русский",
        "help": "помощь",
    },
    "zh": {
        "agent": "秘书",
        "voicemail": "语音信箱 2小时",
        "closed": "关闭 到 18:00",
        "forward": "转接 +86 138 0013 8000",
        "forward_off": "转接 关",
        "book": "预约 25/11 14:30 姓名 备注",
        "diary": "日程 明天",
        "calls": "来电",
        "callback": "回电 最后",
        "status": "状态",
        "lang": "语言 中文",
        "help": "帮助",
    },
}
_UNTIL_WORD = {"en": "until", "el": "μέχρι", "ru": "до", "zh": "到"}


def examples(lang: str) -> list[str]:
    """A one-line example of every command in ``lang`` (English for unknown languages)."""
    return list(_EXAMPLES[_lang(lang)].values())


# ---------------------------------------------------------------------------------------------
# Folding


def _fold_char(c: str) -> str:
    cat = unicodedata.category(c)
    if c.isspace() or cat == "Cc":
        return " "
    if cat == "Cf":  # zero-width joiners, direction marks: invisible, so ignore
        return ""
    decomposed = unicodedata.normalize("NFKD", c.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _fold(word: str) -> str:
    return _Folded.of(word).text


@dataclass(frozen=True)
class _Folded:
    """Folded text plus, for each folded position, the index in the original it came from."""

    text: str
    origin: tuple[int, ...]  # len(text) + 1 entries; the last one is len(original)

    @staticmethod
    def of(original: str) -> _Folded:
        out: list[str] = []
        origin: list[int] = []
        for i, c in enumerate(original):
            for ch in _fold_char(c):
                if ch.isspace():
                    if not out or out[-1] == " ":
                        continue  # collapse runs and drop leading whitespace
                    ch = " "
                out.append(ch)
                origin.append(i)
        if out and out[-1] == " ":
            out.pop()
            origin.pop()
        origin.append(len(original))
        return _Folded("".join(out), tuple(origin))


T = TypeVar("T")


def _is_cjk(c: str) -> bool:
    return c.isalpha() and ord(c) >= 0x2E80


def _needs_boundary(word: str) -> bool:
    # CJK has no spaces between words; punctuation like "?" ends itself.
    return word[-1].isalnum() and not _is_cjk(word[-1])


class _Words(Generic[T]):
    """A folded word list matched longest first at a position, with a word boundary."""

    def __init__(self, pairs: list[tuple[str, T]]) -> None:
        folded = {(_fold(w), v) for w, v in pairs}
        self.items = sorted(folded, key=lambda item: -len(item[0]))

    def match(self, s: str, pos: int) -> tuple[T, int] | None:
        for word, value in self.items:
            end = pos + len(word)
            if not s.startswith(word, pos):
                continue
            if _needs_boundary(word) and end < len(s) and s[end].isalnum():
                continue
            return value, end
        return None


def _plain(words: tuple[str, ...]) -> _Words[None]:
    return _Words([(w, None) for w in words])


_COMMAND_WORDS = _Words(
    [(w, concept) for concept, by_lang in _KEYWORDS.items() for ws in by_lang.values() for w in ws]
)
_PREFIX_WORDS = _plain(_SCENARIO_PREFIX)
_OFF_WORDS = _plain(_OFF)
_LAST_WORDS = _plain(_LAST)
_UNTIL_WORDS = _plain(_UNTIL)
_FOR_WORDS = _plain(_FOR)
_AND_WORDS = _plain(_AND)
_ON_WORDS = _plain(_ON)
_AT_WORDS = _plain(_AT)
_LANG_WORDS = _Words([(w, code) for code, ws in _LANG_NAMES.items() for w in ws])
_DATE_WORDS: _Words[tuple[str, int]] = _Words(
    [(w, ("rel", n)) for n, ws in _RELATIVE_DAYS.items() for w in ws]
    + [(w, ("wd", n)) for n, ws in enumerate(_WEEKDAYS) for w in ws]
)


def _alternation(words: tuple[str, ...]) -> str:
    return "|".join(re.escape(w) for w in sorted({_fold(w) for w in words}, key=len, reverse=True))


_NOT_LETTER = r"(?![^\W\d_])"
_DURATION_PART = re.compile(
    rf" ?(\d{{1,4}}(?:[.,]\d{{1,2}})?) ?(?:(?P<h>{_alternation(_HOUR_UNITS)})"
    rf"|(?P<m>{_alternation(_MIN_UNITS)})|(?P<d>{_alternation(_DAY_UNITS)})){_NOT_LETTER}"
)
_TRAILING_MINUTES = re.compile(r" ?(\d{1,2})$")
_TIME = re.compile(
    r"(?:(?P<zh>上午|早上|下午|晚上|中午) ?)?(?P<h>\d{1,2})"
    r"(?:[:.](?P<m>\d{2})|(?: ?[点时時](?: ?(?P<zm>\d{1,2}) ?分?|(?P<half>半))?))?"
    rf"(?: ?(?P<ap>am|pm|a\.m\.|p\.m\.|π\.?μ\.?|μ\.?μ\.?|утра|ночи|дня|вечера){_NOT_LETTER})?"
    r"(?!\d)"
)
_DATE = re.compile(
    r"(?:(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})"
    r"|(?P<d>\d{1,2})[/.](?P<m>\d{1,2})(?:[/.](?P<y>\d{4}|\d{2}))?"
    r"|(?:(?P<zy>\d{4})年 ?)?(?P<zm>\d{1,2})月 ?(?P<zd>\d{1,2})[日号號]?)(?!\d)"
)
_NUMBER = re.compile(r"\+?[0-9][0-9 ().\-/]*")
_PIN = re.compile(r"\A\s*(\d{4,8})(?!\d)")
_NAME_SEPARATOR = re.compile(r"\s+[-–—]\s+|[:,：，、]")


# ---------------------------------------------------------------------------------------------
# PIN


def _split_pin(text: str) -> tuple[str | None, str]:
    m = _PIN.match(text)
    if m is None:
        return None, text
    return m.group(1), text[m.end() :]


def _ascii_digits(digits: str) -> str:
    # \d also matches e.g. Arabic-Indic digits; the PIN store compares ASCII.
    return "".join(str(unicodedata.decimal(c)) for c in digits)


def redact(text: str) -> str:
    """``text`` with a leading PIN masked (and any repeat of it), for logs."""
    pin, rest = _split_pin(text)
    if pin is None:
        return text
    return "****" + rest.replace(pin, "****")


# ---------------------------------------------------------------------------------------------
# Parsing


@dataclass(frozen=True)
class _Ctx:
    lang: str
    zone: tzinfo
    now: datetime  # aware, in zone

    @property
    def today(self) -> date:
        return self.now.date()


def _lang(lang: str) -> str:
    code = (lang or "")[:2].lower()
    return code if code in LANGS else "en"


def _zone(tz: str, now: datetime) -> tzinfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        # A bad zone in the subscriber's record must not make commands fail.
        return now.tzinfo if now.tzinfo is not None else UTC


def _at(day: date, hour: int, minute: int, zone: tzinfo) -> datetime:
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    # The UTC round trip moves a wall time that falls in a DST gap onto a real instant.
    return local.astimezone(UTC).astimezone(zone)


def _later(a: datetime, b: datetime) -> bool:
    """`a` after `b` as instants: datetimes of one zone compare by wall time, and a wall
    time repeats when the clocks go back."""
    return a.astimezone(UTC) > b.astimezone(UTC)


def _skip(s: str, pos: int) -> int:
    return pos + 1 if pos < len(s) and s[pos] == " " else pos


def _time(s: str, pos: int) -> tuple[int, int, int] | None:
    m = _TIME.match(s, pos)
    if m is None:
        return None
    hour = int(m["h"])
    minute = int(m["m"] or m["zm"] or 0) + (30 if m["half"] else 0)
    ap = m["ap"]
    if ap:
        if not 1 <= hour <= 12:
            return None
        pm = ap[0] in "pμдв"  # pm, μ.μ., дня, вечера
        hour = hour % 12 + (12 if pm else 0)
    elif m["zh"] in ("下午", "晚上") and hour < 12:
        hour += 12
    elif m["zh"] == "中午" and hour < 3:
        hour += 12
    if hour > 23 or minute > 59:
        return None
    return hour, minute, m.end()


def _year_for(month: int, day: int, ctx: _Ctx, future: bool) -> date | None:
    candidates = []
    for year in (ctx.today.year - 1, ctx.today.year, ctx.today.year + 1):
        try:
            candidates.append(date(year, month, day))
        except ValueError:
            continue
    if future:
        # Appointments are made ahead: a day already gone this year means next year.
        ahead = [d for d in candidates if d >= ctx.today]
        return ahead[0] if ahead else None
    # Looking at the diary: the nearest such day, past or future.
    return min(candidates, key=lambda d: abs(d - ctx.today), default=None)


def _date(s: str, pos: int, ctx: _Ctx, future: bool) -> tuple[date, int, bool] | None:
    """A date at ``pos``: (day, end, named_weekday)."""
    word = _DATE_WORDS.match(s, pos)
    if word is not None:
        (kind, n), end = word
        if kind == "rel":
            return ctx.today + timedelta(days=n), end, False
        return ctx.today + timedelta(days=(n - ctx.today.weekday()) % 7), end, True
    m = _DATE.match(s, pos)
    if m is None:
        return None
    try:
        if m["iy"]:
            return date(int(m["iy"]), int(m["im"]), int(m["id"])), m.end(), False
        if m["zy"]:
            return date(int(m["zy"]), int(m["zm"]), int(m["zd"])), m.end(), False
        if m["y"]:
            year = int(m["y"]) + (2000 if len(m["y"]) == 2 else 0)
            return date(year, int(m["m"]), int(m["d"])), m.end(), False
    except ValueError:
        return None
    month, day = (int(m["zm"]), int(m["zd"])) if m["zm"] else (int(m["m"]), int(m["d"]))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    found = _year_for(month, day, ctx, future)
    return (found, m.end(), False) if found else None


def _date_after_prep(s: str, pos: int, ctx: _Ctx, future: bool) -> tuple[date, int, bool] | None:
    prep = _ON_WORDS.match(s, pos)
    if prep is not None:
        found = _date(s, _skip(s, prep[1]), ctx, future)
        if found is not None:
            return found
    return _date(s, pos, ctx, future)


def _time_after_prep(s: str, pos: int) -> tuple[int, int, int] | None:
    prep = _AT_WORDS.match(s, pos)
    if prep is not None:
        found = _time(s, _skip(s, prep[1]))
        if found is not None:
            return found
    return _time(s, pos)


def _duration(s: str, pos: int) -> timedelta | None:
    """``2h``, ``30m``, ``1h30``, ``1 hour and 30 minutes``, ``2 ώρες``, ``2小时``: whole rest."""
    total = timedelta()
    last_unit = ""
    parts = 0
    while pos < len(s):
        if parts:
            conj = _AND_WORDS.match(s, _skip(s, pos))
            if conj is not None:
                pos = conj[1]
        m = _DURATION_PART.match(s, pos)
        if m is None:
            break
        amount = float(m.group(1).replace(",", "."))
        last_unit = "h" if m["h"] else "m" if m["m"] else "d"
        total += {"h": timedelta(hours=amount), "m": timedelta(minutes=amount)}.get(
            last_unit, timedelta(days=amount)
        )
        pos = m.end()
        parts += 1
    if parts and last_unit == "h":  # "1h30": trailing bare minutes
        tail = _TRAILING_MINUTES.match(s, pos)
        if tail is not None:
            total += timedelta(minutes=int(tail.group(1)))
            pos = tail.end()
    if not parts or pos != len(s) or not timedelta() < total <= _MAX_DURATION:
        return None
    return total


def _until(s: str, ctx: _Ctx) -> datetime | None:
    """Arguments of a scenario: ``until [date] 18:00`` or ``[for] 2h``; None if malformed."""
    word = _UNTIL_WORDS.match(s, 0)
    if word is not None:
        pos = _skip(s, word[1])
        dated = _date_after_prep(s, pos, ctx, future=True)
        if dated is not None:
            t = _time_after_prep(s, _skip(s, dated[1]))
            if t is not None and t[2] == len(s):
                at = _at(dated[0], t[0], t[1], ctx.zone)
                return at if _later(at, ctx.now) else None
        t = _time_after_prep(s, pos)
        if t is not None and t[2] == len(s):
            at = _at(ctx.today, t[0], t[1], ctx.zone)
            if not _later(at, ctx.now):  # "until 09:00" said at 10:00 means tomorrow morning
                at = _at(ctx.today + timedelta(days=1), t[0], t[1], ctx.zone)
            return at
    word = _FOR_WORDS.match(s, 0)
    delta = _duration(s, _skip(s, word[1])) if word is not None else None
    if delta is None:
        delta = _duration(s, 0)
    if delta is None:
        return None
    # Add to the UTC instant: "for 2h" across a DST change is two real hours.
    return (ctx.now.astimezone(UTC) + delta).astimezone(ctx.zone)


def _number(s: str) -> str | None:
    m = _NUMBER.fullmatch(s)
    if m is None:
        return None
    digits = re.sub(r"\D", "", s)
    if not 3 <= len(digits) <= 15:  # E.164 allows at most 15 digits
        return None
    return ("+" if s.startswith("+") else "") + digits


def _whole(words: _Words[None], s: str) -> bool:
    found = words.match(s, 0)
    return found is not None and found[1] == len(s)


def _book(folded: _Folded, original: str, pos: int, ctx: _Ctx) -> Book | None:
    s = folded.text
    dated = _date_after_prep(s, pos, ctx, future=True)
    if dated is None:
        return None
    t = _time_after_prep(s, _skip(s, dated[1]))
    if t is None:
        return None
    start = _at(dated[0], t[0], t[1], ctx.zone)
    # An explicit past date stays as written (recording a visit after the fact is legitimate).
    # "monday 9:00" said on Monday at 10:00: next week.
    if dated[2] and not _later(start, ctx.now):
        start = _at(dated[0] + timedelta(days=7), t[0], t[1], ctx.zone)
    rest = original[folded.origin[t[2]] :].strip()
    sep = _NAME_SEPARATOR.search(rest)
    if sep is not None:
        name, note = rest[: sep.start()], rest[sep.end() :]
    else:
        name, _, note = rest.partition(" ")
        if not note:  # any other whitespace (tabs, ideographic space) also splits
            parts = rest.split(None, 1)
            name, note = (parts[0], parts[1]) if len(parts) == 2 else (rest, "")
    name, note = name.strip(), note.strip()
    if not name:
        return None
    return Book(start, name, note)


def _command(concept: str, folded: _Folded, original: str, pos: int, ctx: _Ctx) -> Command | None:
    """The command for ``concept`` with arguments from ``pos``; None if they are malformed."""
    s = folded.text
    args = s[pos:]
    if concept in _SCENARIOS:
        if concept == Scenario.FORWARD and args:
            if _whole(_OFF_WORDS, args):
                return Forward(None)
            number = _number(args)
            if number is not None:
                return Forward(number)
        if not args:
            return SetScenario(Scenario(concept), None)
        until = _until(args, ctx)
        return SetScenario(Scenario(concept), until) if until else None
    if concept == "book":
        return _book(folded, original, pos, ctx)
    if concept == "diary":
        if not args:
            return Diary(ctx.today)
        dated = _date_after_prep(args, 0, ctx, future=False)
        return Diary(dated[0]) if dated and dated[1] == len(args) else None
    if concept == "callback":
        if not args or _whole(_LAST_WORDS, args):
            return CallBack("last")  # a bare "callback" means the caller we just told you about
        number = _number(args)
        return CallBack(number) if number else None
    if concept == "lang":
        code = _LANG_WORDS.match(args, 0)
        return Lang(code[0]) if code and code[1] == len(args) else None
    # Argument-less commands ignore trailing words: "status please" is still a status request.
    return {"calls": Calls, "status": Status, "help": Help}[concept]()


def _example_for(concept: str, lang: str) -> str:
    if concept in ("agent", "voicemail"):  # "closed" and "forward" have their own examples
        word = _KEYWORDS[concept][lang][0]
        return f"{word} {_UNTIL_WORD[lang]} 18:00"
    return _EXAMPLES[lang][concept]


_SUGGESTABLE = [
    (_fold(w), concept, lang, w)
    for concept, by_lang in _KEYWORDS.items()
    for lang, ws in by_lang.items()
    for w in ws
    if w[-1].isalnum()
]


def _suggest(s: str, lang: str) -> str:
    tokens = s[:64].split(" ")
    candidates = {" ".join(tokens[:1]), " ".join(tokens[:2])}
    best: tuple[float, bool, str] = (0.0, False, _KEYWORDS["help"][lang][0])
    for word, concept, word_lang, display in _SUGGESTABLE:
        options = candidates | ({s[: len(word)]} if _is_cjk(word[0]) else set())
        score = max(difflib.SequenceMatcher(None, word, c).ratio() for c in options)
        if score < 0.6:
            continue
        shown = display if word_lang == lang else _KEYWORDS[concept][lang][0]
        key = (score, word_lang == lang, shown)
        if key[:2] > best[:2]:
            best = key
    return best[2]


def _unknown_text(line: str, pin: str | None) -> str:
    text = line.strip()
    if pin:
        text = text.replace(pin, "****")
    return text if len(text) <= 200 else text[:199] + "…"


def _parse(text: str, lang: str, tz: str, now: datetime) -> Command:
    lang = _lang(lang)
    zone = _zone(tz, now)
    local_now = (now if now.tzinfo is not None else now.replace(tzinfo=zone)).astimezone(zone)
    ctx = _Ctx(lang, zone, local_now)
    pin, rest = _split_pin(text)
    line = next((ln for ln in rest.splitlines() if ln.strip()), "")
    folded = _Folded.of(line)
    s = folded.text
    pos = 0
    while pos < len(s) and s[pos] == "/":  # Telegram-style "/status"
        pos += 1
    prefix = _PREFIX_WORDS.match(s, pos)
    if prefix is not None:
        pos = _skip(s, prefix[1])
    found = _COMMAND_WORDS.match(s, pos)
    result: Command | None = None
    if found is not None:
        concept, end = found
        if prefix is None or concept in _SCENARIOS:
            args_at = _skip(s, end)
            if s.startswith(":", args_at):  # "lang: el"
                args_at = _skip(s, args_at + 1)
            result = _command(concept, folded, line, args_at, ctx)
        if result is None:
            result = Unknown(_unknown_text(line, pin), _example_for(concept, lang))
    elif prefix is not None:
        result = Unknown(_unknown_text(line, pin), _EXAMPLES[lang]["closed"])
    else:
        result = Unknown(_unknown_text(line, pin), _suggest(s[pos:], lang))
    return dataclasses.replace(result, pin=_ascii_digits(pin) if pin else None)


def parse(text: str, lang: str, tz: str, now: datetime) -> Command:
    """Parse one subscriber command. Never raises: anything unparseable is ``Unknown``.

    ``lang`` picks the language of suggestions, ``tz`` (IANA) the zone of dates and times,
    ``now`` (aware) the clock. Every result carries the leading SMS PIN as ``.pin``.
    """
    try:
        return _parse(text, lang, tz, now)
    except Exception:  # a safety net only: the fuzz tests call _parse to keep it unused
        pin, _ = _split_pin(text if isinstance(text, str) else "")
        return Unknown("", _EXAMPLES[_lang(lang if isinstance(lang, str) else "")]["help"], pin=pin)
