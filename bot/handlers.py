"""The Telegram adapter: updates in, the command desk's outcomes out.

Nothing here decides anything. Typed text goes to `CommandDesk.from_telegram`; a button's
data is unpacked by the reader registered for its prefix (gateway/control/callbacks.py,
one CallbackQueryHandler each) and run by `CommandDesk.run`, which checks, carries out and
audits it; this module answers the query and edits the message as the `Outcome` says.
Data no reader claims is refused the same way, so every query is answered and no spinner
hangs. An error escaping a handler reaches `on_error` (registered in bot/runtime.py).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import staff
from bot.menus import publish_staff_menu, scenario_keyboard
from bot.replies import Handler, telegram_language
from gateway.control import callbacks
from gateway.control.desk import CommandDesk, Outcome
from locales import N_, tr
from models.vocab import Language

log = logging.getLogger(__name__)

FAILED = N_("That did not work; try again in a minute.")


def _chat_id(update: Update) -> int | None:
    return update.effective_chat.id if update.effective_chat else None


# -- typed text --------------------------------------------------------------------------------


def make_start(desk: CommandDesk) -> Handler:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        name = update.effective_user.full_name if update.effective_user else str(chat.id)
        code = context.args[0] if context.args else None
        # A staff member's code links their chat to the desk; any other goes on as before.
        staff_linked = await staff.link(code, chat.id, telegram_language(update)) if code else None
        if staff_linked is not None:
            await message.reply_text(staff_linked)
            lang = telegram_language(update) or Language.EN
            await publish_staff_menu(context.bot, chat.id, lang)
            return
        await message.reply_text(
            await desk.link_chat(chat.id, code, name, telegram_language(update))
        )

    return start


def make_scenario_menu(desk: CommandDesk) -> Handler:
    async def scenario_menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or update.effective_chat is None:
            return
        actor = await desk.telegram_actor(_chat_id(update), telegram_language(update))
        outcome = await desk.scenario_menu(actor)
        markup = None
        if outcome.scenario is not None:
            markup = scenario_keyboard(actor.lang, outcome.scenario)
        await message.reply_text(outcome.reply, reply_markup=markup)

    return scenario_menu


def make_text_handler(desk: CommandDesk) -> Handler:
    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text:
            return
        now = datetime.now(UTC)
        reply = await desk.from_telegram(chat.id, message.text, now, telegram_language(update))
        await message.reply_text(reply)

    return on_text


# -- buttons -----------------------------------------------------------------------------------


def make_button_handler(desk: CommandDesk, unpack: callbacks.Unpacker | None) -> Handler:
    """The handler for one prefix's buttons (`unpack` its reader; None: data no reader
    claims, refused)."""

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        now = datetime.now(UTC)
        data = query.data or ""
        command = unpack(data, now) if unpack is not None else None
        actor = await desk.telegram_actor(_chat_id(update), telegram_language(update))
        outcome = await desk.run(actor, command, data, now)
        await query.answer(outcome.answer)
        if outcome.done:
            await _show(query, outcome, actor.lang)

    return on_button


async def _show(query: CallbackQuery, outcome: Outcome, lang: str) -> None:
    """What a carried-out button does to the message it is on."""
    if outcome.slots is not None:  # "Book a time": the message grows the free slots
        markup = getattr(query.message, "reply_markup", None)
        kept = list(markup.inline_keyboard) if markup else []
        rows = [[InlineKeyboardButton(s.label, callback_data=s.data)] for s in outcome.slots]
        await query.edit_message_reply_markup(InlineKeyboardMarkup([*kept[:2], *rows]))
    elif outcome.scenario is not None:  # the /scenario keyboard: tick what is in force now
        await query.edit_message_text(
            outcome.reply, reply_markup=scenario_keyboard(lang, outcome.scenario)
        )
    elif outcome.confirm:
        await _confirm_in_place(query, outcome.reply)


async def _confirm_in_place(query: CallbackQuery, line: str) -> None:
    """Confirmations edit the message the button is on, instead of piling up new ones."""
    message = query.message
    text = getattr(message, "text", None) or getattr(message, "caption", None)
    if not text or line in text:
        return
    markup = getattr(message, "reply_markup", None)
    try:
        if getattr(message, "text", None):
            await query.edit_message_text(f"{text}\n\n✓ {line}", reply_markup=markup)
        else:
            await query.edit_message_caption(f"{text}\n\n✓ {line}", reply_markup=markup)
    except TelegramError as exc:  # too old to edit, or edited meanwhile: the toast stands
        log.info("could not edit the message in place: %s", exc)


def button_routes(desk: CommandDesk) -> list[tuple[str | None, Handler]]:
    """(pattern, handler) per prefix, in registration order; the last, without a pattern,
    answers whatever data no prefix claims."""
    routes: list[tuple[str | None, Handler]] = [
        (callbacks.pattern(prefix), make_button_handler(desk, unpack))
        for prefix, unpack in callbacks.UNPACK.items()
    ]
    return [*routes, (None, make_button_handler(desk, None))]


# -- errors ------------------------------------------------------------------------------------


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Whatever a handler raised: logged (the secrets filter on the root handlers masks the
    token in any traceback; the update's text is not logged), and the person answered."""
    error = context.error
    kind = "button" if getattr(update, "callback_query", None) else "update"
    log.error("%s failed: %s", kind, type(error).__name__, exc_info=error)
    failed = tr(telegram_language(update) or Language.EN, FAILED)
    with contextlib.suppress(TelegramError):  # unless it was answered already, or cannot be
        query = getattr(update, "callback_query", None)
        message = getattr(update, "effective_message", None)
        if query is not None:
            await query.answer(failed)  # unanswered, its spinner keeps turning
        elif message is not None:
            await message.reply_text(failed)


def install(application: Application[Any, Any, Any, Any, Any, Any], desk: CommandDesk) -> None:
    application.add_handler(CommandHandler("start", make_start(desk)))
    application.add_handler(CommandHandler("scenario", make_scenario_menu(desk)))
    # The menu's other commands and any plain text go through the one grammar.
    text = make_text_handler(desk)
    application.add_handler(CommandHandler(["status", "diary", "calls", "help"], text))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, text))
    for pattern, handler in button_routes(desk):
        application.add_handler(CallbackQueryHandler(handler, pattern=pattern))
