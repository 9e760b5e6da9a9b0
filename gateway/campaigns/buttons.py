"""The data of a call list's buttons (Telegram callback_data), written and read here only.

  cl:<campaign id>:<action>   n = next (claim and call), p = the agent's last worked entry
  ce:<entry id>:<action>      an outcome word (work.OUTCOMES), p = previous, c = call again

It comes back from the client: the reader never raises and gives None for anything we
would not have written. The formats never change (buttons already sent keep working).
"""

from __future__ import annotations

from gateway.campaigns.work import OUTCOMES
from gateway.control.callbacks import parse_id

CAMPAIGN = "cl"
ENTRY = "ce"
NEXT, PREVIOUS, CALL_AGAIN = "n", "p", "c"
CAMPAIGN_ACTIONS = (NEXT, PREVIOUS)
ENTRY_ACTIONS = (PREVIOUS, CALL_AGAIN, *OUTCOMES)


def pattern(prefix: str) -> str:
    return rf"^{prefix}:"


def campaign(campaign_id: int, action: str) -> str:
    assert action in CAMPAIGN_ACTIONS, action
    return f"{CAMPAIGN}:{campaign_id}:{action}"


def entry(entry_id: int, action: str) -> str:
    assert action in ENTRY_ACTIONS, action
    return f"{ENTRY}:{entry_id}:{action}"


def unpack(data: str | None) -> tuple[str, int, str] | None:
    """(CAMPAIGN or ENTRY, id, action), or None."""
    parts = (data or "").split(":")
    if len(parts) != 3:
        return None
    prefix, head, action = parts
    found = parse_id(head)
    if found is None:
        return None
    if prefix == CAMPAIGN and action in CAMPAIGN_ACTIONS:
        return CAMPAIGN, found, action
    if prefix == ENTRY and action in ENTRY_ACTIONS:
        return ENTRY, found, action
    return None
