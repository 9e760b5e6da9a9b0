"""POST /hooks/mm7 on the gateway's real app: random bytes, random XML, SOAP envelopes with
random fields, XML bombs (entity expansion, external entities, DTDs), multipart/related
bodies (random parts, `start` parameters, nesting), wrong content types and bodies past the
app's limit. The MMSC's credentials are right most of the time, so the parser is reached.
The answer is a 4xx (or 200 for a report we could have asked for: none here), never a 5xx,
and no row is written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from bench.http_fuzz import MM7_AUTH
from gateway.http import MAX_HOOK_BYTES
from tests.fuzz.budget import budget
from tests.fuzz.served import Served, serve

NS = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
OPERATIONS = ["DeliveryReportReq"] * 4 + ["DeliveryReq", "SubmitRsp", "Fault", ""]
MM_STATUSES = ["Retrieved", "Rejected", "Deferred", "Expired", "Forwarded", "x", ""]
XML_TEXT = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=30).map(
    lambda t: t.replace("&", "&amp;").replace("<", "&lt;")
)

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10)
        for n in range(1, 10)
    )
    + b']><env:Envelope xmlns:env="'
    + SOAP.encode()
    + b'"><env:Body>&lol9;</env:Body>'
    b"</env:Envelope>"
)
BOMBS = [
    BILLION_LAUGHS,
    # Quadratic blow-up: one large entity referenced many times.
    b'<!DOCTYPE e [<!ENTITY a "' + b"a" * 50_000 + b'">]><e>' + b"&a;" * 5_000 + b"</e>",
    b'<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]><e>&x;</e>',
    b'<!DOCTYPE e SYSTEM "http://127.0.0.1:9/evil.dtd"><e/>',
    b'<!DOCTYPE e [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]><e/>',
    b'<e xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="/etc/passwd"/></e>',
    b"<e>" * 100_000 + b"</e>" * 100_000,  # deep nesting
    b'<?xml version="1.0" encoding="x-unknown"?><e/>',
    b'<?xml version="1.0" encoding="utf-16"?><e/>',
]


def nested_multipart(depth: int) -> tuple[bytes, str]:
    """Parts within parts, `depth` deep: the email parser recurses once per level."""
    body = b"".join(
        b"--b%d\r\nContent-Type: multipart/related; boundary=b%d\r\n\r\n" % (n, n + 1)
        for n in range(depth)
    )
    return body, "multipart/related; boundary=b0"


@dataclass
class Mm7Request:
    body: bytes
    content_type: str
    authorization: str = MM7_AUTH
    kind: str = ""


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    operation = draw(st.sampled_from(OPERATIONS))
    children = {
        "MM7Version": draw(st.sampled_from(["6.8.0", ""]) | XML_TEXT),
        "MessageID": draw(st.sampled_from(["m-1", "1' OR '1'='1"]) | XML_TEXT),
        "Recipient": f"<Number>{draw(st.sampled_from(['306912345678', '+30691']) | XML_TEXT)}"
        "</Number>",
        "MMStatus": draw(st.sampled_from(MM_STATUSES) | XML_TEXT),
        "Date": draw(XML_TEXT),
    }
    whole = draw(st.booleans())  # half the time every child, so that reports reach the lookup
    kept = (
        sorted(children)
        if whole
        else draw(st.lists(st.sampled_from(sorted(children)), unique=True))
    )
    inner = "".join(f"<{k}>{children[k]}</{k}>" for k in kept)
    header = f'<mm7:TransactionID xmlns:mm7="{NS}">{draw(XML_TEXT)}</mm7:TransactionID>'
    op = f'<{operation} xmlns="{NS}">{inner}</{operation}>' if operation else inner
    xml = (
        f'<?xml version="1.0"?><env:Envelope xmlns:env="{SOAP}"><env:Header>{header}'
        f"</env:Header><env:Body>{op}</env:Body></env:Envelope>"
    ).encode()
    if draw(st.integers(0, 4)) == 0:
        xml = xml[: draw(st.integers(0, len(xml)))]
    return xml


XML = st.recursive(
    XML_TEXT,
    lambda inner: st.tuples(
        st.sampled_from(["a", "env:Body", "x:y", "Envelope"]), st.lists(inner, max_size=4)
    ).map(lambda t: f"<{t[0]}>{''.join(t[1])}</{t[0]}>"),
    max_leaves=20,
).map(str.encode)


@st.composite
def related(draw: st.DrawFn) -> tuple[bytes, str]:
    """multipart/related with the envelope (or anything) in random parts."""
    boundary = draw(st.sampled_from(["mm7", "=_x", "a" * 70]))
    parts = draw(st.lists(envelopes() | st.binary(max_size=200), min_size=0, max_size=3))
    ids = draw(
        st.lists(
            st.sampled_from(["<soap>", "soap", "", "<x>"]), min_size=len(parts), max_size=len(parts)
        )
    )
    body = b"".join(
        b"--%s\r\nContent-Type: text/xml\r\nContent-ID: %s\r\n\r\n%s\r\n"
        % (boundary.encode(), cid.encode(), part)
        for part, cid in zip(parts, ids, strict=True)
    )
    if draw(st.booleans()):
        body += b"--%s--\r\n" % boundary.encode()
    start = draw(
        st.sampled_from(["", '; start="<soap>"', "; start=<nothing>", '; type="text/xml"'])
    )
    return body, f'multipart/related; boundary="{boundary}"{start}'


@st.composite
def mm7_requests(draw: st.DrawFn) -> Mm7Request:
    kind = draw(
        st.sampled_from(
            ["envelope", "envelope", "xml", "bytes", "bomb", "related", "nested", "oversized"]
        )
    )
    content_type = 'text/xml; charset="utf-8"'
    if kind == "envelope":
        body = draw(envelopes())
    elif kind == "xml":
        body = draw(XML)
    elif kind == "bytes":
        body = draw(st.binary(max_size=2000))
    elif kind == "bomb":
        body = draw(st.sampled_from(BOMBS))
    elif kind == "related":
        body, content_type = draw(related())
    elif kind == "nested":
        body, content_type = nested_multipart(draw(st.integers(1, 3000)))
    else:
        body = b"<" * (MAX_HOOK_BYTES + 1)
    if draw(st.integers(0, 4)) == 0:
        content_type = draw(
            st.sampled_from(
                [
                    "",
                    "application/json",
                    "multipart/related",
                    "text/xml; charset=x-nope",
                    "multipart/x; boundary=",
                ]
            )
            | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=50)
        )
    authorization = (
        MM7_AUTH if draw(st.integers(0, 5)) else draw(st.sampled_from(["", "Basic !!", "Bearer x"]))
    )
    return Mm7Request(body, content_type, authorization, kind)


@pytest.fixture
async def served(db: str, tmp_path: Path) -> AsyncIterator[Served]:
    async with serve(db, tmp_path) as served:
        yield served


@budget(60)
@given(request=mm7_requests())
@example(request=Mm7Request(*nested_multipart(1000), kind="nested"))  # was a 500
@example(request=Mm7Request(BILLION_LAUGHS, "text/xml", kind="bomb"))
@example(request=Mm7Request(BOMBS[-2], "text/xml", kind="bomb"))  # was a 500: LookupError
async def test_any_mm7_post_is_answered_4xx_never_5xx(served: Served, request: Mm7Request) -> None:
    before = await served.rows()
    headers = {"Authorization": request.authorization} if request.authorization else {}
    if request.content_type:
        headers["Content-Type"] = request.content_type
    async with served.client.post("/hooks/mm7", data=request.body, headers=headers) as answer:
        text = await answer.text()
        status = answer.status
    event(f"{request.kind} {status}")
    assert status < 500, (status, text)
    assert status != 200  # no report here is about an MMS we sent
    if request.kind == "bomb" and request.authorization == MM7_AUTH:
        assert status in (400, 415, 413), status
        assert "lollol" not in text and "root:" not in text
    assert await served.rows() == before
    assert served.log.exceptions == []
