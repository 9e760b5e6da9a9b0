"""SMS control PINs: stored as PBKDF2 hashes, checked in constant time, locked after
repeated failures. An SMS sender is only a claimed number; the PIN is what proves it.

Failures are counted in the database, never on a Python copy of the row: many guesses
arrive at once (a burst of SMS or emails), and each one is a single conditional UPDATE
whose WHERE clause the database checks against the row as it is at that moment (SQLite
writes one at a time; PostgreSQL re-checks the WHERE on the newest row version after
waiting for its lock). So exactly MAX_FAILURES - 1 guesses count up, exactly one locks,
and every guess after it, even the right PIN, finds SMS control locked.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from tortoise.expressions import F, Q

from models.db import Subscriber

ITERATIONS = 200_000
MAX_FAILURES = 5  # the fifth wrong PIN locks; the sixth attempt finds SMS control locked
LOCK_FOR = timedelta(minutes=30)


def hash_pin(pin: str) -> str:
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), ITERATIONS)
    return f"pbkdf2_sha256${ITERATIONS}${salt}${digest.hex()}"


def pin_matches(pin: str, stored: str) -> bool:
    try:
        scheme, rounds, salt, digest = stored.split("$")
        candidate = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), int(rounds))
    except ValueError:
        return False
    return scheme == "pbkdf2_sha256" and hmac.compare_digest(candidate.hex(), digest)


class PinCheck:
    """The outcome of one attempt: ok, wrong, wrong and now locked (the attempt that
    locked SMS control: the subscriber is told once), locked, or no PIN set."""

    OK, WRONG, LOCKED_NOW, LOCKED, UNSET = "ok", "wrong", "locked_now", "locked", "unset"


def _open(now: datetime) -> Q:
    """Rows whose SMS control is not locked at `now`."""
    return Q(sms_locked_until__isnull=True) | Q(sms_locked_until__lte=now)


async def check_pin(subscriber: Subscriber, pin: str | None, now: datetime) -> str:
    """Count the attempt in the database; the MAX_FAILURES-th wrong PIN in a row locks SMS
    control for LOCK_FOR. `subscriber` may be stale: only its id is trusted."""
    row = (
        await Subscriber.filter(id=subscriber.id).first().values("sms_pin_hash", "sms_locked_until")
    )
    if row is None:
        return PinCheck.UNSET
    locked_until = row["sms_locked_until"]
    if locked_until is not None and locked_until > now:
        return PinCheck.LOCKED  # no hashing while locked: guesses cost us nothing
    if not row["sms_pin_hash"]:
        return PinCheck.UNSET
    # PBKDF2 takes a while: off the loop, so a burst of guesses cannot stall the gateway.
    if pin is not None and await asyncio.to_thread(pin_matches, pin, row["sms_pin_hash"]):
        return await _accept(subscriber, now)
    return await _count_failure(subscriber, now)


async def _accept(subscriber: Subscriber, now: datetime) -> str:
    """The right PIN resets the count, unless a concurrent guess locked control meanwhile."""
    if await Subscriber.filter(_open(now), id=subscriber.id).update(
        sms_pin_failures=0, sms_locked_until=None
    ):
        subscriber.sms_pin_failures, subscriber.sms_locked_until = 0, None
        return PinCheck.OK
    return PinCheck.LOCKED


async def _count_failure(subscriber: Subscriber, now: datetime) -> str:
    # Two mutually exclusive conditional UPDATEs; when neither matched, the row changed
    # under us (locked, or reset by a right PIN): look again. Bounded, never spinning.
    for _ in range(MAX_FAILURES):
        below = _open(now) & Q(id=subscriber.id, sms_pin_failures__lt=MAX_FAILURES - 1)
        if await Subscriber.filter(below).update(sms_pin_failures=F("sms_pin_failures") + 1):
            return PinCheck.WRONG
        until = now + LOCK_FOR
        last = _open(now) & Q(id=subscriber.id, sms_pin_failures__gte=MAX_FAILURES - 1)
        if await Subscriber.filter(last).update(sms_pin_failures=0, sms_locked_until=until):
            subscriber.sms_pin_failures, subscriber.sms_locked_until = 0, until
            return PinCheck.LOCKED_NOW
        if not await Subscriber.filter(_open(now), id=subscriber.id).exists():
            return PinCheck.LOCKED
    return PinCheck.LOCKED
