"""The Telegram adapter of the admins' international calls report: `/international
[YYYY-MM]`. gateway/admin/international.py checks who asks and words the answer."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from bot.replies import telegram_language
from gateway.admin import international

TELEGRAM_LIMIT = 4096  # characters in one message


def install(application: Application[Any, Any, Any, Any, Any, Any], timezone: str) -> None:
    async def on_international(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        month = " ".join(context.args or [])
        text = await international.report(chat.id, month, telegram_language(update), timezone)
        for start in range(0, len(text), TELEGRAM_LIMIT):  # a long month in several parts
            await message.reply_text(text[start : start + TELEGRAM_LIMIT])

    application.add_handler(CommandHandler(international.COMMAND, on_international))
