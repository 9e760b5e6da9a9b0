"""Every user-facing msgid in the code is translated in every catalogue, placeholders intact."""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from locales import LANGUAGES, catalogue_path, tr

ROOT = Path(__file__).parents[2]
SOURCES = [p for d in ("bot", "gateway", "notifiers", "models") for p in (ROOT / d).rglob("*.py")]


def used_msgids() -> set[str]:
    """String literals passed as the msgid of tr(lang, msgid, ...) or marked N_(msgid)."""
    found = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "tr"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
            ):
                found.add(node.args[1].value)
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "N_"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value)
    return found


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_code_uses_some_messages() -> None:
    assert len(used_msgids()) >= 10


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
