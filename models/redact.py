"""No configured secret in the logs, whoever logs it.

Libraries log what they see: httpx and python-telegram-bot log Bot API URLs, which carry
the bot token, and an InvalidToken error quotes it. A filter on the root handlers rewrites
every record that reaches them (any logger's, propagated) before it is formatted: its
message with the arguments merged in, its traceback and its stack. It replaces each secret
in the forms it travels in: as written, URL-encoded, and base64-encoded alone or as the
HTTP Basic / SMTP AUTH PLAIN credentials of its section's username.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from models.settings import Settings

MASK = "***"
USER_KEYS = ("username", "system_id", "report_username")  # who a section's secrets belong to


def secret_forms(settings: Settings) -> set[str]:
    """Every configured secret, as written and as encoded on the wire."""
    forms: set[str] = set()
    for section, secret in settings.secrets():
        values = getattr(settings, section)
        for user in {getattr(values, name, "") for name in USER_KEYS}:
            forms |= _encodings(secret, user)
    return forms


def _encodings(secret: str, user: str) -> set[str]:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode("ascii")

    forms = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret), b64(secret)}
    forms |= {b64(f"{user}:{secret}"), b64(f"\0{user}\0{secret}")}  # Basic, AUTH PLAIN
    return forms


class RedactSecrets(logging.Filter):
    """Masks `secrets` in a record's message, arguments, traceback and stack."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret holding another is masked whole.
        ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern else text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pattern is None:
            return True
        record.msg, record.args = self.redact(_message(record)), None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text: formatted here, it is the text that gets written.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # arguments that do not fit the format: keep both, readable
        args: Any = record.args
        return f"{record.msg} {args!r}"


def install(settings: Settings, logger: logging.Logger | None = None) -> RedactSecrets:
    """Put the filter on every handler of `logger` (the root logger), replacing an earlier
    one, so that what reaches them is redacted. Call it after the handlers are set up."""
    redaction = RedactSecrets(secret_forms(settings))
    for handler in (logger or logging.getLogger()).handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
            handler.removeFilter(old)
        handler.addFilter(redaction)
    return redaction
