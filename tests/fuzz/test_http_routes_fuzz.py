"""Every route of the gateway's real app (listed from its router, so routes added later are
fuzzed too) and paths that are none: Hypothesis draws the method, path, query, headers and
body (random, or past the app's client_max_size), and raw requests whose framing is broken
(request line, header lines, Content-Length against Transfer-Encoding, chunk sizes). The
answer is a 4xx or a route's own success, never a 500; the only 5xx is /healthz saying
the gateway is unhealthy (503, its job); nothing is logged as an exception and no row is
written.

(tests/e2e/test_http_fuzz.py sends bench/http_fuzz.py's fixed mix; this searches and
shrinks.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from bench.http_fuzz import Probe, send
from gateway.http import MAX_HOOK_BYTES
from tests.fuzz.budget import budget
from tests.fuzz.served import HOST, Served, serve

HEALTH = "/healthz"
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO"]
TOKEN = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters=":"),
    min_size=1,
    max_size=20,
)
HEADER_VALUE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200)


def acceptable(path: str, status: int | None) -> bool:
    """No answer at all (a connection closed on framing it cannot read), a 1xx-4xx, or the
    health route's 503."""
    health = path.lstrip("/") == HEALTH.lstrip("/")  # clients and servers merge slashes
    return status is None or status < 500 or (health and status == 503)


@pytest.fixture
async def served(db: str, tmp_path: Path) -> AsyncIterator[Served]:
    async with serve(db, tmp_path) as served:
        assert {path for _, path in served.routes} >= {HEALTH, "/hooks/fax", "/hooks/mm7"}
        yield served


@budget(60)
@given(data=st.data(), body=st.binary(max_size=4000), oversized=st.integers(0, 5))
async def test_any_request_to_any_route_gets_no_500(
    served: Served, data: st.DataObject, body: bytes, oversized: int
) -> None:
    _, route = data.draw(st.sampled_from(served.routes), label="route")
    path = data.draw(
        st.sampled_from([route, route, route + "/", route + "x", "/", "/hooks", "//" + route])
    )
    query = data.draw(st.sampled_from(["", "?a=1", "?%ff%00=%zz", "?" + "q" * 5000]) | st.just(""))
    method = data.draw(st.sampled_from(METHODS))
    headers = data.draw(st.dictionaries(TOKEN, HEADER_VALUE, max_size=6))
    content_type = data.draw(
        st.sampled_from(["", "text/xml", "multipart/form-data; boundary=b", "application/json"])
    )
    if content_type:
        headers["Content-Type"] = content_type
    if oversized == 0:  # one time in six: past client_max_size
        body = b"<" * (MAX_HOOK_BYTES + 1)
    before = await served.rows()
    try:
        async with served.client.request(
            method, path + query, data=body or None, headers=headers, allow_redirects=False
        ) as answer:
            await answer.read()
            status = answer.status
    except aiohttp.ClientResponseError as exc:  # the client's parser refused the answer
        status = exc.status  # (a 400 with a body, to a HEAD the server could not read)
    event(f"{method} {route} {status}")
    assert acceptable(path, status), (method, path, status)
    if oversized == 0 and method == "POST" and path in ("/hooks/mm7", "/hooks/fax"):
        assert 400 <= status < 500
    assert served.log.exceptions == []
    assert await served.rows() == before


LINE_PIECES = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@st.composite
def raw_requests(draw: st.DrawFn, paths: list[str]) -> Probe:
    method = draw(st.sampled_from([m.encode() for m in METHODS]) | LINE_PIECES)
    path = draw(st.sampled_from([p.encode() for p in paths]) | LINE_PIECES)
    version = draw(
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9", b""]) | LINE_PIECES
    )
    lines = [b" ".join([method, path, version]), b"Host: " + HOST.encode()]
    framing = draw(
        st.sampled_from(["length", "chunked", "both", "none", "bad-length", "bad-chunks"])
    )
    body = draw(st.binary(max_size=300))
    if framing in ("length", "both"):
        lines.append(b"Content-Length: %d" % draw(st.sampled_from([len(body), len(body) + 5, 0])))
    if framing in ("chunked", "both", "bad-chunks"):
        lines.append(
            b"Transfer-Encoding: "
            + draw(st.sampled_from([b"chunked", b"gzip, chunked", b"chunked, x"]))
        )
        if framing != "bad-chunks":
            body = (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)) if body else b"0\r\n\r\n"
        else:
            body = draw(
                st.sampled_from([b"zz\r\nab\r\n", b"ffffffffffffffffff\r\n", b"5\r\nab", b"-1\r\n"])
            )
    if framing == "bad-length":
        lines.append(
            b"Content-Length: "
            + draw(st.sampled_from([b"-1", b"1e3", b"99999999999999999999", b"1, 2", b""]))
        )
    for _ in range(draw(st.integers(0, 4))):
        lines.append(
            draw(
                st.sampled_from(
                    [
                        b"X-A: b",
                        b"no colon",
                        b" folded",
                        b"X-Nul: \x00",
                        b": empty",
                        b"X-Big: " + b"a" * 9000,
                    ]
                )
                | LINE_PIECES
            )
        )
    lines.append(b"Connection: close")
    raw = b"\r\n".join(lines) + b"\r\n\r\n" + body
    return Probe(framing, raw, cut=draw(st.booleans()))


@budget(60)
@given(data=st.data())
@example(data=None)
async def test_malformed_raw_requests_get_a_4xx_or_a_closed_connection(
    served: Served, data: st.DataObject | None
) -> None:
    paths = sorted({path for _, path in served.routes})
    probe = (
        Probe(
            "te-and-length",
            b"POST /hooks/mm7 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        )
        if data is None
        else data.draw(raw_requests(paths))
    )
    before = await served.rows()
    status = await send(served.port, probe)
    event(f"{probe.kind} {status}")
    path = probe.raw.split(b" ", 2)[1].decode("latin-1") if probe.raw.count(b" ") >= 2 else ""
    assert acceptable(path, status), (status, probe.raw[:200])
    assert served.log.exceptions == []
    assert await served.rows() == before
