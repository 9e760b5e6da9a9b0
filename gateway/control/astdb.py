"""The AstDB keys the gateway owns, as the database says they should be, and what to
change on the PBX to get there (pure: no I/O, unit-tested on its own).

The gateway owns three subtrees of family `frontdesk`, one key per DDI in each:
scenario/<ddi>, forward/<ddi> (the forward target, empty when none) and mailbox/<ddi>
(only for a DDI with a mailbox: without the key the dialplan uses <ddi digits>@default).
ringtime/ and fallback/ are the operator's and never read or written here.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass

SCENARIO, FORWARD, MAILBOX = "scenario", "forward", "mailbox"
OWNED = (SCENARIO, FORWARD, MAILBOX)  # each read back with one DBGetTree at login


@dataclass(frozen=True, slots=True)
class LineRow:
    """One DDI and what its subscriber's settings make of it (one row of one query)."""

    ddi: str
    scenario: str
    forward: str  # the forward target: the number set, else the mobile, else ""
    mailbox: str


def wanted(rows: Iterable[LineRow], subtree: str | None = None) -> dict[str, str]:
    """Key (within the family) -> value, for every owned key of every DDI; with `subtree`,
    that subtree's keys only, by DDI (the key within the subtree: the DDI's own string,
    not a new one per key)."""
    keys: dict[str, str] = {}
    if subtree is None:
        for row in rows:
            keys[f"{SCENARIO}/{row.ddi}"] = row.scenario
            keys[f"{FORWARD}/{row.ddi}"] = row.forward
            if row.mailbox:
                keys[f"{MAILBOX}/{row.ddi}"] = row.mailbox
    elif subtree == SCENARIO:
        keys.update((row.ddi, row.scenario) for row in rows)
    elif subtree == FORWARD:
        keys.update((row.ddi, row.forward) for row in rows)
    elif subtree == MAILBOX:
        keys.update((row.ddi, row.mailbox) for row in rows if row.mailbox)
    else:
        raise ValueError(f"not an owned subtree: {subtree}")
    return keys


def owned(key: str) -> bool:
    return key.partition("/")[0] in OWNED


@dataclass(frozen=True, slots=True)
class Diff:
    puts: dict[str, str]  # missing on the PBX or another value there
    deletes: list[str]  # owned keys the PBX holds for DDIs (or mailboxes) we no longer have
    under: str = ""  # what the keys are within ("scenario/"), "" for keys within the family

    def changes(self, skip: Container[str] = frozenset()) -> Iterator[tuple[str, str | None]]:
        """(key, value) to put, (key, None) to delete, keys within the family. `skip` is
        looked at as each change is taken (lazily): keys written meanwhile by a fresher
        hand are left alone."""
        under = self.under
        for key, value in self.puts.items():
            if (path := under + key) not in skip:
                yield path, value
        for key in self.deletes:
            if (path := under + key) not in skip:
                yield path, None


def diff(want: Mapping[str, str], held: Mapping[str, str] | None, under: str = "") -> Diff:
    """What to send so that the PBX holds `want` in the owned subtrees. `held` None: what
    the PBX holds is unknown (it could not be read): write everything, delete nothing.
    `under` ("scenario/"): both hold one owned subtree's keys, by their key within it."""
    if held is None:  # want itself when it is a dict: a second copy of 300,000 keys is not
        return Diff(want if isinstance(want, dict) else dict(want), [], under)
    puts = {key: value for key, value in want.items() if held.get(key) != value}
    deletes = [key for key in held if key not in want and (under or owned(key))]
    return Diff(puts, deletes, under)
