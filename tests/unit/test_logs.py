"""The log's shapes: the redaction filter on the root handlers (whichever library logs) and
JSON lines (models/logs.py) that stay valid JSON and masked for any message or traceback."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator

import pytest

from models import logs, redact
from models.settings import Settings, load_settings, with_section

TOKEN = "918273:REDACT-me-Bot-token"
SECRETS = {
    "FRONTDESK__TELEGRAM__TOKEN": TOKEN,
    "FRONTDESK__AMI__SECRET": "ami-Secret-4711",
    "FRONTDESK__SMTP__PASSWORD": "smtp-Pass-w0rd",
    "FRONTDESK__SMPP__PASSWORD": "smpp-pw",
    "FRONTDESK__MMS__PASSWORD": "mm7/pass word+1",
    "FRONTDESK__MMS__REPORT_PASSWORD": "mm7-report-pw",
    "FRONTDESK__FAX__SECRET": 'fax-"hmac"-Secret',
}


def configured() -> Settings:
    return load_settings(None, environ=SECRETS | {"FRONTDESK__MMS__USERNAME": "vasp"})


def assert_no_secret(output: str) -> None:
    leaked = [form for form in redact.secret_forms(configured()) if form in output]
    assert leaked == [], f"secrets in the log: {leaked}"


# -- the filter alone, on the root handlers --------------------------------------------------


@pytest.fixture
def written() -> Iterator[io.StringIO]:
    """What a root handler writes, with the redaction installed as main.py installs it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in ("", "httpx")}
    for name in levels:  # logs.setup quiets httpx below DEBUG; here it speaks
        logging.getLogger(name).setLevel(logging.DEBUG)
    redact.install(configured())
    try:
        yield out
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def test_every_field_of_every_loggers_record_is_redacted(written: io.StringIO) -> None:
    mms = SECRETS["FRONTDESK__MMS__PASSWORD"]
    logging.getLogger("httpx").debug("HTTP Request: POST https://x/bot%s/getMe", TOKEN)
    logging.getLogger("telegram.ext").info(f"inline {SECRETS['FRONTDESK__AMI__SECRET']}")
    logging.getLogger("aiohttp.client").debug("quoted %s", "mm7%2Fpass%20word%2B1")
    basic = base64.b64encode(f"vasp:{mms}".encode()).decode()
    logging.getLogger("any").debug("Authorization: Basic %s", basic)
    logging.getLogger("any").warning("%d%% of %s", 50, {"token": TOKEN})
    try:
        raise RuntimeError(f"the fax secret {SECRETS['FRONTDESK__FAX__SECRET']} failed")
    except RuntimeError:
        logging.getLogger("gateway").exception("failed")
    logging.getLogger("gateway").debug(
        "here %s", SECRETS["FRONTDESK__SMTP__PASSWORD"], stack_info=True
    )
    logging.getLogger("odd").info("no placeholder", TOKEN)  # a bad format keeps its arguments
    output = written.getvalue()
    assert_no_secret(output)
    assert "https://x/bot***/getMe" in output and "50% of {'token': '***'}" in output
    assert "RuntimeError: the fax secret *** failed" in output
    assert "Stack (most recent call last)" in output and "no placeholder ('***',)" in output


def test_installing_twice_keeps_one_filter(written: io.StringIO) -> None:
    settings = load_settings(None, environ={"FRONTDESK__TELEGRAM__TOKEN": "other-Token-1"})
    redact.install(settings)
    root_handlers = logging.getLogger().handlers
    for handler in root_handlers:
        assert sum(isinstance(f, redact.RedactSecrets) for f in handler.filters) == 1
    logging.getLogger("x").info("%s and %s", "other-Token-1", TOKEN)
    assert "*** and " + TOKEN in written.getvalue()  # the new settings' secrets replace the old


def test_every_secret_key_is_masked_in_the_settings_line_too() -> None:
    settings = load_settings(None, environ=SECRETS)
    shown = str(settings.redacted())
    assert [value for value in SECRETS.values() if value in shown] == []
    assert settings.redacted()["mms"]["report_password"] == "***"


# -- JSON lines ------------------------------------------------------------------------------


def json_logger(out: io.StringIO, fmt: str = "json") -> logging.Logger:
    """A logger of its own writing through logs.handler, as the root does after setup."""
    logger = logging.getLogger(f"test_logs.{fmt}.{id(out)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(logs.handler(with_section(configured(), "log", format=fmt), out))
    return logger


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_json_line_with_quotes_and_a_traceback_parses_and_is_masked() -> None:
    out = io.StringIO()
    logger = json_logger(out)
    fax = SECRETS["FRONTDESK__FAX__SECRET"]
    try:
        raise ValueError(f'bad "signature" with {fax}\n  and a second line')
    except ValueError:
        logger.exception('hook said "no" for %s, token %s', "caller \\ 1", TOKEN)
    logger.warning("Ελληνικά \u202f and a tab\there", extra={"peer": f"127.0.0.1 {TOKEN}"})
    first, second = lines(out)
    assert first["level"] == "ERROR" and first["logger"] == logger.name and first["t"]
    assert first["msg"] == 'hook said "no" for caller \\ 1, token ***'
    trace = str(first["exc_info"])
    assert trace.startswith("Traceback (most recent call last)")
    assert 'ValueError: bad "signature" with ***\n  and a second line' in trace
    assert second["msg"] == "Ελληνικά \u202f and a tab\there" and second["peer"] == "127.0.0.1 ***"
    assert_no_secret(out.getvalue())


def test_json_lines_after_setup_keep_the_redaction_when_it_is_installed_again() -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    out = io.StringIO()
    for each in before:
        root.removeHandler(each)
    try:
        settings = with_section(configured(), "log", format="json", level="DEBUG")
        logs.setup(settings, out)
        redact.install(settings)  # as a second setup would: a new filter, the same masking
        logging.getLogger("gateway").info("bot %s", TOKEN, stack_info=True)
        [line] = lines(out)
        assert line["msg"] == "bot ***" and "Stack (most recent call last)" in str(
            line["stack_info"]
        )
    finally:
        for each in list(root.handlers):
            root.removeHandler(each)
        for each in before:
            root.addHandler(each)
        root.setLevel(level)
    assert_no_secret(out.getvalue())


def test_the_text_format_is_one_line_per_record() -> None:
    out = io.StringIO()
    logger = json_logger(out, "text")
    logger.info("plain %s", TOKEN)
    [line] = out.getvalue().splitlines()
    assert line.endswith(f" INFO    {logger.name}: plain ***")
