"""What every Telegram handler of the desks shares: the sender's language, a desk Reply as
inline buttons, and a reply shown in place of the message pressed on."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from gateway.staff.replies import Reply
from locales import LANGUAGES

log = logging.getLogger(__name__)

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]
TOAST = 200  # Telegram's limit for a callback answer


def telegram_language(update: object) -> str | None:
    """The sender's Telegram language if it is one of ours; None when Telegram did not
    say (language_code is optional) or it is another."""
    user = getattr(update, "effective_user", None)
    code = (getattr(user, "language_code", None) or "") if user else ""
    return code[:2] if code[:2] in LANGUAGES else None


def markup(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(label, callback_data=data) for label, data in row]
            for row in reply.buttons
        ]
    )


async def in_place(query: CallbackQuery, reply: Reply) -> None:
    """The next menu, card or question replaces the one pressed on (its buttons go with it)."""
    try:
        await query.edit_message_text(reply.text, reply_markup=markup(reply))
    except TelegramError as exc:  # too old to edit, or unchanged: say it anew
        log.info("could not edit a message in place: %s", exc)
        if query.message is not None:
            await query.get_bot().send_message(
                query.message.chat.id, reply.text, reply_markup=markup(reply)
            )
