"""What the desk answers a staff chat: text with buttons, a toast for a button press, or a
refusal (audited). The bot adapter (bot/staff_desk.py) only shows these."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.control import audit
from locales import LANGUAGES, N_, tr
from models.db import Subscriber
from models.staff import Agent
from models.vocab import Channel, Language

NOT_YOURS = N_("That is not yours to do.")
NOT_STAFF = N_("This chat is not linked to the desk.")

Buttons = tuple[tuple[tuple[str, str], ...], ...]  # rows of (label, callback data)


@dataclass(frozen=True)
class Reply:
    text: str = ""  # empty: nothing to show beyond the toast
    buttons: Buttons = ()
    toast: str = ""  # a button press's short answer
    refused: bool = False


def language(agent: Agent | None, telegram: str | None) -> str:
    """The staff member's language: theirs if set, else their Telegram's, else English."""
    own = agent.user.language if agent is not None else None
    for lang in (own, telegram):
        if lang in LANGUAGES:
            return str(lang)
    return Language.EN


async def refuse(
    chat_id: int, lang: str, what: str, subscriber: Subscriber | None = None, why: str = ""
) -> Reply:
    """A refusal: nothing changes; the attempt is audited and answered."""
    await audit.record(Channel.TELEGRAM, str(chat_id), subscriber, what, audit.REFUSED, why)
    return Reply(toast=tr(lang, NOT_YOURS), text="", refused=True)


async def not_staff(chat_id: int, lang: str, what: str) -> Reply:
    await audit.record(Channel.TELEGRAM, str(chat_id), None, what, audit.REFUSED, "not staff")
    return Reply(toast=tr(lang, NOT_STAFF), text=tr(lang, NOT_STAFF), refused=True)
