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

from gateway.admin import forms as admin_forms
from locales import tr

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["languages"] = admin_forms.LANGUAGE_NAMES  # the switcher: names as written
    return env


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
        return admin_forms.scenario_label(lang, value)

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
