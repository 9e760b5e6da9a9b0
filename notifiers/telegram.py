"""Telegram channel over the Bot API (python-telegram-bot's Bot; HTTP details stay here)."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from models.vocab import Channel
from notifiers.base import Button, OutgoingMessage, PermanentError, Receipt, TransientError

CAPTION_LIMIT = 1024


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
    channel = Channel.TELEGRAM

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send(self, message: OutgoingMessage) -> Receipt:
        try:
            chat_id = int(message.address)
        except ValueError as exc:
            raise PermanentError(f"not a Telegram chat id: {message.address!r}") from exc
        try:
            sent = await self._send(chat_id, message)
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

    async def _send(self, chat_id: int, message: OutgoingMessage) -> Message:
        """A voice note or a document carries the text as its caption; else plain text."""
        markup = inline_keyboard(message)
        media = message.attachments[0] if message.attachments else None
        if media is None:
            return await self._bot.send_message(
                chat_id=chat_id, text=message.text, reply_markup=markup
            )
        caption = _caption(message.text)
        if media.content_type == "audio/ogg":
            return await self._bot.send_voice(
                chat_id=chat_id,
                voice=InputFile(media.data, filename=media.filename),
                caption=caption,
                reply_markup=markup,
            )
        return await self._bot.send_document(
            chat_id=chat_id,
            document=InputFile(media.data, filename=media.filename),
            caption=caption,
            reply_markup=markup,
        )


def _caption(text: str) -> str:
    # Telegram refuses captions over 1024 characters; the full text is in the email.
    return text if len(text) <= CAPTION_LIMIT else text[: CAPTION_LIMIT - 1] + "…"


def keyboard(rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.text, callback_data=b.data) for b in row] for row in rows]
    )


def _channel_error(exc: TelegramError) -> TransientError | PermanentError:
    """A Bot API failure in our terms (as TelegramNotifier.send maps them)."""
    if isinstance(exc, RetryAfter):
        retry = exc.retry_after
        seconds = retry if isinstance(retry, int | float) else retry.total_seconds()
        return TransientError("telegram: too many requests", retry_after=seconds)
    if isinstance(exc, Forbidden | BadRequest):
        return PermanentError(f"telegram: {exc.message}")
    return TransientError(f"telegram: {exc.message}")


class TelegramCards:
    """The staff desk's screen-pop cards, straight to the Bot API (not through the outbox:
    a card must arrive within a second, and is edited in place as its call goes on).
    Raises TransientError or PermanentError as the notifier does."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send(self, chat_id: int, text: str, buttons: Sequence[Sequence[Button]]) -> int:
        try:
            sent = await self._bot.send_message(
                chat_id=chat_id, text=text, reply_markup=keyboard(buttons)
            )
        except TelegramError as exc:
            raise _channel_error(exc) from exc
        return int(sent.message_id)

    async def edit(
        self, chat_id: int, message_id: int, text: str, buttons: Sequence[Sequence[Button]]
    ) -> None:
        """Without buttons the keyboard goes; an edit that changes nothing is no error."""
        try:
            await self._bot.edit_message_text(
                chat_id=chat_id, message_id=message_id, text=text, reply_markup=keyboard(buttons)
            )
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                raise _channel_error(exc) from exc
        except TelegramError as exc:
            raise _channel_error(exc) from exc
