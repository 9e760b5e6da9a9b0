"""/desk in a subscriber's chat: a fresh magic link to their web desk (gateway/web)."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from bot.replies import Handler, telegram_language
from gateway.control.desk import LINK_FIRST
from gateway.web.links import DeskLinks
from locales import N_, tr
from models.vocab import Language

LINK = N_("Your desk: {url}\nThe link works once, for {minutes} minutes.")


def make_desk(links: DeskLinks) -> Handler:
    async def desk(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        found = await links.for_chat(chat.id)
        if found is None:
            await message.reply_text(tr(telegram_language(update) or Language.EN, LINK_FIRST))
            return
        url, lang = found
        await message.reply_text(tr(lang, LINK, url=url, minutes=links.minutes))

    return desk


def install(application: Application[Any, Any, Any, Any, Any, Any], links: DeskLinks) -> None:
    application.add_handler(CommandHandler("desk", make_desk(links)))
