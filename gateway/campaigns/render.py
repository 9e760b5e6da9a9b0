"""What the agent's chat shows of a call list: the list's card (script, window, counters,
Next) and an entry's card (the contact, the script, outcome buttons, Previous / Call
again / Next), in the staff member's language."""

from __future__ import annotations

from gateway.campaigns import buttons
from gateway.campaigns.work import Counters
from gateway.staff.replies import Buttons
from locales import N_, tr
from models.campaigns import Campaign, CampaignEntry, EntryStatus
from models.db import Subscriber

STATUS = {
    EntryStatus.PENDING: N_("Status: pending"),
    EntryStatus.IN_PROGRESS: N_("Status: in progress"),
    EntryStatus.UNANSWERED: N_("Status: unanswered"),
    EntryStatus.DONE: N_("Status: done"),
    EntryStatus.REFUSED: N_("Status: skipped (outbound policy)"),
}
OUTCOME_LABELS = {
    "reached": N_("Reached"),
    "no_answer": N_("No answer"),
    "busy": N_("Busy"),
    "wrong": N_("Wrong number"),
    "later": N_("Call later"),
}
NO_CAMPAIGNS = N_("No call lists open for you today.")
NONE_LEFT = N_("No more contacts to call on this list.")
RECORD_FIRST = N_("Record the outcome of this call first.")
NO_PREVIOUS = N_("No earlier contact of yours on this list.")
CLOSED = N_("This call list is not open today.")
NOT_YOURS = N_("This contact is not yours to record.")
SKIPPED = N_("Skipped (outbound policy): {contact}")


def counters_line(lang: str, c: Counters) -> str:
    line = tr(
        lang,
        "In progress: {in_progress} · Unanswered: {unanswered} · Pending: {pending} · Done: {done}",
        in_progress=c.in_progress,
        unanswered=c.unanswered,
        pending=c.pending,
        done=c.done,
    )
    if c.refused:
        line += " · " + tr(lang, "Skipped: {count}", count=c.refused)
    return line


def _head(lang: str, campaign: Campaign, subscriber: Subscriber, note: str) -> list[str]:
    """The news of the last press (if any) above whose list this is."""
    return [
        *([note, ""] if note else []),
        tr(lang, "Call list: {name}", name=campaign.name),
        tr(lang, "For: {subscriber}", subscriber=subscriber.name),
    ]


def _tail(lang: str, campaign: Campaign, c: Counters) -> list[str]:
    """The script to read (if any), then the list's counters."""
    script = ["", tr(lang, "Script:"), campaign.script] if campaign.script else []
    return [*script, "", counters_line(lang, c)]


def campaign_card(
    lang: str, campaign: Campaign, subscriber: Subscriber, c: Counters, note: str = ""
) -> tuple[str, Buttons]:
    lines = _head(lang, campaign, subscriber, note)
    lines.append(
        tr(
            lang,
            "Open {start} to {end}",
            start=campaign.starts_on.isoformat(),
            end=campaign.ends_on.isoformat(),
        )
    )
    lines += _tail(lang, campaign, c)
    rows: Buttons = (
        (
            (tr(lang, "◀ Previous"), buttons.campaign(campaign.id, buttons.PREVIOUS)),
            (tr(lang, "Next ▶"), buttons.campaign(campaign.id, buttons.NEXT)),
        ),
    )
    return "\n".join(lines), rows


def entry_card(
    lang: str,
    campaign: Campaign,
    subscriber: Subscriber,
    entry: CampaignEntry,
    c: Counters,
    note: str = "",
) -> tuple[str, Buttons]:
    lines = _head(lang, campaign, subscriber, note)
    lines.append(
        tr(
            lang,
            "Contact {position} of {total}: {name}",
            position=entry.position,
            total=c.total,
            name=entry.name or entry.number,
        )
    )
    lines.append(tr(lang, "Number: {number}", number=entry.number))
    status = EntryStatus(entry.status)
    lines.append(tr(lang, STATUS[status]) + " · " + tr(lang, "Calls: {n}", n=entry.attempts))
    if entry.outcome in OUTCOME_LABELS:
        lines.append(
            tr(lang, "Outcome: {outcome}", outcome=tr(lang, OUTCOME_LABELS[entry.outcome]))
        )
    lines += _tail(lang, campaign, c)
    rows: list[tuple[tuple[str, str], ...]] = []
    if status in (EntryStatus.IN_PROGRESS, EntryStatus.UNANSWERED, EntryStatus.DONE):
        words = list(OUTCOME_LABELS)
        for part in (words[:3], words[3:]):
            rows.append(
                tuple((tr(lang, OUTCOME_LABELS[w]), buttons.entry(entry.id, w)) for w in part)
            )
    moves = [(tr(lang, "◀ Previous"), buttons.entry(entry.id, buttons.PREVIOUS))]
    if status in (EntryStatus.UNANSWERED, EntryStatus.DONE):
        moves.append((tr(lang, "Call again"), buttons.entry(entry.id, buttons.CALL_AGAIN)))
    moves.append((tr(lang, "Next ▶"), buttons.campaign(campaign.id, buttons.NEXT)))
    rows.append(tuple(moves))
    return "\n".join(lines), tuple(rows)
