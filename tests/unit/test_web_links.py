"""Magic links and the link-request limit: single use, expiry, racing requests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from gateway.web.forms import parse_route
from gateway.web.links import allow_request, digest, issue_link, redeem
from models.db import Subscriber
from models.web import WebLink

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
BASE = "http://desk.example"


async def _subscriber() -> Subscriber:
    return await Subscriber.create(name="Dr A", language="en", timezone="Europe/Athens")


def _token(url: str) -> str:
    assert url.startswith(f"{BASE}/desk/auth/")
    return url.rsplit("/", 1)[1]


async def test_a_link_opens_once_and_only_its_hash_is_kept(db: str) -> None:
    s = await _subscriber()
    token = _token(await issue_link(s.id, BASE, 15, NOW))
    stored = await WebLink.get(subscriber_id=s.id)
    assert stored.token_hash == digest(token) and token not in stored.token_hash
    assert await redeem(token, NOW + timedelta(minutes=1)) == s.id
    assert await redeem(token, NOW + timedelta(minutes=2)) is None


async def test_an_expired_or_unknown_link_opens_nothing(db: str) -> None:
    s = await _subscriber()
    token = _token(await issue_link(s.id, BASE, 15, NOW))
    assert await redeem(token, NOW + timedelta(minutes=15)) is None
    assert await redeem("not-a-token", NOW) is None
    assert await redeem("x" * 500, NOW) is None


async def test_two_racers_with_one_link_get_one_session(db: str) -> None:
    s = await _subscriber()
    token = _token(await issue_link(s.id, BASE, 15, NOW))
    results = await asyncio.gather(*(redeem(token, NOW) for _ in range(5)))
    assert results.count(s.id) == 1 and results.count(None) == 4


async def test_racing_link_requests_pass_the_limit_exactly(db: str) -> None:
    allowed = await asyncio.gather(*(allow_request(["address:a@b"], 5, NOW) for _ in range(9)))
    assert allowed.count(True) == 5
    # A new clock hour is a new budget; another key has its own.
    assert await allow_request(["address:a@b"], 5, NOW + timedelta(hours=1))
    assert await allow_request(["address:c@d"], 5, NOW)


async def test_the_ip_key_limits_requests_for_many_addresses(db: str) -> None:
    for n in range(3):
        assert await allow_request([f"address:{n}", "ip:10.0.0.1"], 3, NOW)
    assert not await allow_request(["address:new", "ip:10.0.0.1"], 3, NOW)


def test_routes_are_parsed_or_refused() -> None:
    assert parse_route("telegram, sms+email") == ["telegram", "sms+email"]
    assert parse_route(" ") == []
    assert parse_route("pigeon") is None
    assert parse_route("sms+sms") is None
