"""The Telegram adapter of call lists: /campaigns (the lists open to the staff member
today, one message each) and the list's buttons (cl:..., ce:...: Next, Previous, an
outcome, Call again). gateway/campaigns/desk.py checks and decides; this only shows.

Registered before bot/handlers.install (bot/runtime.py), so the refusing fallback of the
subscribers' buttons does not claim these presses.
"""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.replies import TOAST, Handler, in_place, markup, telegram_language
from gateway.campaigns import buttons
from gateway.campaigns.desk import CampaignDesk


def make_list(desk: CampaignDesk) -> Handler:
    async def on_campaigns(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        for reply in await desk.listing(chat.id, telegram_language(update)):
            await message.reply_text(reply.text or reply.toast, reply_markup=markup(reply))

    return on_campaigns


def make_button(desk: CampaignDesk) -> Handler:
    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query, chat = update.callback_query, update.effective_chat
        if query is None or chat is None:
            return
        reply = await desk.press(chat.id, query.data or "", telegram_language(update))
        await query.answer(reply.toast[:TOAST] or None)
        if reply.text and not reply.refused:  # the card pressed on becomes the next one
            await in_place(query, reply)

    return on_button


def install(application: Application[Any, Any, Any, Any, Any, Any], desk: CampaignDesk) -> None:
    application.add_handler(CommandHandler("campaigns", make_list(desk)))
    for prefix in (buttons.CAMPAIGN, buttons.ENTRY):
        application.add_handler(
            CallbackQueryHandler(make_button(desk), pattern=buttons.pattern(prefix))
        )
