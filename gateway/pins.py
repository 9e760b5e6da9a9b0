"""SMS control PINs: stored as PBKDF2 hashes, checked in constant time, locked after
repeated failures. An SMS sender is only a claimed number; the PIN is what proves it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from models.db import Subscriber

ITERATIONS = 200_000
MAX_FAILURES = 5  # the sixth wrong attempt finds SMS control locked
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
    """The outcome of one attempt: ok, wrong (with failures so far), or locked."""

    OK, WRONG, LOCKED, UNSET = "ok", "wrong", "locked", "unset"


async def check_pin(subscriber: Subscriber, pin: str | None, now: datetime) -> str:
    """Count the attempt; lock SMS control after MAX_FAILURES wrong PINs in a row."""
    if subscriber.sms_locked_until is not None and subscriber.sms_locked_until > now:
        return PinCheck.LOCKED
    if not subscriber.sms_pin_hash:
        return PinCheck.UNSET
    if pin is not None and pin_matches(pin, subscriber.sms_pin_hash):
        subscriber.sms_pin_failures, subscriber.sms_locked_until = 0, None
        await subscriber.save(update_fields=["sms_pin_failures", "sms_locked_until"])
        return PinCheck.OK
    subscriber.sms_pin_failures += 1
    if subscriber.sms_pin_failures >= MAX_FAILURES:
        subscriber.sms_locked_until = now + LOCK_FOR
        subscriber.sms_pin_failures = 0
    await subscriber.save(update_fields=["sms_pin_failures", "sms_locked_until"])
    return PinCheck.WRONG
