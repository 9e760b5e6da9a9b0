"""The Telegram adapter of putting calls through and of listening in: the card's Transfer
button (`cd:<card>:xfer`), the target buttons (`xf:`), the extension and note typed next,
and /listen, /whisper <agent>. Nothing here decides: gateway/staff/transfer.py and
monitor.py check rights, act on the PBX and word the answers; this module shows them.

Registered in a group of its own ahead of every other handler (bot/runtime.py): what it
claims (the Transfer press, its target buttons, the text of an open transfer, the two
commands) stops there, and anything else goes on to the rest of the desk unchanged.
"""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.replies import Handler, markup, telegram_language
from gateway.control import callbacks
from gateway.staff.monitor import Monitor
from gateway.staff.transfer import Transfers

GROUP = -10  # before the subscribers' handlers (group 0) and the rest of the staff desk
CARD_TRANSFER = rf"^{callbacks.CARD}:[0-9]+:{callbacks.CARD_TRANSFER}$"
COMMANDS = ("listen", "whisper")


def make_menu(transfers: Transfers) -> Handler:
    """The card's Transfer button: the targets, in a message of their own."""

    async def on_transfer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query, chat = update.callback_query, update.effective_chat
        if query is None or chat is None:
            return
        reply = await transfers.menu(chat.id, query.data or "", telegram_language(update))
        await query.answer(reply.toast[:200])
        if not reply.refused and reply.buttons:
            await context.bot.send_message(chat.id, reply.text, reply_markup=markup(reply))
        raise ApplicationHandlerStop

    return on_transfer


def make_choose(transfers: Transfers) -> Handler:
    """A target picked: the list becomes the question (extension or note)."""

    async def on_choose(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query, chat = update.callback_query, update.effective_chat
        if query is None or chat is None:
            return
        reply = await transfers.choose(chat.id, query.data or "", telegram_language(update))
        await query.answer(reply.toast[:200])
        if not reply.refused and reply.text:
            try:
                await query.edit_message_text(reply.text)
            except TelegramError:  # too old to edit: ask anew
                await context.bot.send_message(chat.id, reply.text)
        raise ApplicationHandlerStop

    return on_choose


def make_text(transfers: Transfers) -> Handler:
    """Text of a staff chat with a transfer open; anything else is left to the others."""

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text:
            return
        outcome = await transfers.text(chat.id, message.text, telegram_language(update))
        if outcome is None:
            return  # not ours: the next group's handlers see it
        reply = outcome.reply
        await message.reply_text(reply.text or reply.toast, reply_markup=markup(reply))
        for told in outcome.tell:
            try:
                await context.bot.send_message(told.chat_id, told.text)
            except TelegramError:  # their card shows the note anyway
                pass
        raise ApplicationHandlerStop

    return on_text


def make_spy(monitor: Monitor, whisper: bool) -> Handler:
    async def on_spy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        who = " ".join(context.args or [])
        reply = await monitor.spy(chat.id, who, whisper, telegram_language(update))
        await message.reply_text(reply.text or reply.toast)
        raise ApplicationHandlerStop

    return on_spy


def install(
    application: Application[Any, Any, Any, Any, Any, Any],
    transfers: Transfers,
    monitor: Monitor,
) -> None:
    add = application.add_handler
    add(CallbackQueryHandler(make_menu(transfers), pattern=CARD_TRANSFER), group=GROUP)
    pattern = callbacks.pattern(callbacks.TRANSFER_TO)
    add(CallbackQueryHandler(make_choose(transfers), pattern=pattern), group=GROUP)
    add(MessageHandler(filters.TEXT & ~filters.COMMAND, make_text(transfers)), group=GROUP)
    add(CommandHandler("listen", make_spy(monitor, whisper=False)), group=GROUP)
    add(CommandHandler("whisper", make_spy(monitor, whisper=True)), group=GROUP)
