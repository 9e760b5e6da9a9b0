"""The closed vocabularies, each defined once: what a channel, a notification kind, a
language and a scenario can be. Their values are stored in the database, written to
AstDB and typed by operators in config and on the CLI, so a value never changes; a
migration that needs one writes the literal it had then.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """A way to reach a person (and, for SMS, email and Telegram, to be answered)."""

    TELEGRAM = "telegram"
    EMAIL = "email"
    SMS = "sms"
    MMS = "mms"


class Kind(StrEnum):
    """What a notification tells; each has its own renderer and routing preference."""

    MISSED_CALL = "missed_call"
    MESSAGE = "message"  # taken for the subscriber (by an agent or the operator)
    VOICEMAIL = "voicemail"
    FAX = "fax"
    APPOINTMENT = "appointment"


class Language(StrEnum):
    """The languages with a catalogue in locales/, a command grammar and transcription."""

    EN = "en"
    EL = "el"
    RU = "ru"
    ZH = "zh"


class Scenario(StrEnum):
    """How a subscriber's calls are answered now (AstDB `frontdesk/scenario/<ddi>`)."""

    AGENT = "agent"
    VOICEMAIL = "voicemail"
    FORWARD = "forward"
    CLOSED = "closed"


LANGUAGES: tuple[str, ...] = tuple(Language)
CHANNELS: tuple[str, ...] = tuple(Channel)
KINDS: tuple[str, ...] = tuple(Kind)
