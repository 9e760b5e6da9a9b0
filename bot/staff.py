"""The Telegram adapter of the agents' presence: /signin, /signout, /pause, /resume,
/online and the pause-reason buttons. Nothing here decides: gateway/staff/presence.py
checks rights, acts on the PBX, records and words the answer; this module shows it.

Registered before bot/handlers.install (bot/runtime.py), so the pause buttons are
claimed before the refusing fallback of the subscribers' buttons.
"""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.replies import Handler, markup, telegram_language
from gateway.control import callbacks
from gateway.staff import people
from gateway.staff.presence import PresenceDesk
from gateway.staff.rights import Act

COMMANDS = ("signin", "signout", "pause", "resume", "online")


async def link(code: str, chat_id: int, telegram_lang: str | None) -> str | None:
    """/start with a staff code: the answer (the chat is now the staff member's); None
    when the code is no staff code, for the subscribers' /start to try."""
    return await people.link_chat(code, chat_id, telegram_lang)


def make_command(desk: PresenceDesk, name: str) -> Handler:
    async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        text = " ".join(context.args or [])
        lang = telegram_language(update)
        if name == "online":
            reply = await desk.online(chat.id, lang)
        elif name == "resume":
            reply = await desk.resume(chat.id, text, lang)
        else:
            act = {"signin": Act.SIGN_IN, "signout": Act.SIGN_OUT, "pause": Act.PAUSE}[name]
            reply = await desk.command(chat.id, act, text, lang)
        await message.reply_text(reply.text or reply.toast, reply_markup=markup(reply))

    return on_command


def make_pause_button(desk: PresenceDesk) -> Handler:
    async def on_pause(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query, chat = update.callback_query, update.effective_chat
        if query is None or chat is None:
            return
        reply = await desk.pause_button(chat.id, query.data or "", telegram_language(update))
        await query.answer(reply.toast[:200])
        if not reply.refused and reply.text:
            await query.edit_message_text(reply.text)  # the reasons are gone: chosen

    return on_pause


def install(application: Application[Any, Any, Any, Any, Any, Any], desk: PresenceDesk) -> None:
    for name in COMMANDS:
        application.add_handler(CommandHandler(name, make_command(desk, name)))
    pattern = callbacks.pattern(callbacks.PAUSE)
    application.add_handler(CallbackQueryHandler(make_pause_button(desk), pattern=pattern))
