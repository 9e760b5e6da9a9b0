"""What an operator's monitoring reads: `/metrics` (Prometheus text format) and the
`components` of `/healthz`.

Each Gateway has its own CollectorRegistry (tests run several gateways in one process).
What lives in memory is read at scrape time (the AMI parser's counts, the tracker, the
SMPP window, the transcription queue) or counted as it happens (calls ended, sends timed by
the outbox). What lives in the database is read by the async handler first, within
DB_WAIT, since prometheus collectors are synchronous: a database that does not answer
leaves those gauges out and sets `frontdesk_scrape_db_ok 0`; the scrape still answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from tortoise import connections
from tortoise.functions import Count

from models.db import Delivery, DeliveryStatus
from models.events import CallSnapshot
from models.redact import RedactSecrets, secret_forms
from models.settings import Settings
from models.vocab import Channel
from notifiers.base import PermanentError, TransientError

log = logging.getLogger(__name__)

DB_WAIT = 1.0  # a scrape or /healthz answers without the database rather than wait longer
DETAIL_MAX = 200  # characters of an error kept in a /healthz detail
# Seconds a send may take: Bot API calls are tens of ms, an SMTP relay or MMSC seconds.
SEND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# The /healthz component judged by each channel's last send (SMS: by its bind instead).
SEND_COMPONENTS = {Channel.TELEGRAM: "telegram", Channel.EMAIL: "smtp", Channel.MMS: "mmsc"}


class FrameCounts(Protocol):
    """The AMI parser's counts for one connection (gateway.pbx.wire.WireStats)."""

    @property
    def frames(self) -> int: ...

    @property
    def malformed(self) -> int: ...


@dataclass(frozen=True)
class Sources:
    """What the gateway lends the metrics, read at each scrape."""

    ami_connected: Callable[[], bool]
    ami_stats: Callable[[], FrameCounts | None]  # the live connection's parser, if any
    calls_in_progress: Callable[[], int]
    transcription_queue: Callable[[], int]


@dataclass(frozen=True)
class Component:
    ok: bool
    detail: str

    def as_json(self) -> dict[str, bool | str]:
        return {"ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class _DbFigures:
    deliveries: list[tuple[str, str, int]]  # channel, status, rows
    due: int  # pending rows whose time has come
    oldest_due_age: float  # seconds the longest-waiting of them has been due


@dataclass(frozen=True)
class _LastSend:
    ok: bool
    detail: str
    at: float  # time.monotonic()


class _FrameTotal:
    """AMI frames over every connection: the parser's counts restart with each one, so the
    finished connection's final count (we keep its stats object) is carried forward."""

    def __init__(self) -> None:
        self._carried = 0
        self._malformed = 0
        self._current: FrameCounts | None = None

    def read(self, live: FrameCounts | None) -> tuple[int, int]:
        if live is not None and live is not self._current:
            if self._current is not None:
                self._carried += self._current.frames
                self._malformed += self._current.malformed
            self._current = live
        now = self._current
        return (
            self._carried + (now.frames if now else 0),
            self._malformed + (now.malformed if now else 0),
        )


def _link_ok(error: Exception | None) -> bool:
    """Whether a send's outcome says the peer answered: a refusal of this one message
    (PermanentError) or a 429 asking us to slow down are answers; no answer, a 5xx, a
    refused login are not."""
    if error is None or isinstance(error, PermanentError):
        return True
    return isinstance(error, TransientError) and error.retry_after is not None


def _outcome(error: Exception | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, PermanentError):
        return "permanent"
    return "transient" if isinstance(error, TransientError) else "error"


class Metrics:
    def __init__(
        self, settings: Settings, notifiers: Mapping[str, object], sources: Sources
    ) -> None:
        self._settings = settings
        self._notifiers = notifiers  # the gateway's own dict: channels added later count
        self._sources = sources
        self._redact = RedactSecrets(secret_forms(settings)).redact
        self._frames = _FrameTotal()
        self._last_send: dict[str, _LastSend] = {}
        self._db: _DbFigures | None = None
        self.registry = CollectorRegistry()
        self._calls = Counter(
            "frontdesk_calls",
            "Calls ended and routed, by final status",
            ["status"],
            registry=self.registry,
        )
        self._send_seconds = Histogram(
            "frontdesk_send_seconds",
            "Time a notifier's send took, by channel (successful or not)",
            ["channel"],
            buckets=SEND_BUCKETS,
            registry=self.registry,
        )
        self._sends = Counter(
            "frontdesk_sends",
            "Sends attempted by the outbox, by channel and outcome",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.registry.register(self)  # collect() below: the values read at scrape time

    # -- told as it happens ----------------------------------------------------------------

    def routed(self, snap: CallSnapshot) -> None:
        """Gateway.observers: a call snapshot was routed; an ended call counts once."""
        if snap.ended:
            self._calls.labels(status=snap.status.value).inc()

    def sent(self, channel: str, seconds: float, error: Exception | None) -> None:
        """Outbox.send_observers: one send took `seconds`; `error` when it raised."""
        self._send_seconds.labels(channel=channel).observe(seconds)
        self._sends.labels(channel=channel, outcome=_outcome(error)).inc()
        reason = "" if error is None else self._redact(str(error) or type(error).__name__)
        detail = f"last send failed: {reason[:DETAIL_MAX]}" if error else "last send ok"
        self._last_send[channel] = _LastSend(_link_ok(error), detail, time.monotonic())

    # -- /metrics --------------------------------------------------------------------------

    async def page(self) -> tuple[bytes, str]:
        """The scrape: the database's figures first (bounded), then every collector."""
        self._db = await self._read_db()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    async def _read_db(self) -> _DbFigures | None:
        now = datetime.now(UTC)
        try:
            async with asyncio.timeout(DB_WAIT):
                rows = (
                    await Delivery.annotate(rows=Count("id"))
                    .group_by("channel", "status")
                    .values_list("channel", "status", "rows")
                )
                due = Delivery.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
                count = await due.count()
                oldest = await (
                    due.order_by("next_attempt_at")
                    .limit(1)
                    .values_list("next_attempt_at", flat=True)
                )
        except Exception as exc:  # locked, gone, slow: the scrape answers without it
            log.warning("metrics: the database did not answer: %r", exc)
            return None
        first = oldest[0] if oldest else None
        age = (now - first).total_seconds() if isinstance(first, datetime) else 0.0
        deliveries = [(str(c), str(getattr(s, "value", s)), int(n)) for c, s, n in rows]
        return _DbFigures(deliveries, count, max(age, 0.0))

    def collect(self) -> Iterable[Metric]:
        src = self._sources
        frames, malformed = self._frames.read(src.ami_stats())
        yield CounterMetricFamily(
            "frontdesk_ami_frames", "AMI frames read (the events we follow and answers)", frames
        )
        yield CounterMetricFamily(
            "frontdesk_ami_malformed_frames", "AMI frames that could not be parsed", malformed
        )
        yield GaugeMetricFamily(
            "frontdesk_ami_connected", "1 when logged in to AMI", int(src.ami_connected())
        )
        yield GaugeMetricFamily(
            "frontdesk_calls_in_progress", "Calls the tracker follows now", src.calls_in_progress()
        )
        yield GaugeMetricFamily(
            "frontdesk_transcription_queue",
            "Voicemails waiting for or in transcription",
            src.transcription_queue(),
        )
        sms = self._notifiers.get(Channel.SMS)
        if sms is not None:
            yield GaugeMetricFamily(
                "frontdesk_smpp_bound", "1 when bound to the SMSC", int(_bound(sms))
            )
            in_use = getattr(sms, "window_in_use", None)
            if isinstance(in_use, int):
                yield GaugeMetricFamily(
                    "frontdesk_smpp_window_in_use", "submit_sm awaiting their answer", in_use
                )
        db = self._db
        yield GaugeMetricFamily(
            "frontdesk_scrape_db_ok",
            "1 when the database answered this scrape",
            int(db is not None),
        )
        if db is None:
            return
        rows = GaugeMetricFamily(
            "frontdesk_deliveries",
            "Delivery rows by channel and status",
            labels=["channel", "status"],
        )
        for channel, status, count in db.deliveries:
            rows.add_metric([channel, status], count)
        yield rows
        yield GaugeMetricFamily(
            "frontdesk_outbox_depth", "Deliveries due to be sent now (pending, time come)", db.due
        )
        yield GaugeMetricFamily(
            "frontdesk_outbox_oldest_due_seconds",
            "How long the longest-waiting due delivery has been due (0 when none)",
            db.oldest_due_age,
        )

    # -- /healthz --------------------------------------------------------------------------

    async def components(self) -> dict[str, Component]:
        """AMI, the database, and each configured channel's peer."""
        s = self._settings
        where = f"{s.ami.host}:{s.ami.port}"
        up = self._sources.ami_connected()
        found = {
            "ami": Component(up, f"logged in to {where}" if up else f"not logged in to {where}"),
            "database": await self._database(),
        }
        sms = self._notifiers.get(Channel.SMS)
        if sms is not None:
            smsc = f"{s.smpp.host}:{s.smpp.port}"
            bound = _bound(sms)
            found["smsc"] = Component(
                bound, f"bound to {smsc}" if bound else f"not bound to {smsc}"
            )
        now = time.monotonic()
        for channel, name in SEND_COMPONENTS.items():
            if channel not in self._notifiers:
                continue
            last = self._last_send.get(channel)
            if last is None:
                found[name] = Component(True, "no send yet")
            else:
                found[name] = Component(last.ok, f"{last.detail} ({now - last.at:.0f} s ago)")
        return found

    async def _database(self) -> Component:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(DB_WAIT):
                await connections.get("default").execute_query("SELECT 1")
        except TimeoutError:
            return Component(False, f"no answer within {DB_WAIT:g} s")
        except Exception as exc:
            return Component(False, self._redact(f"{type(exc).__name__}: {exc}")[:DETAIL_MAX])
        return Component(True, f"answered in {(time.perf_counter() - started) * 1000:.0f} ms")


def _bound(sms: object) -> bool:
    return getattr(sms, "is_bound", True) is not False
