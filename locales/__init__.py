"""gettext catalogues for en, el, ru, zh, read from the .po sources at first use.

`tr(lang, msgid, **params)` is the one way user-facing text is produced; a test checks
that every msgid used in the code is translated in every catalogue with the same
placeholders.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from models.vocab import LANGUAGES

__all__ = ["LANGUAGES", "N_", "tr"]
DOMAIN = "frontdesk"
_ROOT = Path(__file__).parent


def catalogue_path(lang: str) -> Path:
    return _ROOT / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """Compiled once per process; unknown languages fall back to English source text."""
    if lang not in LANGUAGES:
        return gettext.NullTranslations()
    with catalogue_path(lang).open("rb") as po:
        catalog = read_po(po, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def tr(lang: str, msgid: str, **params: object) -> str:
    text = translations(lang).gettext(msgid)
    return text.format(**params) if params else text


def N_(msgid: str) -> str:
    """Marks a msgid kept in a table and translated where it is shown (tr(lang, value));
    the catalogue test finds these as it finds tr() literals."""
    return msgid
