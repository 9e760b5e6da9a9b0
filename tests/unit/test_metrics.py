"""gateway/metrics.py without a gateway: AMI frame counts across reconnections, what a
send's outcome says about its peer, the database's gauges (the running service:
tests/e2e/test_metrics_e2e.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import Metrics, Sources, _FrameTotal, _link_ok
from models.db import Delivery, DeliveryStatus
from models.settings import load_settings
from notifiers.base import PermanentError, TransientError


@dataclass
class Stats:
    frames: int = 0
    malformed: int = 0


def test_frames_keep_counting_across_ami_connections() -> None:
    total = _FrameTotal()
    assert total.read(None) == (0, 0)
    first = Stats(10, 1)
    assert total.read(first) == (10, 1)
    first.frames = 25  # more arrive on it after that scrape, before it is lost
    second = Stats(3)
    assert total.read(second) == (28, 1)  # the lost connection's final count is kept
    assert total.read(None) == (28, 1)  # between connections: the last one's
    assert total.read(Stats(0)) == (28, 1)


def test_a_send_s_outcome_says_whether_its_peer_answered() -> None:
    assert _link_ok(None)
    assert _link_ok(PermanentError("telegram: chat not found"))  # refused one message
    assert _link_ok(TransientError("telegram: too many requests", retry_after=3))  # 429
    assert not _link_ok(TransientError("telegram: Bad Gateway"))
    assert not _link_ok(ConnectionRefusedError())


async def test_the_outbox_and_delivery_gauges_come_from_the_database(db: str) -> None:
    now = datetime.now(UTC)
    rows = [
        ("telegram", DeliveryStatus.SENT, now),
        ("telegram", DeliveryStatus.SENT, now),
        ("sms", DeliveryStatus.PENDING, now - timedelta(seconds=90)),  # due for 90 s
        ("sms", DeliveryStatus.PENDING, now - timedelta(seconds=5)),
        ("email", DeliveryStatus.PENDING, now + timedelta(hours=1)),  # a retry, not due
    ]
    for n, (channel, status, at) in enumerate(rows):
        await Delivery.create(
            dedupe_key=f"m{n}",
            kind="message",
            channel=channel,
            address="x",
            text="t",
            status=status,
            next_attempt_at=at,
        )
    sources = Sources(lambda: False, lambda: None, lambda: 0, lambda: 0)
    body, _ = await Metrics(load_settings(None, environ={}), {}, sources).page()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert samples[("frontdesk_scrape_db_ok", ())] == 1
    deliveries = {
        labels: v for (name, labels), v in samples.items() if name == "frontdesk_deliveries"
    }
    assert deliveries == {
        (("channel", "telegram"), ("status", "sent")): 2,
        (("channel", "sms"), ("status", "pending")): 2,
        (("channel", "email"), ("status", "pending")): 1,
    }
    assert samples[("frontdesk_outbox_depth", ())] == 2
    assert 90 <= samples[("frontdesk_outbox_oldest_due_seconds", ())] < 120
