"""Where the process's log goes and in what shape: text lines, or one JSON object per line
(`log.format = "json"`), both through the secret redaction of `models.redact`.

JSON lines are written by python-json-logger, so a message with quotes, newlines or a
traceback is still one valid object: `t`, `level`, `logger`, `msg`, and `exc_info` /
`stack_info` when there are some, plus any `extra=` fields. The redaction filter on the
handler masks the message and the traceback text before formatting; the JSON formatter
writes that redacted traceback text (never the exception formatted again) and masks every
other string field it is given too.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from models import redact
from models.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
JSON_FIELDS = {"asctime": "t", "levelname": "level", "name": "logger", "message": "msg"}


class JsonLines(JsonFormatter):
    """One JSON object per record; `redact` masks every string in it."""

    def __init__(self, redact: Callable[[str], str] | None = None) -> None:
        super().__init__(
            " ".join(f"%({field})s" for field in JSON_FIELDS),
            rename_fields=JSON_FIELDS,
            json_ensure_ascii=False,
        )
        self.redact: Callable[[str], str] = redact or (lambda text: text)

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and record.exc_text:
            # The redaction filter wrote (and masked) the traceback into exc_text: write
            # that text, not the exception formatted again from the live objects.
            exc_info, record.exc_info = record.exc_info, None
            try:
                return super().format(record)
            finally:
                record.exc_info = exc_info
        return super().format(record)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {key: self._masked(value) for key, value in log_data.items()}

    def _masked(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {str(k): self._masked(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._masked(v) for v in value]
        return self.redact(str(value))  # an `extra=` object: as text, masked


def handler(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """A stream handler in the configured format, redacting the configured secrets."""
    out = logging.StreamHandler(stream if stream is not None else sys.stderr)
    redaction = redact.RedactSecrets(redact.secret_forms(settings))
    if settings.log.format == "json":
        out.setFormatter(JsonLines(redaction.redact))
    else:
        out.setFormatter(logging.Formatter(TEXT_FORMAT))
    out.addFilter(redaction)
    return out


def setup(settings: Settings, stream: IO[str] | None = None) -> None:
    """The root logger writes to `stream` (stderr) at `log.level`, secrets masked."""
    level = settings.log.level.upper()
    logging.basicConfig(level=level, handlers=[handler(settings, stream)])
    if level != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per Bot API request
    logging.getLogger("tortoise").setLevel(logging.WARNING)  # one line per ORM start/stop
    # Whoever logs a secret (httpx and python-telegram-bot log URLs with the bot token),
    # every root handler writes it masked, tracebacks included (also a handler that was
    # there before, when basicConfig left the root as it found it).
    installed = redact.install(settings)
    for each in logging.getLogger().handlers:
        if isinstance(each.formatter, JsonLines):
            each.formatter.redact = installed.redact
