"""The Telegram adapter of the desk's guided exchanges and tasks: a card's Message /
Request / Appointment / Task buttons, the exchange's buttons and typed answers, /task and
/tasks with their buttons. Nothing here decides: gateway/staff/conversation.py and
tasks.py check rights, store each step and word the answer; this module shows it.

Buttons are registered before bot/handlers.install (bot/runtime.py) so the refusing
fallback of the subscribers' buttons does not claim them. Typed text is offered to the
desk first (group -1): a staff member with an exchange open answers its question; any
other text (every subscriber's) goes on to the command desk unchanged.
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
from gateway.control import callbacks
from gateway.staff import categories
from gateway.staff.conversation import CARD_ACTIONS, Conversations
from gateway.staff.tasks import Tasks

log = logging.getLogger(__name__)

TEXT_GROUP = -1  # before the command desk's text handler (group 0)


def card_pattern() -> str:
    """The card buttons that open an exchange here (others, e.g. transfer, are not ours)."""
    actions = "|".join(sorted(CARD_ACTIONS))
    return rf"^{callbacks.CARD}:[0-9]+:({actions})$"


def make_card_button(conversations: Conversations) -> Handler:
    async def on_card(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query, chat = update.callback_query, update.effective_chat
        if query is None or chat is None:
            return
        reply = await conversations.from_card(chat.id, query.data or "", telegram_language(update))
        await query.answer(reply.toast[:TOAST] or None)
        if reply.text and not reply.refused:  # the card stays; the exchange starts below it
            await context.bot.send_message(chat.id, reply.text, reply_markup=markup(reply))

    return on_card


def make_step_button(conversations: Conversations) -> Handler:
    async def on_step(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query, chat = update.callback_query, update.effective_chat
        if query is None or chat is None:
            return
        reply = await conversations.press(chat.id, query.data or "", telegram_language(update))
        await query.answer(reply.toast[:TOAST] or None)
        if reply.text and not reply.refused:
            await in_place(query, reply)

    return on_step


def make_task_button(tasks: Tasks) -> Handler:
    async def on_task(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query, chat = update.callback_query, update.effective_chat
        if query is None or chat is None:
            return
        reply = await tasks.act(chat.id, query.data or "", telegram_language(update))
        await query.answer(reply.toast[:TOAST] or None)
        if reply.text and not reply.refused:
            await in_place(query, reply)

    return on_task


def make_text(conversations: Conversations) -> Handler:
    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text:
            return
        reply = await conversations.text(chat.id, message.text, telegram_language(update))
        if reply is None:
            return  # not an answer to an exchange: the command desk has it
        await message.reply_text(reply.text or reply.toast, reply_markup=markup(reply))
        raise ApplicationHandlerStop

    return on_text


def make_new_task(conversations: Conversations) -> Handler:
    async def on_new_task(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        reply = await conversations.new_task(chat.id, telegram_language(update))
        await message.reply_text(reply.text or reply.toast, reply_markup=markup(reply))

    return on_new_task


async def on_category(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/category [add|remove NAME]: the task categories (supervisors keep them)."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    reply = await categories.keep(chat.id, " ".join(context.args or []), telegram_language(update))
    await message.reply_text(reply.text or reply.toast)


def make_list(tasks: Tasks) -> Handler:
    async def on_tasks(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        for reply in await tasks.listing(chat.id, telegram_language(update)):
            await message.reply_text(reply.text or reply.toast, reply_markup=markup(reply))

    return on_tasks


def install(
    application: Application[Any, Any, Any, Any, Any, Any],
    conversations: Conversations,
    tasks: Tasks,
) -> None:
    application.add_handler(CommandHandler("task", make_new_task(conversations)))
    application.add_handler(CommandHandler("tasks", make_list(tasks)))
    application.add_handler(CommandHandler("category", on_category))
    application.add_handler(
        CallbackQueryHandler(make_card_button(conversations), pattern=card_pattern())
    )
    application.add_handler(
        CallbackQueryHandler(
            make_step_button(conversations), pattern=callbacks.pattern(callbacks.CONVERSATION)
        )
    )
    application.add_handler(
        CallbackQueryHandler(make_task_button(tasks), pattern=callbacks.pattern(callbacks.TASK))
    )
    application.add_handler(
        MessageHandler(filters.TEXT & ~filters.COMMAND, make_text(conversations)),
        group=TEXT_GROUP,
    )
