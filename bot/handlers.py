"""Telegram handlers: /start <code> linking, and the one callback dispatcher for buttons."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
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

from bot.menus import SCENARIO_LABELS, scenario_keyboard
from gateway.control import audit
from gateway.control.admin import AdminError, link_chat
from gateway.control.callbacks import parse_id, parse_slot
from gateway.control.desk import CommandDesk
from gateway.control.lines import Control, NoMobileNumber
from gateway.delivery.notices import Notices
from gateway.delivery.render import local_time
from gateway.diary import appointments as diary
from gateway.pbx.client import AmiActionError, AmiUnavailable
from locales import LANGUAGES, tr
from models.db import Call, Notification, User
from models.vocab import Scenario

log = logging.getLogger(__name__)

Action = Callable[[Control, User, Call, str], Awaitable[str]]


def _telegram_language(update: Update) -> str | None:
    """The sender's Telegram language if it is one of ours; None when Telegram did not
    say (language_code is optional) or it is another."""
    code = (update.effective_user.language_code or "") if update.effective_user else ""
    return code[:2] if code[:2] in LANGUAGES else None


def _lang(update: Update, user: User | None = None) -> str:
    """The chat's language, else its subscriber's (`user` fetched with its subscriber),
    else Telegram's, else English."""
    if user is not None and user.language:
        return user.language
    if user is not None and user.subscriber is not None:
        return user.subscriber.language
    return _telegram_language(update) or "en"


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    known = _telegram_language(update)
    lang = known or "en"
    if not context.args:
        await message.reply_text(tr(lang, "Send the code you got from the operator: /start CODE"))
        return
    name = update.effective_user.full_name if update.effective_user else str(chat.id)
    try:
        # Only a language Telegram told us is the chat's: else the subscriber's applies.
        subscriber = await link_chat(context.args[0], chat.id, name, known)
    except AdminError:
        await message.reply_text(tr(lang, "This code is not valid or has expired."))
        return
    lang = known or subscriber.language
    log.info("chat linked to subscriber %s", subscriber.id)
    await message.reply_text(
        tr(
            lang,
            "Linked to {subscriber}. Missed calls will be reported here.",
            subscriber=subscriber.name,
        )
    )


async def _call_back(control: Control, user: User, call: Call, lang: str) -> str:
    await control.call_back(user.subscriber, call)  # type: ignore[arg-type]
    return tr(lang, "Calling your mobile now; then we connect {caller}.", caller=call.caller_number)


async def _forward_to_me(control: Control, user: User, call: Call, lang: str) -> str:
    number = await control.forward_to_mobile(user.subscriber)  # type: ignore[arg-type]
    return tr(lang, "Calls now go to {number}.", number=number)


ACTIONS: dict[str, Action] = {"callback": _call_back, "fwdme": _forward_to_me}


def make_callback_dispatcher(
    control: Control, notices: Notices
) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]:
    async def dispatch(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or update.effective_chat is None:
            return
        try:
            await _press(control, notices, update, query)
        except Exception:
            # Unanswered, the button's spinner turns on: answer whatever went wrong.
            log.exception("button %r failed", (query.data or "")[:64])
            with contextlib.suppress(TelegramError):  # unless it was answered already
                await query.answer(tr(_lang(update), "That did not work; try again in a minute."))

    return dispatch


async def _press(control: Control, notices: Notices, update: Update, query: CallbackQuery) -> None:
    assert update.effective_chat is not None
    user = await User.get_or_none(telegram_chat_id=update.effective_chat.id).select_related(
        "subscriber"
    )
    lang = _lang(update, user)
    data = query.data or ""
    if data.startswith("scn:"):
        await _switch_scenario(control, user, data, lang, query)
        return
    if data.startswith(("book:", "bk:")):
        await _book_from_button(user, data, lang, query)
        return
    answer, done = await _run_action(control, notices, user, data, lang)
    await query.answer(answer)
    if done:
        await _confirm_in_place(query, answer)


async def _acknowledge(notices: Notices, user: User | None, arg: str, lang: str) -> str:
    notification_id = parse_id(arg)
    n = await Notification.get_or_none(id=notification_id) if notification_id else None
    if user is None or n is None or n.subscriber_id != user.subscriber_id:  # type: ignore[attr-defined]
        return tr(lang, "This button is not for you.")
    await notices.acknowledge(notification_id=n.id)
    return tr(lang, "Noted.")


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


async def _book_from_button(user: User | None, data: str, lang: str, query: CallbackQuery) -> None:
    """ "Book a time": the message grows the nearest free slots; one tap books the caller."""
    kind, _, rest = data.partition(":")
    call_id, _, epoch = rest.partition(":")
    now = datetime.now(UTC)
    start = parse_slot(epoch, now)
    call = await _call(call_id)
    chat = str(query.message.chat.id) if query.message else "?"
    subscriber = user.subscriber if user else None
    if subscriber is None or call is None or call.subscriber_id != subscriber.id:  # type: ignore[attr-defined]
        await audit.record("telegram", chat, None, data, audit.REFUSED, "not this chat's call")
        await query.answer(tr(lang, "This button is not for you."))
        return
    if kind == "bk" and start is None:  # no slot we would have offered: forged
        await audit.record("telegram", chat, subscriber, data, audit.REFUSED, "no such slot")
        await query.answer(tr(lang, "This button is not for you."))
        return
    if kind == "book":
        slots = await diary.free_slots(subscriber, now, now=now)
        rows = [
            [
                InlineKeyboardButton(
                    local_time(lang, subscriber.timezone, t),
                    callback_data=f"bk:{call.id}:{int(t.timestamp())}",
                )
            ]
            for t in slots
        ]
        markup = getattr(query.message, "reply_markup", None)
        kept = list(markup.inline_keyboard) if markup else []
        await query.answer(tr(lang, "Book a time"))
        await query.edit_message_reply_markup(InlineKeyboardMarkup([*kept[:2], *rows]))
        return
    assert start is not None
    name = call.caller_name or call.caller_number or "?"
    try:
        appointment = await diary.book(subscriber, start, name, call.caller_number, now=now)
    except (diary.Overlap, diary.DiaryError):
        await audit.record("telegram", chat, subscriber, data, audit.REFUSED, "slot gone")
        await query.answer(tr(lang, "That time is taken. Free: {slots}", slots="…"))
        return
    await audit.record("telegram", chat, subscriber, data, audit.DONE)
    when = local_time(lang, subscriber.timezone, appointment.starts_at)
    line = tr(lang, "Booked: {name}, {time}.", name=appointment.name, time=when)
    await query.answer(line)
    await _confirm_in_place(query, line)


async def _call(text: str) -> Call | None:
    """The call a button names, if its id is one (button data comes back from the client)."""
    call_id = parse_id(text)
    return await Call.get_or_none(id=call_id) if call_id else None


async def _run_action(
    control: Control, notices: Notices, user: User | None, data: str, lang: str
) -> tuple[str, bool]:
    """The answer, and whether the action was carried out."""
    name, _, arg = data.partition(":")
    if name == "ack":
        return await _acknowledge(notices, user, arg, lang), True
    action = ACTIONS.get(name)
    call = await _call(arg)
    # Buttons act only on the chat's own subscriber: forged data gets the same refusal.
    if action is None or user is None or call is None or call.subscriber_id != user.subscriber_id:  # type: ignore[attr-defined]
        return tr(lang, "This button is not for you."), False
    # Acting on the call shows the subscriber saw its notification: stop escalating it.
    await notices.acknowledge(call_id=call.id)
    try:
        return await action(control, user, call, lang), True
    except NoMobileNumber:
        return tr(lang, "No mobile number on file; ask the operator to add one."), False
    except (AmiUnavailable, AmiActionError) as exc:
        log.warning("button %s failed: %s", name, exc)
        unreachable = "The phone system is not reachable right now; try again in a minute."
        return tr(lang, unreachable), False


async def scenario_menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    user = await User.get_or_none(telegram_chat_id=chat.id).select_related("subscriber")
    lang = _lang(update, user)
    if user is None or user.subscriber is None:
        await message.reply_text(tr(lang, "Send the code you got from the operator: /start CODE"))
        return
    await message.reply_text(
        tr(lang, "How should calls be answered?"),
        reply_markup=scenario_keyboard(lang, user.subscriber.scenario),
    )


async def _switch_scenario(
    control: Control, user: User | None, data: str, lang: str, query: CallbackQuery
) -> None:
    """A /scenario button: switch, then edit that message rather than add another."""
    value = data.partition(":")[2]
    chat = str(query.message.chat.id) if query.message else "?"
    if user is None or user.subscriber is None or value not in Scenario._value2member_map_:
        await audit.record("telegram", chat, None, data, audit.REFUSED, "not linked or forged")
        await query.answer(tr(lang, "This button is not for you."))
        return
    scenario = Scenario(value)
    try:
        await control.set_scenario(user.subscriber, scenario)
    except (AmiUnavailable, AmiActionError) as exc:
        await audit.record("telegram", chat, user.subscriber, data, audit.FAILED, str(exc))
        await query.answer(
            tr(lang, "The phone system is not reachable right now; try again in a minute.")
        )
        return
    await audit.record("telegram", chat, user.subscriber, data, audit.DONE)
    label = tr(lang, SCENARIO_LABELS[scenario])
    await query.answer(label)
    await query.edit_message_text(
        tr(lang, "Calls: {scenario}.", scenario=label),
        reply_markup=scenario_keyboard(lang, scenario),
    )


def make_text_handler(
    desk: CommandDesk,
) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]:
    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text:
            return
        reply = await desk.from_telegram(chat.id, message.text, datetime.now(UTC))
        await message.reply_text(reply)

    return on_text


def install(
    application: Application[Any, Any, Any, Any, Any, Any],
    control: Control,
    notices: Notices,
    desk: CommandDesk,
) -> None:
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("scenario", scenario_menu))
    # The menu's other commands and any plain text go through the one grammar.
    text = make_text_handler(desk)
    application.add_handler(CommandHandler(["status", "diary", "calls", "help"], text))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, text))
    application.add_handler(CallbackQueryHandler(make_callback_dispatcher(control, notices)))
