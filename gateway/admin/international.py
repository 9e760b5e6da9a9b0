"""The admins' report of international calls in a staff chat (`/international [YYYY-MM]`):
who may read it (directors and admins: Act.SEE_STATISTICS), the month asked, the answer.
The calls are those the outbound policy recorded (gateway/admin/policy.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.admin import policy
from gateway.staff.identity import staff_of_chat
from gateway.staff.replies import language, not_staff, refuse
from gateway.staff.rights import Act, Owner, allowed
from locales import N_, tr

BAD_MONTH = N_("Write the month as YYYY-MM, e.g. /international 2025-03.")
COMMAND = "international"


async def report(
    chat_id: int, month: str, telegram_lang: str | None, timezone: str, now: datetime | None = None
) -> str:
    """The answer to `/international [month]` (this month when none is given)."""
    found = await staff_of_chat(chat_id)
    if found is None:
        return (await not_staff(chat_id, language(None, telegram_lang), f"/{COMMAND}")).text
    agent, actor = found
    lang = language(agent, telegram_lang)
    if not allowed(actor, Act.SEE_STATISTICS, Owner()):
        return (await refuse(chat_id, lang, f"/{COMMAND}", why=Act.SEE_STATISTICS)).toast
    month = month.strip() or policy.this_month(now or datetime.now(UTC))
    try:
        policy.month_bounds(month, timezone)
    except ValueError:
        return tr(lang, BAD_MONTH)
    return await policy.international_report(lang, month, timezone)
