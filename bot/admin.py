"""The Telegram adapter of the admins' menus: /admin, the `ad:` buttons and typed answers
to an open admin form. Nothing here decides: gateway/admin/menus.py checks rights, stores
each step, changes and audits; this module shows what it answers.

The buttons are registered before bot/handlers.install (bot/runtime.py), so the refusing
fallback of the subscribers' buttons does not claim them. Typed text is offered here
first (TEXT_GROUP): an admin with a form open answers its question; any other text goes
on unchanged to the staff desk and the command desk.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.replies import TOAST, Handler, in_place, markup, telegram_language
from gateway.admin.menus import AdminDesk
from gateway.control import callbacks

log = logging.getLogger(__name__)

TEXT_GROUP = -5  # after transfers' notes (-10), before the staff desk (-1) and commands (0)


def make_menu(desk: AdminDesk) -> Handler:
    async def on_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        reply = await desk.menu(chat.id, telegram_language(update))
        await message.reply_text(reply.text or reply.toast, reply_markup=markup(reply))

    return on_admin


def make_button(desk: AdminDesk) -> Handler:
    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query, chat = update.callback_query, update.effective_chat
        if query is None or chat is None:
            return
        reply = await desk.press(chat.id, query.data or "", telegram_language(update))
        await query.answer(reply.toast[:TOAST] or None)
        if reply.text and not reply.refused:
            await in_place(query, reply)

    return on_button


def make_text(desk: AdminDesk) -> Handler:
    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text:
            return
        reply = await desk.text(chat.id, message.text, telegram_language(update))
        if reply is None:
            return  # no admin form open: the next groups have it
        await message.reply_text(reply.text or reply.toast, reply_markup=markup(reply))
        raise ApplicationHandlerStop

    return on_text


def install(application: Application[Any, Any, Any, Any, Any, Any], desk: AdminDesk) -> None:
    application.add_handler(CommandHandler("admin", make_menu(desk)))
    application.add_handler(
        CallbackQueryHandler(make_button(desk), pattern=callbacks.pattern(callbacks.ADMIN))
    )
    application.add_handler(
        MessageHandler(filters.TEXT & ~filters.COMMAND, make_text(desk)), group=TEXT_GROUP
    )
