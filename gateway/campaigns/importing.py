"""A call list's contacts from CSV text (or typed lines): one contact per line, a name and
a number, the number in E.164 as everywhere else (models/phone.py). Every bad line is
reported by its line number, nothing is guessed.

Columns: a header row naming them (name / number, phone, mobile, tel), or none: then
`name,number` (or just `number`; `number,name` is read too). `,`, `;` and tab separate.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from locales import N_, tr
from models.phone import caller_e164

NUMBER_HEADERS = frozenset({"number", "phone", "telephone", "tel", "mobile"})
NAME_HEADERS = frozenset({"name", "contact", "full name", "customer"})
MAX_NAME = 200

NO_NUMBER = N_("line {line}: no number")
BAD_NUMBER = N_("line {line}: not a phone number: {text}")
REPEATED = N_("line {line}: {number} is already on line {first}")
ON_LIST = N_("line {line}: {number} is already on this list")
NOT_UTF8 = N_("The file is not UTF-8 text.")


@dataclass(frozen=True)
class Contact:
    line: int
    name: str
    number: str  # E.164


@dataclass(frozen=True)
class LineError:
    line: int
    msgid: str
    params: dict[str, object] = field(default_factory=dict)

    def text(self, lang: str) -> str:
        return tr(lang, self.msgid, line=self.line, **self.params)


def decode(data: bytes) -> str:
    """The file's text (UTF-8, with or without a BOM); ValueError with NOT_UTF8 otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(NOT_UTF8) from exc


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        return csv.excel


def _columns(cells: list[str]) -> tuple[int | None, int] | None:
    """(name column, number column) when `cells` is a header row, else None."""
    lowered = [c.strip().lower() for c in cells]
    number = next((i for i, c in enumerate(lowered) if c in NUMBER_HEADERS), None)
    if number is None:
        return None
    name = next((i for i, c in enumerate(lowered) if c in NAME_HEADERS), None)
    return name, number


def parse(text: str, region: str) -> tuple[list[Contact], list[LineError]]:
    """The contacts of a CSV text and the errors of its bad lines (blank lines are skipped)."""
    rows = list(csv.reader(io.StringIO(text), _dialect(text)))
    contacts: list[Contact] = []
    errors: list[LineError] = []
    seen: dict[str, int] = {}
    columns: tuple[int | None, int] | None = None
    for line, cells in enumerate(rows, start=1):
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        if columns is None:  # the first row: a header, or already a contact
            columns = _columns(cells)
            if columns is not None:
                continue
            columns = (None, 0) if len(cells) == 1 else (0, 1)
        name, raw, number = _pick(cells, columns, region)
        if not raw:
            errors.append(LineError(line, NO_NUMBER))
            continue
        if number is None:
            errors.append(LineError(line, BAD_NUMBER, {"text": raw[:40]}))
            continue
        if number in seen:
            errors.append(LineError(line, REPEATED, {"number": number, "first": seen[number]}))
            continue
        seen[number] = line
        contacts.append(Contact(line, name[:MAX_NAME], number))
    return contacts, errors


def _pick(
    cells: list[str], columns: tuple[int | None, int], region: str
) -> tuple[str, str, str | None]:
    """(name, number text, the number in E.164 or None) of a row; a headerless
    `number,name` row is read the right way. Each cell is parsed once (caller_e164: any
    number we can dial, else None)."""
    name_at, number_at = columns
    name = cells[name_at] if name_at is not None and name_at < len(cells) else ""
    raw = cells[number_at] if number_at < len(cells) else ""
    number = caller_e164(raw, region)
    if number is None and name_at is not None and (swapped := caller_e164(name, region)):
        return raw, name, swapped
    return name, raw, number
