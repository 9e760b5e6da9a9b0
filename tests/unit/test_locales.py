"""Every user-facing msgid in the code is translated in every catalogue, placeholders intact."""

from __future__ import annotations

import functools
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from locales import LANGUAGES, catalogue_path, tr

ROOT = Path(__file__).parents[2]
# Every package whose text users read (the sandbox's peers are not ours), and the CLI.
PRODUCT = ("bot", "gateway", "notifiers", "models", "locales", "demo")
# What Babel's Python extractor takes for a message: tr(lang, msgid, ...) and N_(msgid).
KEYWORDS = {"tr": (2,), "N_": None}
OPTIONS = {"encoding": "utf-8"}


@functools.cache
def used_msgids() -> frozenset[str]:
    """The msgids Babel's extractor finds in the product: string literals (adjacent ones
    joined) in the msgid place of tr() and N_(); computed ones are not messages."""
    found: set[str] = set()
    for package in PRODUCT:
        for _, _, message, _, _ in extract_from_dir(
            ROOT / package,
            [("**.py", "python")],
            {"**.py": OPTIONS},
            KEYWORDS,
            strip_comment_tags=True,
        ):
            found.add(message)
    for _, message, _, _ in extract_from_file(
        "python", ROOT / "main.py", KEYWORDS, options=OPTIONS
    ):
        found.add(message)
    return frozenset(found | template_msgids())


@functools.cache
def template_msgids() -> frozenset[str]:
    """The literal msgids of `_("...")` calls in the web desk's Jinja2 templates (Jinja2's
    own Babel extractor)."""
    found: set[str] = set()
    for template in sorted((ROOT / "gateway" / "web" / "templates").glob("*.html")):
        with template.open("rb") as f:
            for _, _, message, _ in babel_extract(f, ("_",), [], {}):
                # With keyword parameters it is a tuple: (msgid, None per parameter).
                msgid = message[0] if isinstance(message, tuple) else message
                if isinstance(msgid, str):
                    found.add(msgid)
    return frozenset(found)


def test_templates_use_messages() -> None:
    assert {"Log out", "Calls", "Page {number}"} <= template_msgids()


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_code_uses_some_messages() -> None:
    found = used_msgids()
    assert len(found) >= 10
    # tr() in the gateway, N_() in the bot and in the gateway's command desk
    assert {"Call back", "Choose how calls are answered", "This button is not for you."} <= found


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalogue_complete(lang: str) -> None:
    with catalogue_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang)
    translated = {m.id: m.string for m in catalog if m.id}
    for msgid in used_msgids():
        assert translated.get(msgid), f"{lang}: missing {msgid!r}"
        assert placeholders(translated[msgid]) == placeholders(msgid), f"{lang}: {msgid!r}"


def test_translation_is_used() -> None:
    assert tr("ru", "Call back") == "Перезвонить"
    assert tr("xx", "Call back") == "Call back"
