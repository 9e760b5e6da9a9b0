"""The audit log: every command, accepted or refused, with who, what, channel and result."""

from __future__ import annotations

import logging

from models.db import AuditEntry, Subscriber

log = logging.getLogger(__name__)

DONE, REFUSED, LOCKED, NOT_UNDERSTOOD, FAILED = (
    "done",
    "refused",
    "locked",
    "not_understood",
    "failed",
)


async def record(
    channel: str,
    actor: str,
    subscriber: Subscriber | None,
    command: str,
    result: str,
    detail: str = "",
) -> None:
    """`command` must already have any PIN masked (bot.commands.redact)."""
    await AuditEntry.create(
        channel=channel,
        actor=actor[:254],
        subscriber=subscriber,
        command=command[:500],
        result=result,
        detail=detail[:500],
    )
    log.info("command via %s from %s: %s -> %s", channel, actor, command[:80], result)
