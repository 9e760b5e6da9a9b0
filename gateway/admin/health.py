"""Health alerts to admins: each incident told once when it opens and once when resolved.

Keys (models.db.HealthIncident.key):
  ami                     the AMI link is down (a hung Asterisk too: its unanswered Ping
                          closes the link, gateway/pbx/client.py)
  smpp                    the SMS notifier is not bound to the SMSC
  smtp, mmsc              `health.failures` consecutive transient failures sending email or
                          MMS (from the outbox's stored outcomes); a success clears it
  outbox_backlog          more than `health.outbox_backlog` deliveries due, or one due for
                          longer than `health.outbox_age` (quiet hours and retries waiting
                          for their time are not due)
  delivery_dead:<channel> the outbox gave up on a delivery on that channel (admin alerts
                          themselves excepted); the next send accepted on it clears it
A fax or voicemail that could not be processed is not an incident: it is one event, told
once by its own alert (gateway/fax/desk.py, gateway/voicemail/spool.py, keyed by the fax or
voicemail), with nothing to resolve.

The monitor checks every `health.check_interval` seconds (and at once when woken). A
condition must last `health.open_after` seconds to open an incident (a gateway starting or
an AMI reconnect after a reload is no incident; a dead delivery opens at once), and an open
incident resolves only once its condition has been clear for `health.hold_down` seconds: a
link flapping within that time stays one incident, told once and resolved once.

The database keeps one open incident per key (`open_key` unique while open): opening is an
insert and resolving a conditional update, so two gateways on one database, or a restart
in between, never tell an incident twice. Alerts go through Notices.alert_admins (the
outbox, Telegram to every admin chat; email to `health.admin_email` too when set), keyed
`health:<incident id>:opened` and `health:<incident id>:resolved`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError

from gateway.delivery.notices import Notices
from locales import N_, tr
from models.db import Delivery, DeliveryStatus, HealthIncident
from models.settings import HealthSettings
from models.vocab import Channel

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# A probe answers {key: what is wrong} for its keys that are bad now (absent: fine).
Probe = Callable[[], Awaitable[dict[str, str]]]

AMI, SMPP, SMTP, MMSC, BACKLOG, DEAD = (
    "ami",
    "smpp",
    "smtp",
    "mmsc",
    "outbox_backlog",
    "delivery_dead",
)
# Channels whose failing sends are an incident of their own (SMS has its bind state).
FAILING: dict[str, str] = {Channel.EMAIL: SMTP, Channel.MMS: MMSC}
ADMIN_ALERT = "admin_alert"  # Delivery.kind of the alerts themselves

PROBLEMS = {
    AMI: N_("The PBX link (AMI) is down: calls are not followed and commands cannot act."),
    SMPP: N_("The SMSC is not bound: SMS cannot be sent or received."),
    SMTP: N_("Emails are failing to send."),
    MMSC: N_("MMS are failing to send."),
    BACKLOG: N_("The outbox is backing up: messages are waiting to be sent."),
    DEAD: N_("A message was given up on after its retries ({channel})."),
}
OPENED = N_("Frontdesk alert: {problem}")
RESOLVED = N_("Resolved: {problem}")
DETAIL = N_("Detail: {detail}")


def utcnow() -> datetime:
    return datetime.now(UTC)


def problem(lang: str, key: str) -> str:
    base, _, channel = key.partition(":")
    msgid = PROBLEMS.get(base)
    if msgid is None:
        return key
    return tr(lang, msgid, channel=channel) if channel else tr(lang, msgid)


@dataclass
class _State:
    bad_since: datetime | None = None
    good_since: datetime | None = None
    detail: str = ""


@dataclass
class _Streak:
    failures: int = 0
    error: str = ""


@dataclass
class Told:
    """What the monitor told admins (tests and the demo read it)."""

    opened: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


class HealthMonitor:
    def __init__(
        self,
        settings: HealthSettings,
        notices: Notices,
        probes: Iterable[Probe] = (),
        clock: Clock = utcnow,
    ) -> None:
        self.settings = settings
        self._notices = notices
        self._probes = list(probes)
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._open: set[str] | None = None  # keys open in the database (loaded on first use)
        self._outcomes: list[tuple[int, DeliveryStatus]] = []
        self._streaks: dict[str, _Streak] = {}
        self._dead: dict[str, str] = {}  # channel -> why its last delivery gave up
        self._wakeup = asyncio.Event()
        self.told = Told()

    # -- hooks -----------------------------------------------------------------------------

    def add_probe(self, probe: Probe) -> None:
        self._probes.append(probe)

    def outcome(self, delivery_id: int, status: DeliveryStatus) -> None:
        """The outbox stored an attempt's outcome (Outbox.observers): read at the next check."""
        self._outcomes.append((delivery_id, status))
        if status in (DeliveryStatus.DEAD, DeliveryStatus.PENDING):
            self.wake()

    def wake(self) -> None:
        """Check now rather than at the next interval (a link came or went)."""
        self._wakeup.set()

    async def pause(self) -> None:
        """Between checks: the interval, or less when woken."""
        try:
            await asyncio.wait_for(self._wakeup.wait(), self.settings.check_interval)
        except TimeoutError:
            pass
        self._wakeup.clear()

    def open_keys(self) -> list[str]:
        """The incidents open as this gateway last saw them (for /healthz)."""
        return sorted(self._open or ())

    # -- checking --------------------------------------------------------------------------

    async def check(self) -> None:
        """One round: what is wrong now, then open and resolve incidents accordingly."""
        now = self._clock()
        if self._open is None:
            keys = await HealthIncident.filter(open_key__isnull=False).values_list(
                "open_key", flat=True
            )
            self._open = {str(k) for k in keys}
        bad: dict[str, str] = {}
        for probe in self._probes:
            bad.update(await probe())
        bad.update(await self._sends())
        for key in sorted(set(bad) | set(self._states) | self._open):
            await self._step(key, key in bad, bad.get(key, ""), now)

    async def _step(self, key: str, is_bad: bool, detail: str, now: datetime) -> None:
        assert self._open is not None
        state = self._states.setdefault(key, _State())
        if is_bad:
            state.good_since = None
            state.bad_since = state.bad_since or now
            state.detail = detail
            lasted = (now - state.bad_since).total_seconds()
            at_once = key.startswith(f"{DEAD}:")
            if key not in self._open and (at_once or lasted >= self.settings.open_after):
                await self._opened(key, detail, now)
            return
        state.bad_since = None
        state.good_since = state.good_since or now
        if key in self._open:
            if (now - state.good_since).total_seconds() >= self.settings.hold_down:
                await self._resolved(key, now)
        else:
            del self._states[key]

    async def _sends(self) -> dict[str, str]:
        """Failing channels and dead deliveries, from the outcomes stored since last time."""
        outcomes, self._outcomes = self._outcomes, []
        if outcomes:
            rows = await Delivery.filter(id__in={i for i, _ in outcomes}).values_list(
                "id", "channel", "kind", "last_error"
            )
            found = {row[0]: row[1:] for row in rows}
            for delivery_id, status in outcomes:
                if delivery_id in found:
                    channel, kind, error = found[delivery_id]
                    self._count(str(channel), str(kind), str(error or ""), status)
        bad = {
            FAILING[ch]: f"{s.failures} failures in a row: {s.error}"[:400]
            for ch, s in self._streaks.items()
            if ch in FAILING and s.failures >= self.settings.failures
        }
        bad.update({f"{DEAD}:{ch}": why[:400] for ch, why in self._dead.items()})
        return bad

    def _count(self, channel: str, kind: str, error: str, status: DeliveryStatus) -> None:
        streak = self._streaks.setdefault(channel, _Streak())
        if status is DeliveryStatus.SENT:
            streak.failures, streak.error = 0, ""
            self._dead.pop(channel, None)
        elif status in (DeliveryStatus.PENDING, DeliveryStatus.DEAD):  # transient failures
            streak.failures += 1
            streak.error = error
            if status is DeliveryStatus.DEAD and kind != ADMIN_ALERT:
                self._dead[channel] = error or "given up"

    # -- incidents -------------------------------------------------------------------------

    async def _opened(self, key: str, detail: str, now: datetime) -> None:
        assert self._open is not None
        try:
            incident = await HealthIncident.create(
                key=key, open_key=key, detail=detail[:500], opened_at=now
            )
        except IntegrityError:  # open already (another gateway, or before a restart)
            self._open.add(key)
            return
        self._open.add(key)
        log.error("health: %s opened: %s", key, detail)
        self.told.opened.append(key)

        def words(lang: str) -> str:
            lines = [tr(lang, OPENED, problem=problem(lang, key))]
            if detail:
                lines.append(tr(lang, DETAIL, detail=detail))
            return "\n".join(lines)

        await self._notices.alert_admins(
            f"health:{incident.id}:opened",
            words("en"),
            render=words,
            email=self.settings.admin_email,
        )

    async def _resolved(self, key: str, now: datetime) -> None:
        assert self._open is not None
        incident = await HealthIncident.get_or_none(open_key=key)
        self._open.discard(key)
        self._states.pop(key, None)
        if incident is None:
            return
        changed = await HealthIncident.filter(id=incident.id, open_key=key).update(
            open_key=None, resolved_at=now
        )
        if not changed:  # another gateway resolved it first
            return
        took = now - incident.opened_at
        log.warning("health: %s resolved after %ss", key, int(took.total_seconds()))
        self.told.resolved.append(key)

        def words(lang: str) -> str:
            return tr(lang, RESOLVED, problem=problem(lang, key))

        await self._notices.alert_admins(
            f"health:{incident.id}:resolved",
            words("en"),
            render=words,
            email=self.settings.admin_email,
        )


async def backlog(settings: HealthSettings, now: datetime | None = None) -> dict[str, str]:
    """The outbox probe: due deliveries too many, or one due too long."""
    now = now or utcnow()
    due = Delivery.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
    count = await due.count()
    if count == 0:
        return {}
    oldest = await due.order_by("next_attempt_at").first()
    waited = (now - oldest.next_attempt_at).total_seconds() if oldest else 0.0
    if count > settings.outbox_backlog or waited > settings.outbox_age:
        return {BACKLOG: f"{count} due, the oldest for {int(waited)}s"}
    return {}
