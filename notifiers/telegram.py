"""Telegram channel over the Bot API (python-telegram-bot's Bot; HTTP details stay here)."""

from __future__ import annotations

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut

from notifiers.base import OutgoingMessage, PermanentError, Receipt, TransientError


def inline_keyboard(message: OutgoingMessage) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.text, callback_data=b.data) for b in row]
            for row in message.buttons
        ]
    )


class TelegramNotifier:
    channel = "telegram"

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send(self, message: OutgoingMessage) -> Receipt:
        try:
            chat_id = int(message.address)
        except ValueError as exc:
            raise PermanentError(f"not a Telegram chat id: {message.address!r}") from exc
        try:
            sent = await self._bot.send_message(
                chat_id=chat_id, text=message.text, reply_markup=inline_keyboard(message)
            )
        except RetryAfter as exc:
            retry = exc.retry_after
            seconds = retry if isinstance(retry, int | float) else retry.total_seconds()
            raise TransientError("telegram: too many requests", retry_after=seconds) from exc
        except Forbidden as exc:  # blocked by the user, kicked, deactivated
            raise PermanentError(f"telegram: {exc.message}") from exc
        except BadRequest as exc:  # chat not found, bad markup: retrying will not help
            raise PermanentError(f"telegram: {exc.message}") from exc
        except InvalidToken as exc:
            raise TransientError("telegram: bot token refused; check telegram.token") from exc
        except (TimedOut, NetworkError) as exc:
            raise TransientError(f"telegram: {exc.message}") from exc
        return Receipt(message_id=str(sent.message_id))
