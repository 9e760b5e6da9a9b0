"""The HTTP fuzz of bench/http_fuzz.py, small and in-process: every route of the gateway's
app, listed from its router, gets malformed, oversized, unsigned, wrongly signed,
truncated, huge-header and random-method requests; none is answered 500 and the gateway
logs no exception."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image

from bench.http_fuzz import Fuzzer, Samples, fuzz, rss_mb, serve_gateway

REQUESTS = 240
SEED = 7
KINDS = {
    "random-method",
    "unknown-path",
    "garbage",
    "huge-header",
    "bad-chunked",
    "fax-unsigned",
    "fax-wrong-signature",
    "fax-odd-headers",
    "fax-signed-malformed",
    "fax-signed-tiff",
    "fax-truncated",
    "mm7-random",
    "mm7-report",
    "mm7-oversized",
    "health",
}


async def test_fuzzing_every_route_gives_no_500_and_no_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # the app sets it
    # Small limits so that oversized uploads and over-large pages come cheap.
    async with serve_gateway(tmp_path, max_bytes=2_000_000, max_pixels=4_000_000) as served:
        assert {path for _, path in served.routes} >= {"/healthz", "/hooks/fax", "/hooks/mm7"}
        fuzzer = Fuzzer(served.routes, 2_000_000, random.Random(SEED), Samples.make(huge_side=3000))
        before = rss_mb()
        tally = await fuzz(fuzzer, served.port, concurrency=4, count=REQUESTS, seconds=None)
        after = rss_mb()
        given = dict(served.log.statuses)
        exceptions = list(served.log.exceptions)
    print(f"\n{tally.requests} requests; answers {sorted(given.items())}")
    print(f"RSS (this process) {before:.0f} MB before, {after:.0f} MB after")
    assert tally.requests == REQUESTS and set(tally.by_kind) >= KINDS
    assert 500 not in given and tally.five_hundreds == [], tally.kind_status
    assert exceptions == []
    # Faxes were taken whole, refused for their fields or pages, and the rest refused.
    assert {200, 400, 401, 413, 422} <= set(given)
    assert after - before < 200, "the gateway kept what it was sent"
