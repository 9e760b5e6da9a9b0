"""The Telegram adapter of the statistics and usage: /stats [period], /usage [YYYY-MM]
[subscriber id] and /report [YYYY-MM] <subscriber id>, for directors and admins.
gateway/admin/report_desk.py checks rights and computes; this module shows the text or
sends the CSV or PDF as a document (straight back to the chat that asked)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram import InputFile, Update
from telegram.ext import Application, CommandHandler, ContextTypes

from bot.replies import Handler, telegram_language
from gateway.admin.report_desk import Document, ReportDesk
from gateway.staff.replies import Reply

Answer = Callable[[ReportDesk, int, str, str | None], Coroutine[Any, Any, Any]]
COMMANDS = ("stats", "usage", "report")


def make_command(desk: ReportDesk, name: str) -> Handler:
    async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        args, lang = " ".join(context.args or []), telegram_language(update)
        document: Document | None = None
        if name == "stats":
            reply: Reply = await desk.stats(chat.id, args, lang)
        elif name == "usage":
            reply, document = await desk.usage(chat.id, args, lang)
        else:
            reply, document = await desk.report(chat.id, args, lang)
        if document is not None:
            await message.reply_document(
                InputFile(document.data, filename=document.filename),
                caption=document.caption,
            )
        elif reply.text or reply.toast:
            await message.reply_text(reply.text or reply.toast)

    return on_command


def install(application: Application[Any, Any, Any, Any, Any, Any], desk: ReportDesk) -> None:
    for name in COMMANDS:
        application.add_handler(CommandHandler(name, make_command(desk, name)))
