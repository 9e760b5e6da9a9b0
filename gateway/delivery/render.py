"""What subscribers read: each kind's words come from its feature, the channel framing from here.

Notifications store a channel-neutral payload (a JSON dict); rendering happens when a
Delivery for a channel is created (first try, fallback or escalation), in the recipient's
language. A feature owns its kinds: a frozen payload dataclass (`to_json()` gives the
stored keys, `from_json()` reads them back, old rows included) and a renderer
`(lang, payload) -> Draft`, registered with `register(kind, payload_type, renderer)` when
the feature's render module is imported. This module never imports a feature; it frames a
Draft for the channel: the subject, "Urgent:", one screen and a length limit on SMS, HTML
for email, the buttons and "Got it" (urgent) on Telegram. `gateway/renderers.py` imports
every feature's renderer and checks that each kind has one.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, Self, TypeVar
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from gateway.control import callbacks
from locales import tr
from models.vocab import Channel, Kind
from notifiers.base import Button


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str = ""
    html: str = ""
    buttons: list[list[Button]] = field(default_factory=list)


@dataclass(frozen=True)
class Draft:
    """What one kind says, before a channel frames it. The subject is its first line."""

    subject: str
    body: str
    buttons: list[list[Button]] = field(default_factory=list)  # Telegram only
    sms_chars: int | None = None  # the SMS text is cut to this many characters


class Payload(Protocol):
    """A kind's payload: a frozen dataclass stored as JSON in Notification.payload."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self: ...

    def to_json(self) -> dict[str, Any]: ...


P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class KindRenderer(Generic[P]):
    payload_type: type[P]
    renderer: Callable[[str, P], Draft]

    def draft(self, lang: str, data: Mapping[str, Any]) -> Draft:
        return self.renderer(lang, self.payload_type.from_json(data))


class Renderers:
    """Kind -> (payload type, renderer). Filled by the features, read by Notices."""

    def __init__(self) -> None:
        self._kinds: dict[str, KindRenderer[Any]] = {}

    def register(
        self, kind: Kind, payload_type: type[P], renderer: Callable[[str, P], Draft]
    ) -> None:
        known = self._kinds.get(kind)
        if known is not None and known.payload_type.__qualname__ != payload_type.__qualname__:
            raise ValueError(f"kind {kind!r} already renders {known.payload_type.__qualname__}")
        self._kinds[kind] = KindRenderer(payload_type, renderer)

    def kinds(self) -> frozenset[str]:
        return frozenset(self._kinds)

    def lookup(self, kind: str) -> KindRenderer[Any]:
        try:
            return self._kinds[kind]
        except KeyError:
            raise LookupError(
                f"no renderer for kind {kind!r}: import gateway.renderers (it loads them all)"
            ) from None

    def render(
        self,
        kind: str,
        channel: str,
        lang: str,
        payload: Mapping[str, Any],
        *,
        urgent: bool,
        ref: int,
    ) -> Rendered:
        """The message for one channel. `ref` is the notification id (the "Got it" button)."""
        return frame(self.lookup(kind).draft(lang, payload), channel, lang, urgent=urgent, ref=ref)


RENDERERS = Renderers()
register = RENDERERS.register
render = RENDERERS.render


def frame(draft: Draft, channel: str, lang: str, *, urgent: bool, ref: int) -> Rendered:
    """A kind's draft as one channel shows it."""
    subject, body = draft.subject, draft.body
    if urgent:
        subject = tr(lang, "Urgent: {subject}", subject=subject)
        body = tr(lang, "Urgent: {subject}", subject=body)
    if channel == Channel.SMS:  # one screen: no blank lines, the subject line is implied
        text = " / ".join(line for line in body.splitlines() if line)
        return Rendered(text=_cut(text, draft.sms_chars))
    if channel == Channel.EMAIL:
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n\n"))
        return Rendered(
            text=body,
            subject=subject,
            html=f'<html><body lang="{lang}">{paragraphs.replace(chr(10), "<br>")}</body></html>',
        )
    if channel == Channel.TELEGRAM:
        buttons = list(draft.buttons)
        if urgent:
            buttons.append([Button(tr(lang, "Got it"), callbacks.ack(ref))])
        return Rendered(text=body, buttons=buttons)
    return Rendered(text=body, subject=subject)  # mms


# -- what several kinds say alike -----------------------------------------------------------


def caller_label(lang: str, number: str, cli_name: str, contact_name: str | None) -> str:
    if contact_name:
        return f"{contact_name} ({number})"
    if not number:
        return tr(lang, "a withheld number")
    return f"{cli_name} ({number})" if cli_name else number


def local_time(lang: str, timezone: str, at: datetime) -> str:
    return format_datetime(at, format="short", tzinfo=ZoneInfo(timezone), locale=lang)


def from_lines(
    subject: str,
    *lines: str,
    buttons: list[list[Button]] | None = None,
    sms_chars: int | None = None,
) -> Draft:
    """The usual draft: the subject as the first line, then the kind's lines."""
    body = "\n".join([subject, *lines])
    return Draft(subject=subject, body=body, buttons=buttons or [], sms_chars=sms_chars)


def _cut(text: str, limit: int | None) -> str:
    """Cut on a word boundary with an ellipsis (the SMS channel cuts again by parts)."""
    if not limit or len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip() + "…"
