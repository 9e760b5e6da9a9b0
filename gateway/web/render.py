"""Templates: plain Jinja2 (autoescape on), every text through the catalogues.

Templates call `_("msgid", name=value)`, bound to the page's language; tests/unit/
test_locales.py reads those msgids from the templates too.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.control.labels import SCENARIO_LABELS
from locales import tr
from models.vocab import Scenario

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _when(zone: str) -> Any:
    def when(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if moment is None:
            return ""
        return moment.astimezone(ZoneInfo(zone)).strftime(fmt)

    return when


def page(
    name: str, lang: str, status: int = 200, zone: str = "UTC", **context: Any
) -> web.Response:
    """A rendered page in `lang` (times shown on the `zone` wall clock)."""

    def _(msgid: str, **params: Any) -> str:
        return tr(lang, msgid, **params)

    def scenario_label(value: str) -> str:
        try:
            return tr(lang, SCENARIO_LABELS[Scenario(value)])
        except ValueError:
            return value

    html = (
        environment()
        .get_template(name)
        .render(lang=lang, _=_, when=_when(zone), scenario_label=scenario_label, **context)
    )
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
