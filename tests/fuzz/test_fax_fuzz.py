"""POST /hooks/fax on the gateway's real app, with Hypothesis drawing the headers (signed,
unsigned, wrongly signed, stale, garbled), the multipart body (any fields, a TIFF that is
good, mutated or random, none or two, cut short, random boundaries) and its size (past
fax.max_bytes, declared or streamed). The answer is 200 or a 4xx, never a 5xx; a refused
request leaves no file and no row; an accepted one archives exactly the bytes sent.

(bench/http_fuzz.py and tests/e2e/test_http_fuzz.py send a fixed mix of such requests;
here Hypothesis searches and shrinks.)"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from PIL import Image

from bench.http_fuzz import SECRET, Probe, g4_tiff, multipart, send, signed
from gateway.fax.hook import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.fuzz.budget import budget
from tests.fuzz.served import FAX_MAX_BYTES, HOST, Served, serve

# Pillow warns while reading the damaged TIFFs: the damage is the point.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")
TIFF = g4_tiff((240, 120), (240, 60))
FIELDS = ["commid", "called", "caller", "caller_name", "pages", "received_at", "error", "devid"]
TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
VALUES = st.one_of(
    TEXT.map(lambda t: t.encode()),
    st.binary(max_size=60),
    st.sampled_from([b"2100001", b"002100001", b"9" * 40, b"2026-01-01T00:00:00+14:00"]),
)


SIGNINGS = ["wrong", "none", "stale", "garbled"]


@dataclass
class FaxRequest:
    body: bytes
    headers: dict[str, str]
    streamed: bool = False
    fax: bytes | None = None  # the TIFF part as sent, when there is exactly one
    notes: list[str] = field(default_factory=list)


@st.composite
def tiffs(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["good", "mutated", "cut", "random", "empty"]))
    if kind == "good":
        return TIFF
    if kind == "mutated":
        tiff = bytearray(TIFF)
        for spot, value in draw(st.lists(st.tuples(st.integers(0, 399), st.integers(0, 255)))):
            tiff[spot] = value
        return bytes(tiff)
    if kind == "cut":
        return TIFF[: draw(st.integers(0, len(TIFF)))]
    return draw(st.binary(max_size=2000)) if kind == "random" else b""


@st.composite
def fax_requests(draw: st.DrawFn) -> FaxRequest:
    names = st.sampled_from(FIELDS) | st.text(max_size=10)
    fields = draw(st.dictionaries(names, VALUES, max_size=6))
    faxes = draw(st.lists(tiffs(), max_size=2))
    for n, tiff in enumerate(faxes):
        fields["fax" if n == 0 else "fax "] = tiff  # a second file, named almost alike
    odd = st.integers(0, 3).map(lambda n: n == 0)  # one time in four: something odd
    boundary = draw(st.sampled_from(["b", "x" * 70, '=?;"', "b" * 300])) if draw(odd) else ""
    body, content_type = multipart(fields, boundary)
    shape = "whole" if not draw(odd) else draw(st.sampled_from(["cut", "random", "oversized"]))
    if shape == "cut":
        body = body[: draw(st.integers(0, len(body)))]
    elif shape == "random":
        body = draw(st.binary(max_size=3000))
    elif shape == "oversized":
        body += b"\0" * (FAX_MAX_BYTES + 1 - len(body))
    if draw(odd):
        content_type = draw(
            st.sampled_from(["multipart/form-data", "text/plain", ""])
            | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
        )
    signing = "good" if not draw(odd) else draw(st.sampled_from(SIGNINGS))
    headers = {"Content-Type": content_type} if content_type else {}
    if signing == "good":
        headers |= signed(body)
    elif signing == "wrong":
        headers |= signed(body, secret="not-the-secret")
    elif signing == "stale":
        stamp, nonce = str(int(time.time()) - 3600), "n" * 32
        headers |= {
            TIMESTAMP_HEADER: stamp,
            NONCE_HEADER: nonce,
            SIGNATURE_HEADER: sign(body, SECRET, stamp, nonce),
        }
    elif signing == "garbled":
        ascii_text = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=80)
        for name in (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER):
            headers[name] = draw(ascii_text)
    one_fax = faxes[0] if len(faxes) == 1 and shape == "whole" else None
    return FaxRequest(body, headers, draw(st.booleans()), one_fax, [shape, signing])


@pytest.fixture
async def served(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # the app sets it
    async with serve(db, tmp_path) as served:
        yield served


async def post(served: Served, request: FaxRequest) -> int:
    body: object = request.body
    if request.streamed:  # chunked: no Content-Length, the size is learnt while reading

        async def pieces() -> AsyncIterator[bytes]:
            for at in range(0, len(request.body), 65536):
                yield request.body[at : at + 65536]

        body = pieces()
    async with served.client.post("/hooks/fax", data=body, headers=request.headers) as answer:
        await answer.read()
        return answer.status


@budget(60)
@given(request=fax_requests())
@example(request=FaxRequest(b"", {}))
async def test_any_fax_upload_is_answered_4xx_or_200_and_half_writes_nothing(
    served: Served, request: FaxRequest
) -> None:
    before_files, before_rows = served.archived(), await served.rows()
    status = await post(served, request)
    new_files = served.archived() - before_files
    event(f"{status} {'/'.join(request.notes)}")
    assert status < 500, (status, request.notes)
    assert not [p for p in new_files if ".incoming" in p.parts], "a named spool file was left"
    if status not in (200, 422):
        assert new_files == set(), (status, new_files)
        assert await served.rows() == before_rows
        return
    # Archived: the TIFF exactly as sent, and a whole PDF beside it when it converted.
    tiffs = [p for p in new_files if p.suffix == ".tif"]
    assert len(tiffs) == 1, new_files
    if request.fax is not None:
        assert tiffs[0].read_bytes() == request.fax
    for pdf in (p for p in new_files if p.suffix == ".pdf"):
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")
    assert status == 422 or len(new_files) == 2
    assert served.log.exceptions == []


@budget(20)
@given(request=fax_requests(), kept=st.floats(0.0, 0.99))
async def test_an_upload_broken_off_leaves_nothing_behind(
    served: Served, request: FaxRequest, kept: float
) -> None:
    """The hook's connection drops part way through a (signed) upload: 400 or no answer,
    and neither a file nor a row is left."""
    before_files, before_rows = served.archived(), await served.rows()
    head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
    raw = (
        f"POST /hooks/fax HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n{head}"
        f"Content-Length: {len(request.body) + 1}\r\n\r\n"
    ).encode() + request.body[: int(len(request.body) * kept)]
    status = await send(served.port, Probe("fax-broken-off", raw, cut=True))
    event(f"{status}")
    assert status is None or 400 <= status < 500, status
    assert served.archived() == before_files
    assert await served.rows() == before_rows
