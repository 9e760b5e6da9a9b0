"""What every desk page handler gets: the request, the session's subscriber and language,
the clock; and the one way a page refuses (`PageError`, rendered localised)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.control.desk import CommandDesk
from gateway.web import render
from locales import N_
from models.db import Subscriber
from models.web import WebSession

PAGE_SIZE = 50
MAX_PAGE = 100_000  # 5 million rows deep: beyond that a page number is a mistake or a probe


class PageError(Exception):
    """A refusal shown as a localised page: 400 bad input, 404 not this subscriber's."""

    def __init__(self, status: int, msgid: str) -> None:
        super().__init__(msgid)
        self.status = status
        self.msgid = msgid


NOT_FOUND = N_("Not found.")
BAD_INPUT = N_("That request was not understood.")
BAD_CHOICE = N_("Choose one of the offered values.")


@dataclass
class Ctx:
    request: web.Request
    session: WebSession
    subscriber: Subscriber
    lang: str
    now: datetime
    desk: CommandDesk

    def page(self, name: str, status: int = 200, **context: Any) -> web.Response:
        return render.page(
            name,
            self.lang,
            status,
            self.subscriber.timezone,
            csrf=self.session.csrf,
            subscriber=self.subscriber,
            path=self.request.path,
            **context,
        )

    def query(self, name: str, limit: int = 100) -> str:
        """A search field, trimmed and bounded."""
        return self.request.query.get(name, "").strip()[:limit]

    def page_number(self) -> int:
        number = _digits(self.request.query.get("page", "1"), 6)
        if number is None or not 1 <= number <= MAX_PAGE:
            raise PageError(400, BAD_INPUT)
        return number


def ident(raw: str) -> int:
    """An id from a URL or form: digits only, else it names nothing of anyone's (404)."""
    number = _digits(raw, 12)
    if number is None:
        raise PageError(404, NOT_FOUND)
    return number


def _digits(raw: str, most: int) -> int | None:
    """At most `most` ASCII digits as a number, else None (str.isdigit alone takes "²",
    which int() refuses)."""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= most else None
