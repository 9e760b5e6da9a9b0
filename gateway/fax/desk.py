"""Faxes received by HylaFAX (through /hooks/fax) told to the subscriber as PDFs.

The hook handler (gateway/fax/hook.py) has already archived the TIFF and converted what it
could. Here: the called number finds the subscriber's DDI, and one notification per fax
(dedupe key `fax:<commid>`: a hook retried after a lost answer tells nobody twice) goes
out by the subscriber's fax route. A fax that could not be read still tells the
subscriber it came, and the admins where the original is; so does one whose hook fields
were wrong (it goes out dated when it reached the gateway).
"""

from __future__ import annotations

import logging

from tortoise.transactions import in_transaction

from gateway.delivery.attachments import stored
from gateway.delivery.notices import NewNotification, Notices
from gateway.fax.hook import ReceivedFax, digits
from gateway.fax.render import FaxPayload
from models.db import Ddi, Subscriber, Urgency
from models.phone import caller_e164
from models.vocab import Kind

log = logging.getLogger(__name__)

MIN_SUFFIX = 7  # national and international forms of a DDI share at least this tail


class FaxDesk:
    def __init__(self, notices: Notices, region: str = "GR") -> None:
        self._notices = notices
        self._region = region

    async def on_fax(self, fax: ReceivedFax) -> None:
        subscriber = await self._owner(fax.called)
        key = f"{Kind.FAX}:{fax.commid or fax.tiff_path.stem}"
        if subscriber is None:
            issues = self._issues(fax)
            await self._notices.alert_admins(
                key,
                f"fax from {fax.caller or '?'} to {fax.called_raw or '?'}: no subscriber has "
                f"that number{'; ' + issues if issues else ''}; kept at {fax.tiff_path}",
            )
            return
        number = caller_e164(fax.caller, self._region) if digits(fax.caller) else ""
        payload = FaxPayload(
            subscriber=subscriber.name,
            caller_number=number or "",
            caller_name=fax.caller_name,
            contact_name=None,
            at=fax.received_at,
            timezone=subscriber.timezone,
            pages=fax.pages,
            complete=fax.complete,
            error=fax.error,
            unreadable=fax.pdf_path is None,
            attachments=(
                (stored(fax.pdf_path, "application/pdf", f"{fax.tiff_path.stem}.pdf"),)
                if fax.pdf_path
                else ()
            ),
        )
        notice = NewNotification(key, subscriber, Kind.FAX, Urgency.NORMAL, payload.to_json())
        async with in_transaction():
            await self._notices.create([notice])
        issues = self._issues(fax)
        if issues:
            await self._notices.alert_admins(
                key,
                f"fax {fax.commid or fax.tiff_path.stem} for {subscriber.name}: {issues}; "
                f"the original is at {fax.tiff_path}",
            )

    @staticmethod
    def _issues(fax: ReceivedFax) -> str:
        """What an admin must look at (one alert: alerts are kept once per key)."""
        issues = []
        if fax.pdf_path is None:
            issues.append(f"it could not be read ({fax.problem})")
        if fax.bad_metadata:
            issues.append(
                f"the hook sent bad metadata ({fax.bad_metadata}), so it is dated when it "
                "reached the gateway"
            )
        return " and ".join(issues)

    @staticmethod
    async def _owner(called: str) -> Subscriber | None:
        if not called:
            return None
        ddi = await Ddi.get_or_none(number=called)
        if ddi is None:
            # "302100000001" against "2100000001" (or the reverse): the longest shared tail.
            matches = [
                d
                for d in await Ddi.all()
                if min(len(digits(d.number)), len(called)) >= MIN_SUFFIX
                and (called.endswith(digits(d.number)) or digits(d.number).endswith(called))
            ]
            ddi = max(matches, key=lambda d: len(d.number), default=None)
        if ddi is None:
            return None
        return await Subscriber.get_or_none(id=ddi.subscriber_id)  # type: ignore[attr-defined]
