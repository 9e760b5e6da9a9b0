"""Telegram's webhook mode: its keys' validation, the secret's redaction, the dedupe window."""

from __future__ import annotations

import logging

import pytest

from bot.webhook import RecentIds
from models import redact
from models.settings import ConfigError, load_settings

SECRET = "Abc_def-123"
HOOK = {
    "FRONTDESK__TELEGRAM__MODE": "webhook",
    "FRONTDESK__TELEGRAM__WEBHOOK_URL": "https://bot.example.org/telegram/webhook",
    "FRONTDESK__TELEGRAM__WEBHOOK_SECRET": SECRET,
}


def test_polling_is_the_default_and_needs_no_webhook_keys() -> None:
    t = load_settings(None, environ={}).telegram
    assert (t.mode, t.webhook_url, t.webhook_path, t.webhook_secret) == (
        "polling",
        "",
        "/telegram/webhook",
        "",
    )


def test_webhook_mode_from_the_environment() -> None:
    t = load_settings(None, environ=HOOK | {"FRONTDESK__TELEGRAM__WEBHOOK_PATH": "/tg"}).telegram
    assert (t.mode, t.webhook_secret, t.webhook_path) == ("webhook", SECRET, "/tg")
    assert t.webhook_url == "https://bot.example.org/telegram/webhook"


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"FRONTDESK__TELEGRAM__MODE": "push"}, "telegram.mode"),
        ({"FRONTDESK__TELEGRAM__WEBHOOK_URL": ""}, "telegram.webhook_url"),
        ({"FRONTDESK__TELEGRAM__WEBHOOK_URL": "http://bot.example.org/x"}, "telegram.webhook_url"),
        ({"FRONTDESK__TELEGRAM__WEBHOOK_SECRET": ""}, "telegram.webhook_secret"),
        ({"FRONTDESK__TELEGRAM__WEBHOOK_SECRET": "has space"}, "telegram.webhook_secret"),
        ({"FRONTDESK__TELEGRAM__WEBHOOK_SECRET": "sécret"}, "telegram.webhook_secret"),
        ({"FRONTDESK__TELEGRAM__WEBHOOK_SECRET": "x" * 257}, "telegram.webhook_secret"),
        ({"FRONTDESK__TELEGRAM__WEBHOOK_PATH": "telegram"}, "telegram.webhook_path"),
    ],
)
def test_a_bad_webhook_setting_names_its_key(changes: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as refused:
        load_settings(None, environ=HOOK | changes)
    secret = (HOOK | changes)["FRONTDESK__TELEGRAM__WEBHOOK_SECRET"]
    assert not secret or secret not in str(refused.value)  # the error never quotes it


def test_the_longest_allowed_secret_is_accepted() -> None:
    secret = "a-Z_9" * 51 + "x"  # 256 characters
    settings = load_settings(None, environ=HOOK | {"FRONTDESK__TELEGRAM__WEBHOOK_SECRET": secret})
    assert settings.telegram.webhook_secret == secret


def test_a_bad_secret_is_refused_in_polling_mode_too() -> None:
    with pytest.raises(ConfigError, match=r"telegram\.webhook_secret"):
        load_settings(None, environ={"FRONTDESK__TELEGRAM__WEBHOOK_SECRET": "no/slash"})


def test_the_webhook_secret_is_masked_in_logs_and_settings() -> None:
    settings = load_settings(None, environ=HOOK)
    assert settings.redacted()["telegram"]["webhook_secret"] == "***"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "header %s", (SECRET,), None)
    redact.RedactSecrets(redact.secret_forms(settings)).filter(record)
    assert record.getMessage() == "header ***"


def test_recent_ids_forget_after_the_window_and_beyond_the_limit() -> None:
    recent = RecentIds(seconds=10.0, limit=3)
    assert recent.first_time(1, now=0.0) and not recent.first_time(1, now=5.0)
    assert recent.first_time(1, now=11.0)  # outside the window: taken again
    for update_id in (2, 3, 4):
        assert recent.first_time(update_id, now=12.0)
    assert recent.first_time(1, now=12.0)  # pushed out by the limit
