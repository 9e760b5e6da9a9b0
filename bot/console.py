"""The Telegram adapter of the console of calls: /console and its `cs:` buttons. Nothing
here decides: gateway/admin/console.py checks rights, reads the calls and words the
answers (a call back goes through the gateway's Control); this module shows them.

Registered before bot/handlers.install (bot/runtime.py), so its buttons are claimed
before the refusing fallback of the subscribers' buttons.
"""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.replies import Handler, markup, telegram_language
from gateway.admin.console import Console
from gateway.control import callbacks


def make_command(console: Console) -> Handler:
    async def on_console(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        reply = await console.open(chat.id, telegram_language(update))
        await message.reply_text(reply.text or reply.toast, reply_markup=markup(reply))

    return on_console


def make_button(console: Console) -> Handler:
    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query, chat = update.callback_query, update.effective_chat
        if query is None or chat is None:
            return
        reply = await console.press(chat.id, query.data or "", telegram_language(update))
        await query.answer(reply.toast[:200])
        if reply.refused or not reply.text:
            return
        try:
            await query.edit_message_text(reply.text, reply_markup=markup(reply))
        except TelegramError:  # too old to edit, or unchanged: show it anew
            await context.bot.send_message(chat.id, reply.text, reply_markup=markup(reply))

    return on_button


def install(application: Application[Any, Any, Any, Any, Any, Any], console: Console) -> None:
    application.add_handler(CommandHandler("console", make_command(console)))
    pattern = callbacks.pattern(callbacks.CONSOLE)
    application.add_handler(CallbackQueryHandler(make_button(console), pattern=pattern))
