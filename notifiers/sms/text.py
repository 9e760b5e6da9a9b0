"""Text to SMS parts and back: GSM 03.38 or UCS-2, concatenation headers, clean cutting.

Pure functions (no I/O) so that every rule here is unit-tested on its own. Sizes follow
3GPP TS 23.038/23.040 as SMPP 3.4 carries them:
- GSM 7-bit default alphabet (data_coding 0x00), one septet per octet, unpacked; the
  extension table (€, [, ], {, }, ...) costs two septets (escape 0x1B + code) and an escape
  pair is never split across parts. 160 septets in one SMS, 153 per concatenated part.
- Typographic characters with a plain GSM spelling (no-break and other spaces, curly
  quotes, dashes, the ellipsis: `GSM_EQUIVALENTS`) count and encode as that spelling, so
  they never force UCS-2 on a text that is otherwise GSM.
- Anything else: UCS-2 (data_coding 0x08), sent as UTF-16-BE; 70 code units in one SMS,
  67 per part; an emoji (a surrogate pair) is never split across parts.
- Concatenated parts carry a user data header (esm_class 0x40) with IE 0x00: an 8-bit
  reference, the number of parts and this part's number.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

GSM = 0x00  # data_coding: SMSC default alphabet, GSM 03.38 here
UCS2 = 0x08  # data_coding: UCS-2, UTF-16-BE on the wire
UDHI = 0x40  # esm_class bit: short_message starts with a user data header

SINGLE_UNITS = {GSM: 160, UCS2: 70}  # septets or UTF-16 code units in an unsplit SMS
PART_UNITS = {GSM: 153, UCS2: 67}  # ... in each part of a concatenated SMS (6-octet UDH)
MAX_PARTS = 255  # the UDH counts parts in one octet
AIR_OCTETS = 140  # TP-User-Data limit, what one SMS carries over the radio

IE_CONCAT_8 = 0x00
IE_CONCAT_16 = 0x08

ESCAPE = 0x1B
# GSM 03.38 default alphabet: the character at each septet value 0x00-0x7F (0x1B: escape).
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table, reached through the escape septet.
GSM_EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_GSM_CODE = {ch: code for code, ch in enumerate(GSM_BASIC) if code != ESCAPE}
# No-break, fixed-width and ideographic spaces; the tab is not in the alphabet either.
_SPACES = "\t\u00a0\u1680\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))
# Characters outside the alphabet sent as their GSM spelling. Babel puts U+202F before
# "PM" in every English time: without these, such an SMS went as UCS-2, 2-3x the parts.
GSM_EQUIVALENTS: dict[str, str] = {
    **dict.fromkeys(_SPACES, " "),
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2039\u203a`\u00b4", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
    "\u2026": "...",
    "\u2028": "\n",
    "\u2029": "\n",
}
_TO_GSM = str.maketrans(GSM_EQUIVALENTS)
# Septets each character the GSM coding can carry takes.
_SEPTETS = {
    **{ch: len(spelling) for ch, spelling in GSM_EQUIVALENTS.items()},
    **dict.fromkeys(GSM_EXTENSION, 2),
    **dict.fromkeys(_GSM_CODE, 1),
}
_GSM_EXTENSION_CHAR = {code: ch for ch, code in GSM_EXTENSION.items()}
# The same facts as sets and tables, for C-speed scans of a whole text (several per SMS).
_GSM_CHARS = frozenset(_SEPTETS)
_ONE_SEPTET = frozenset(ch for ch, n in _SEPTETS.items() if n == 1)
_TO_SEPTETS = str.maketrans(
    {ch: chr(code) for ch, code in _GSM_CODE.items()}
    | {ch: chr(ESCAPE) + chr(code) for ch, code in GSM_EXTENSION.items()}
    | {ch: "".join(chr(_GSM_CODE[c]) for c in sp) for ch, sp in GSM_EQUIVALENTS.items()}
)

ELLIPSIS_GSM = "..."
ELLIPSIS_UCS2 = "…"
# How far back from the hard limit `cut` looks for a space to cut at.
WORD_WINDOW = 40
# Characters that belong to the one before: cutting before them would mangle it.
_JOINERS = frozenset("\u200d\ufe0e\ufe0f") | frozenset(map(chr, range(0x1F3FB, 0x1F400)))
_TRAILING_JUNK = " \t\r\n,;:-–—"
_SPACE = re.compile(r"\s")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


# -- alphabet ------------------------------------------------------------------------------


def gsm_septets(ch: str) -> int:
    """Septets the character takes in the GSM alphabet: 1, 2 (extension table), those of
    its GSM spelling (GSM_EQUIVALENTS), or 0 (absent)."""
    return _SEPTETS.get(ch, 0)


def is_gsm(text: str) -> bool:
    """Whether the text can go as GSM, typographic characters spelt the GSM way."""
    return _GSM_CHARS.issuperset(text)


def data_coding_for(text: str) -> int:
    return GSM if is_gsm(text) else UCS2


def as_sent(text: str) -> str:
    """The text as the handset shows it: a GSM text with its GSM spellings."""
    return text.translate(_TO_GSM) if is_gsm(text) else text


def units(text: str, data_coding: int) -> int:
    """Length in septets (GSM) or UTF-16 code units (UCS-2)."""
    if data_coding == GSM:
        if _ONE_SEPTET.issuperset(text):
            return len(text)
        return sum(gsm_septets(ch) for ch in text)
    if text.isascii() or max(text) <= "\uffff":  # no surrogate pair: one unit each
        return len(text)
    return len(text) + sum(ord(ch) > 0xFFFF for ch in text)


def _unit_cost(ch: str, data_coding: int) -> int:
    if data_coding == GSM:
        return gsm_septets(ch)
    return 2 if ord(ch) > 0xFFFF else 1


def encode_gsm(text: str) -> bytes:
    """Septet values, one per octet (GSM_EQUIVALENTS as their GSM spelling); ValueError
    for a character outside the alphabet."""
    if not is_gsm(text):
        bad = next(ch for ch in text if ch not in _GSM_CHARS)
        raise ValueError(f"not in the GSM 03.38 alphabet: {bad!r}")
    return text.translate(_TO_SEPTETS).encode("latin-1")


def decode_gsm(septets: bytes) -> str:
    """Septets (one per octet) to text. An unknown extension code (or ESC ESC, the door to
    a national table) reads as a space, as 23.038 asks; octets above 0x7F as U+FFFD."""
    out: list[str] = []
    escaped = False
    for value in septets:
        if escaped:
            out.append(_GSM_EXTENSION_CHAR.get(value, " "))
            escaped = False
        elif value == ESCAPE:
            escaped = True
        else:
            out.append(GSM_BASIC[value] if value < 0x80 else "\ufffd")
    return "".join(out)


def encode(text: str, data_coding: int) -> bytes:
    return encode_gsm(text) if data_coding == GSM else text.encode("utf-16-be")


# Real SMSCs deliver MO text in more codings than we send; SMPP 3.4 5.2.19.
_CODECS = {0x01: "ascii", 0x03: "latin-1", 0x06: "iso8859-5", 0x07: "iso8859-8", UCS2: "utf-16-be"}


def decode(data_coding: int, payload: bytes) -> str:
    """A payload (without UDH) to text; never raises."""
    if data_coding == GSM or (0xF0 <= data_coding <= 0xFF and not data_coding & 0x04):
        # Some SMSCs are configured to mean Latin-1 by 0x00; GSM is the SMPP default.
        return decode_gsm(payload)
    name = _CODECS.get(data_coding, "latin-1")
    return codecs.decode(payload, name, errors="replace")


# -- parts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Concat:
    """Where a part sits in a concatenated message."""

    reference: int
    total: int
    number: int  # 1-based

    def header(self) -> bytes:
        """The user data header: IE 0x00 (8-bit reference) when it fits, else IE 0x08."""
        if self.reference < 0x100:
            ie = bytes((IE_CONCAT_8, 3, self.reference, self.total, self.number))
        else:
            ref = self.reference.to_bytes(2, "big")
            ie = bytes((IE_CONCAT_16, 4, *ref, self.total, self.number))
        return bytes((len(ie),)) + ie


@dataclass(frozen=True)
class SmsPart:
    data_coding: int
    payload: bytes  # septets (GSM, one per octet) or UTF-16-BE (UCS-2), no header
    concat: Concat | None = None

    @property
    def udh(self) -> bytes:
        return self.concat.header() if self.concat else b""

    @property
    def esm_class(self) -> int:
        return UDHI if self.concat else 0x00

    @property
    def short_message(self) -> bytes:
        return self.udh + self.payload

    @property
    def air_octets(self) -> int:
        """TP-User-Data length over the radio: GSM septets are packed there, after the
        header and the fill bits that align them to a septet boundary."""
        if self.data_coding != GSM:
            return len(self.short_message)
        header_septets = (len(self.udh) * 8 + 6) // 7
        return (7 * (header_septets + len(self.payload)) + 7) // 8


def chunks(text: str) -> tuple[int, list[str]]:
    """The data coding and the text of each part (one part when it fits in one SMS)."""
    coding = data_coding_for(text)
    if units(text, coding) <= SINGLE_UNITS[coding]:
        return coding, [text]
    limit = PART_UNITS[coding]
    pieces: list[str] = []
    start, used = 0, 0
    for i, ch in enumerate(text):
        cost = _unit_cost(ch, coding)
        if used + cost > limit:  # a character (escape pair, surrogate pair) stays whole
            pieces.append(text[start:i])
            start, used = i, 0
        used += cost
    pieces.append(text[start:])
    return coding, pieces


def count_parts(text: str) -> int:
    coding = data_coding_for(text)
    total = units(text, coding)
    if total <= SINGLE_UNITS[coding]:
        return 1
    if total == len(text):  # every character one unit, no pair to keep whole: divide
        return -(-total // PART_UNITS[coding])
    return len(chunks(text)[1])


def split(text: str, reference: int | None = None) -> list[SmsPart]:
    """The parts to submit. A text needing more than one part needs a `reference` (from a
    ReferencePool); ValueError without one, or beyond 255 parts. A lone surrogate (text
    decoded with surrogateescape somewhere) cannot be sent: it becomes U+FFFD."""
    text = _LONE_SURROGATE.sub("\ufffd", text)
    coding, pieces = chunks(text)
    if len(pieces) == 1:
        return [SmsPart(coding, encode(text, coding))]
    if reference is None:
        raise ValueError(f"{len(pieces)} parts need a concatenation reference")
    if len(pieces) > MAX_PARTS:
        raise ValueError(f"{len(pieces)} parts: at most {MAX_PARTS}")
    total = len(pieces)
    return [
        SmsPart(coding, encode(piece, coding), Concat(reference, total, number))
        for number, piece in enumerate(pieces, start=1)
    ]


def join(data_coding: int, payloads: Sequence[bytes]) -> str:
    """The text of a message from its parts' payloads, in order. The bytes are joined before
    decoding: other senders do split escape and surrogate pairs across parts."""
    return decode(data_coding, b"".join(payloads))


def parse_user_data(short_message: bytes, esm_class: int) -> tuple[Concat | None, bytes]:
    """The concatenation header (if any) and the payload after the UDH. A malformed header
    is dropped as a whole rather than guessed at."""
    if not esm_class & UDHI or not short_message:
        return None, short_message
    length = short_message[0]
    header, payload = short_message[1 : 1 + length], short_message[1 + length :]
    if len(header) < length:  # the header claims more than the message holds
        return None, payload
    concat: Concat | None = None
    pos = 0
    while pos + 2 <= len(header):
        ie, size = header[pos], header[pos + 1]
        data = header[pos + 2 : pos + 2 + size]
        if len(data) < size:
            break
        if ie == IE_CONCAT_8 and size == 3 and data[1] and 1 <= data[2] <= data[1]:
            concat = Concat(data[0], data[1], data[2])
        elif ie == IE_CONCAT_16 and size == 4 and data[2] and 1 <= data[3] <= data[2]:
            concat = Concat(int.from_bytes(data[:2], "big"), data[2], data[3])
        pos += 2 + size
    return concat, payload


# -- cutting -------------------------------------------------------------------------------


def _ellipsis(text: str) -> str:
    # "…" is not in the GSM alphabet: it would turn a GSM text into UCS-2 and halve it.
    return ELLIPSIS_GSM if is_gsm(text) else ELLIPSIS_UCS2


def _with_ellipsis(prefix: str) -> str:
    kept = prefix.rstrip(_TRAILING_JUNK)
    return kept + _ellipsis(kept)


def _clean_boundary(text: str, n: int) -> int:
    """Move a cut at n back so that no joiner, modifier or combining mark is orphaned."""
    while 0 < n < len(text) and (
        text[n] in _JOINERS or text[n - 1] == "\u200d" or unicodedata.combining(text[n])
    ):
        n -= 1
    return n


def cut(text: str, max_parts: int) -> str:
    """The text (composed, NFC) when it fits in max_parts SMS; else its longest head that
    fits with an ellipsis, cut after a whole word when one ends near the limit."""
    # Composed: "e" + U+0301 is two characters, the second not GSM; "é" is GSM.
    text = unicodedata.normalize("NFC", text)
    max_parts = max(1, min(max_parts, MAX_PARTS))
    if count_parts(text) <= max_parts:
        return text
    # Longest head that fits: more text never takes fewer parts, so bisect on its length.
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if count_parts(_with_ellipsis(text[:mid])) <= max_parts:
            low = mid
        else:
            high = mid - 1
    n = _clean_boundary(text, low)
    if n < len(text) and not text[n].isspace():  # mid-word: back off to a near space
        window = max(0, n - WORD_WINDOW)
        spaces = [m.start() for m in _SPACE.finditer(text, window, n)]
        if spaces and spaces[-1] > 0:
            n = spaces[-1]
    return _with_ellipsis(text[:n])


# -- references and reassembly -------------------------------------------------------------


class ReferencePool:
    """Concatenation references: one is never handed out twice while a message carrying it
    is being submitted, and free ones go least recently used first, so a handset that still
    holds parts of an earlier message does not mix them with a new one."""

    def __init__(self, size: int = 256, start: int = 0) -> None:
        start %= size
        self._free = deque([*range(start, size), *range(start)])
        self._busy: set[int] = set()

    @property
    def in_use(self) -> int:
        return len(self._busy)

    def acquire(self) -> int:
        """A free reference; LookupError when every one is in use."""
        if not self._free:
            raise LookupError("every concatenation reference is in use")
        reference = self._free.popleft()
        self._busy.add(reference)
        return reference

    def release(self, reference: int) -> None:
        if reference in self._busy:
            self._busy.remove(reference)
            self._free.append(reference)


@dataclass
class _Pending:
    data_coding: int
    first_seen: float
    payloads: dict[int, bytes] = field(default_factory=dict)


class Reassembler:
    """Collects the parts of concatenated messages (any order, duplicates ignored) and gives
    back the text once the last one arrives. Incomplete messages older than max_age are
    dropped, so lost parts do not pile up."""

    def __init__(self, max_age: float = 600.0) -> None:
        self.max_age = max_age
        self._pending: dict[Hashable, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self, key: Hashable, concat: Concat, data_coding: int, payload: bytes, now: float
    ) -> str | None:
        self._expire(now)
        group = (key, concat.reference, concat.total)
        pending = self._pending.setdefault(group, _Pending(data_coding, now))
        pending.payloads.setdefault(concat.number, payload)
        if len(pending.payloads) < concat.total:
            return None
        del self._pending[group]
        ordered = [pending.payloads[n] for n in range(1, concat.total + 1)]
        return join(pending.data_coding, ordered)

    def _expire(self, now: float) -> None:
        stale = [g for g, p in self._pending.items() if now - p.first_seen > self.max_age]
        for group in stale:
            del self._pending[group]
