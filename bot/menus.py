"""Telegram command menus, one per language (setMyCommands with language_code), and the
/scenario keyboard whose buttons switch the lines directly."""

from __future__ import annotations

import logging

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
)
from telegram.error import TelegramError

from gateway.control import callbacks
from gateway.control.labels import SCENARIO_LABELS
from locales import LANGUAGES, N_, tr
from models.vocab import Language, Scenario

log = logging.getLogger(__name__)

MENU = (
    ("scenario", N_("Choose how calls are answered")),
    # What `status` answers (CommandDesk._status); today's calls are under `calls`.
    ("status", N_("Your lines: scenario and forwarding")),
    ("diary", N_("Today's appointments")),
    ("calls", N_("Today's calls, voicemails and faxes")),  # CommandDesk._calls
    ("help", N_("What you can write to me")),
)


async def publish_menus(bot: Bot) -> None:
    """One menu per language, English also as the default; failures are logged only."""
    for lang in LANGUAGES:
        commands = [BotCommand(name, tr(lang, text)) for name, text in MENU]
        try:
            await bot.set_my_commands(commands, language_code=lang)
            if lang == Language.EN:
                await bot.set_my_commands(commands)
        except TelegramError as exc:
            log.warning("could not publish the %s command menu: %s", lang, exc)


STAFF_MENU = (
    ("signin", N_("Sign in to the queue")),
    ("pause", N_("Pause, with a reason")),
    ("resume", N_("Back from a pause")),
    ("signout", N_("Sign out of the queue")),
    ("online", N_("Who is online")),
    ("tasks", N_("My open tasks")),
    ("task", N_("A new task")),
    ("category", N_("Task categories")),
    ("listen", N_("Listen to a team member's call")),
    ("whisper", N_("Whisper to a team member")),
)


async def publish_staff_menu(bot: Bot, chat_id: int, lang: str) -> None:
    """A linked staff chat gets the desk's commands as its own menu (this chat only)."""
    commands = [BotCommand(name, tr(lang, text)) for name, text in STAFF_MENU]
    try:
        await bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id))
    except TelegramError as exc:
        log.warning("could not publish the staff menu of a chat: %s", exc)


def scenario_keyboard(lang: str, current: Scenario) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(
                ("✓ " if scenario is current else "") + tr(lang, label),
                callback_data=callbacks.scenario(scenario.value),
            )
        ]
        for scenario, label in SCENARIO_LABELS.items()
    ]
    return InlineKeyboardMarkup(rows)
