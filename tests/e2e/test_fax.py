"""Received faxes: the real HylaFAX hook script, run as HylaFAX would, against the real
/hooks/fax handler on loopback; plus the signature and the TIFF→PDF conversion alone."""

from __future__ import annotations

import asyncio
import importlib.machinery
import importlib.util
import io
import json
import os
import re
import secrets
import shutil
import socket
import sys
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image, TiffImagePlugin

from bench.http_fuzz import g4_tiff as fuzz_g4_tiff
from gateway.fax import hook as fax_module
from gateway.fax.hook import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ConversionGate,
    CorruptFax,
    FaxAuthError,
    NonceCache,
    ReceivedFax,
    fax_handler,
    sign,
    tiff_to_pdf,
    verify_signature,
)
from models.settings import FaxSettings

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "deploy" / "hylafax" / "faxrcvd-frontdesk"
FAX = Path(__file__).parents[1] / "fixtures" / "fax"
SECRET = "test-secret-" + "x" * 20
QFILE = "recvq/fax000000012.tif"
# One (width, height) page size in points for a 1728-dot line at 204 dpi on A4.
A4_FAX_POINTS = (609.88, 841.96)
# Pillow warns while reading a damaged TIFF's directory; the damage is the point there.
CORRUPT_EXIF = pytest.mark.filterwarnings("ignore:Corrupt EXIF data")


def pdf_page_count(pdf: bytes) -> int:
    """Count page objects in the PDF text itself, independently of Pillow and img2pdf."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def media_boxes(pdf: bytes) -> list[tuple[float, float]]:
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    return [(round(float(w), 2), round(float(h), 2)) for w, h in boxes]


def archived_files(archive: Path) -> list[Path]:
    """What the archive keeps (uploads in flight are anonymous files: never listed)."""
    return sorted(p for p in archive.rglob("*") if p.is_file())


def load_hook() -> ModuleType:
    """The hook script as a module, to build requests exactly as it does."""
    loader = importlib.machinery.SourceFileLoader("faxrcvd_frontdesk", str(HOOK))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


hook = load_hook()


# --- A gateway on loopback, and HylaFAX running the hook -------------------------------


@dataclass
class Gateway:
    url: str
    archive: Path
    settings: FaxSettings
    faxes: list[ReceivedFax] = field(default_factory=list)


async def _start(tmp_path: Path, **overrides: Any) -> tuple[Gateway, TestServer]:
    settings = FaxSettings(**{"secret": SECRET, "archive": str(tmp_path / "archive"), **overrides})
    gateway = Gateway(url="", archive=tmp_path / "archive", settings=settings)

    async def on_fax(fax: ReceivedFax) -> None:
        gateway.faxes.append(fax)

    # As the lead mounts it: an app whose client_max_size suits small hooks only.
    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/hooks/fax", fax_handler(settings, on_fax))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    gateway.url = str(server.make_url("")).rstrip("/")
    return gateway, server


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    gw, server = await _start(tmp_path)
    yield gw
    await server.close()


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    """A HylaFAX-like spool with the 3-page G4 fax in recvq/."""
    root = tmp_path / "spool"
    (root / "recvq").mkdir(parents=True)
    shutil.copy(FAX / "g4-3pages.tif", root / QFILE)
    return root


@dataclass
class Run:
    code: int
    stderr: str


async def run_hook(
    spool: Path, *args: str, env: Mapping[str, str] | None = None, url: str = ""
) -> Run:
    """Run the hook as HylaFAX does: in the spool, with qfile relative to it."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "FRONTDESK_FAX_CONF": str(spool / "no-such.conf"),
        "FRONTDESK_FAX_URL": url,
        "FRONTDESK_FAX_SECRET": SECRET,
        "FRONTDESK_FAX_BACKOFF": "0.01",  # retries stay quick
        **(env or {}),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HOOK),
        *args,
        cwd=spool,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Run(process.returncode, stderr.decode())


# --- The hook end to end ---------------------------------------------------------------


async def test_hook_delivers_a_g4_fax_as_pdf(gateway: Gateway, spool: Path) -> None:
    # URL and secret from the conf file, as on a fax server; the argument mapping by default.
    conf = spool / "fax-hook.conf"
    conf.write_text(f'# test\nFRONTDESK_FAX_URL="{gateway.url}"\nFRONTDESK_FAX_SECRET={SECRET}\n')
    conf.chmod(0o600)
    env = {"FRONTDESK_FAX_CONF": str(conf), "FRONTDESK_FAX_SECRET": ""}  # empty: not set
    before = datetime.now(UTC)
    run = await run_hook(
        spool, QFILE, "ttyS0", "000000123", "", "+302101234567", "+30 210 000 0001", env=env
    )
    after = datetime.now(UTC)
    assert run.code == 0, run.stderr
    assert SECRET not in run.stderr
    assert "delivered" in run.stderr and "3 page(s)" in run.stderr
    [fax] = gateway.faxes
    assert fax.pdf is not None and fax.pdf.startswith(b"%PDF")
    assert fax.pages == 3 and pdf_page_count(fax.pdf) == 3
    assert media_boxes(fax.pdf) == [A4_FAX_POINTS] * 3  # 204x196 dpi kept
    assert b"/CCITTFaxDecode" in fax.pdf
    assert (fax.caller, fax.called, fax.called_raw) == (
        "+302101234567",
        "302100000001",
        "+30 210 000 0001",
    )
    assert (fax.complete, fax.error, fax.problem, fax.commid, fax.devid) == (
        True,
        "",
        "",
        "000000123",
        "ttyS0",
    )
    # Archived: the original byte for byte, and the PDF beside it, under the (UTC) date it
    # reached the gateway.
    assert fax.tiff_path.read_bytes() == (FAX / "g4-3pages.tif").read_bytes()
    assert fax.tiff_path.name == "fax-000000123.tif"
    day = fax.tiff_path.parent.relative_to(gateway.archive).parts
    assert day in {(f"{t:%Y}", f"{t:%m}", f"{t:%d}") for t in (before, after)}
    assert fax.pdf_path is not None and fax.pdf_path.read_bytes() == fax.pdf
    assert abs(fax.received_at.timestamp() - (spool / QFILE).stat().st_mtime) < 1
    assert (spool / QFILE).exists()  # HylaFAX's faxcron ages recvq, not us


async def test_hook_maps_callids_and_devid_as_configured(gateway: Gateway, spool: Path) -> None:
    # iaxmodem style: CallID1 number, CallID2 name; the DDI from the modem the fax came in on.
    env = {
        "FRONTDESK_FAX_CALLER_NAME_FROM": "callid2",
        "FRONTDESK_FAX_CALLED_FROM": "devid-map",
        "FRONTDESK_FAX_DEVID_MAP": "ttyIAX0=+302100000001, ttyIAX1=+302100000002",
    }
    run = await run_hook(
        spool, QFILE, "ttyIAX1", "7", "", "2101234567", "Μαρία Π.", env=env, url=gateway.url
    )
    assert run.code == 0, run.stderr
    [fax] = gateway.faxes
    assert (fax.caller, fax.caller_name, fax.called) == ("2101234567", "Μαρία Π.", "302100000002")


async def test_g3_fax_converts(gateway: Gateway, spool: Path) -> None:
    shutil.copy(FAX / "g3-2pages.tif", spool / QFILE)
    run = await run_hook(
        spool, QFILE, "ttyS0", "8", "", "+302101234567", "2100001", url=gateway.url
    )
    assert run.code == 0, run.stderr
    [fax] = gateway.faxes
    assert fax.pdf is not None and pdf_page_count(fax.pdf) == fax.pages == 2
    assert media_boxes(fax.pdf) == [A4_FAX_POINTS] * 2  # 204x98 dpi kept


async def test_fax_failed_part_way_arrives_incomplete(gateway: Gateway, spool: Path) -> None:
    # The sender meant 3 pages; the line dropped after 2. faxinfo (a stand-in) counts them.
    shutil.copy(FAX / "g3-2pages.tif", spool / QFILE)
    faxinfo = spool / "faxinfo"
    faxinfo.write_text("#!/bin/sh\nprintf '%s:\\n  Sender: x\\n   Pages: 2\\n' \"$1\"\n")
    faxinfo.chmod(0o755)
    error = "RSPREC error/got DCN (sender abort)"
    run = await run_hook(
        spool,
        QFILE,
        "ttyS0",
        "000000124",
        error,
        "+302101234567",
        "2100001",
        env={"FRONTDESK_FAXINFO": str(faxinfo)},
        url=gateway.url,
    )
    assert run.code == 0, run.stderr
    [fax] = gateway.faxes
    assert (fax.complete, fax.error, fax.pages, fax.reported_pages) == (False, error, 2, 2)
    assert fax.pdf is not None and pdf_page_count(fax.pdf) == 2


@CORRUPT_EXIF
async def test_corrupt_tiff_is_archived_and_reported(gateway: Gateway, spool: Path) -> None:
    shutil.copy(FAX / "corrupt.tif", spool / QFILE)
    run = await run_hook(
        spool, QFILE, "ttyS0", "125", "", "+302101234567", "2100001", url=gateway.url
    )
    # Received and archived by the gateway, admins told: the hook's job is done.
    assert run.code == 0, run.stderr
    assert "WARNING" in run.stderr and "cannot convert" in run.stderr
    [fax] = gateway.faxes
    assert fax.pdf is None and fax.pdf_path is None and fax.pages == 0 and not fax.complete
    assert "unreadable TIFF" in fax.problem
    assert fax.tiff_path.read_bytes() == (FAX / "corrupt.tif").read_bytes()


@CORRUPT_EXIF
async def test_truncated_tiff_gives_the_pages_that_decode(gateway: Gateway, spool: Path) -> None:
    shutil.copy(FAX / "g4-truncated.tif", spool / QFILE)
    run = await run_hook(
        spool, QFILE, "ttyS0", "126", "", "+302101234567", "2100001", url=gateway.url
    )
    assert run.code == 0, run.stderr
    [fax] = gateway.faxes
    assert fax.pdf is not None and pdf_page_count(fax.pdf) == fax.pages == 2
    assert "first 2 page" in fax.problem and not fax.complete
    assert "WARNING: only the first 2 page(s)" in run.stderr


async def test_retried_delivery_is_archived_again_not_overwritten(
    gateway: Gateway, spool: Path
) -> None:
    for _ in range(2):
        run = await run_hook(spool, QFILE, "ttyS0", "127", "", "1", "2", url=gateway.url)
        assert run.code == 0, run.stderr
    names = [fax.tiff_path.name for fax in gateway.faxes]
    assert names == ["fax-127.tif", "fax-127-2.tif"]
    assert all(fax.commid == "127" for fax in gateway.faxes)


async def test_on_fax_failure_answers_500_and_the_hook_delivers_again(
    tmp_path: Path, spool: Path
) -> None:
    settings = FaxSettings(secret=SECRET, archive=str(tmp_path / "archive"))
    delivered: list[ReceivedFax] = []

    async def on_fax(fax: ReceivedFax) -> None:
        delivered.append(fax)
        if len(delivered) == 1:
            raise RuntimeError("database is down")

    app = web.Application()
    app.router.add_post("/hooks/fax", fax_handler(settings, on_fax))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        run = await run_hook(spool, QFILE, "ttyS0", "130", "", "1", "2", url=url)
    finally:
        await server.close()
    assert run.code == 0, run.stderr
    assert "attempt 1/6" in run.stderr and "HTTP 500 (the gateway could not hand" in run.stderr
    # Both attempts archived (nothing overwritten); on_fax saw the same commid twice.
    assert [fax.tiff_path.name for fax in delivered] == ["fax-130.tif", "fax-130-2.tif"]


async def test_wrong_secret_in_the_hook_fails_clearly(gateway: Gateway, spool: Path) -> None:
    run = await run_hook(
        spool,
        QFILE,
        "ttyS0",
        "128",
        "",
        env={"FRONTDESK_FAX_SECRET": "not-the-secret"},
        url=gateway.url,
    )
    assert run.code == 3
    assert "bad signature" in run.stderr and "FRONTDESK_FAX_SECRET" in run.stderr
    assert "not-the-secret" not in run.stderr
    assert f"TIFF stays at {QFILE}" in run.stderr
    assert gateway.faxes == [] and (spool / QFILE).exists()


async def test_gateway_down_retries_then_keeps_the_tiff(spool: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = await run_hook(
        spool,
        QFILE,
        "ttyS0",
        "129",
        "",
        env={"FRONTDESK_FAX_RETRIES": "2"},
        url=f"http://127.0.0.1:{port}",
    )
    assert run.code == 1
    assert run.stderr.count("retrying") == 2
    assert "gave up after 3 attempt(s)" in run.stderr and "NOT delivered" in run.stderr
    assert (spool / QFILE).read_bytes() == (FAX / "g4-3pages.tif").read_bytes()


async def test_hook_usage_and_missing_configuration(spool: Path) -> None:
    run = await run_hook(spool, QFILE, "ttyS0")
    assert run.code == 2 and "usage" in run.stderr
    run = await run_hook(spool, QFILE, "ttyS0", "1", "")  # no URL
    assert run.code == 2 and "FRONTDESK_FAX_URL" in run.stderr
    run = await run_hook(spool, "recvq/missing.tif", "ttyS0", "1", "", url="http://127.0.0.1:9")
    assert run.code == 2 and "no fax to deliver" in run.stderr


# --- The handler refusing requests -----------------------------------------------------


def signed_request(
    body: bytes, secret: str = SECRET, timestamp: int | None = None, nonce: str | None = None
) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    once = nonce or secrets.token_hex(16)
    return {
        TIMESTAMP_HEADER: stamp,
        NONCE_HEADER: once,
        SIGNATURE_HEADER: sign(body, secret, stamp, once),
    }


def upload(tiff: bytes = b"II*\x00", **extra: str) -> tuple[bytes, str]:
    fields = {"commid": "200", "caller": "+302101234567", "called": "2100001", **extra}
    body, content_type = hook.build_body(fields, "fax000000200.tif", tiff)
    return body, content_type


async def post(
    gateway: Gateway, body: bytes, headers: Mapping[str, str], content_type: str
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gateway.url + "/hooks/fax",
            data=body,
            headers={**headers, "Content-Type": content_type},
        ) as response,
    ):
        return response.status, await response.json()


# Timestamps are whole seconds: stay clear of the 300 s edge.
@pytest.mark.parametrize(
    ("make_headers", "reason"),
    [
        (lambda body: {}, "unsigned request"),
        (lambda body: signed_request(body, secret="wrong"), "bad signature"),
        (lambda body: signed_request(body + b"x"), "bad signature"),
        (lambda body: signed_request(body, timestamp=int(time.time()) - 310), "stale timestamp"),
        (lambda body: signed_request(body, timestamp=int(time.time()) + 310), "future"),
        (lambda body: {**signed_request(body), SIGNATURE_HEADER: "md5=00"}, "malformed signature"),
    ],
    ids=["unsigned", "wrong-secret", "body-changed", "stale", "future", "malformed"],
)
async def test_handler_refuses_bad_signatures(
    gateway: Gateway, make_headers: Callable[[bytes], dict[str, str]], reason: str
) -> None:
    body, content_type = upload((FAX / "g4-3pages.tif").read_bytes())
    status, answer = await post(gateway, body, make_headers(body), content_type)
    assert (status, answer["ok"]) == (401, False) and reason in answer["error"]
    assert gateway.faxes == [] and archived_files(gateway.archive) == []


async def test_handler_refuses_a_replayed_nonce(gateway: Gateway) -> None:
    body, content_type = upload((FAX / "g4-3pages.tif").read_bytes())
    headers = signed_request(body)
    assert (await post(gateway, body, headers, content_type))[0] == 200
    status, answer = await post(gateway, body, headers, content_type)
    assert (status, answer["error"]) == (401, "replayed nonce")
    assert len(gateway.faxes) == 1


async def test_handler_off_without_a_secret(tmp_path: Path) -> None:
    gw, server = await _start(tmp_path, secret="")
    try:
        body, content_type = upload()
        status, answer = await post(gw, body, signed_request(body), content_type)
        assert (status, answer["error"]) == (401, "fax hook is off (no secret configured)")
    finally:
        await server.close()


async def test_oversized_upload_is_refused(tmp_path: Path, spool: Path) -> None:
    gw, server = await _start(tmp_path, max_bytes=4096)
    try:
        run = await run_hook(spool, QFILE, "ttyS0", "131", "", url=gw.url)
        assert run.code == 3 and "HTTP 413 (upload over 4096 bytes)" in run.stderr
        body, content_type = upload((FAX / "g4-3pages.tif").read_bytes())
        assert len(body) > 4096
        status, answer = await post(gw, body, signed_request(body), content_type)
        assert status == 413 and "4096" in answer["error"]
        # Without a Content-Length too (chunked): cut off while streaming.
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                gw.url + "/hooks/fax",
                data=_chunks(body),
                headers={**signed_request(body), "Content-Type": content_type},
            ) as response,
        ):
            assert response.status == 413
        assert gw.faxes == []
    finally:
        await server.close()


async def _chunks(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_uploads_above_the_apps_client_max_size_are_accepted(gateway: Gateway) -> None:
    # The app allows 1 MiB bodies (other hooks are small); fax.max_bytes governs /hooks/fax.
    body, content_type = upload((FAX / "g4-3pages.tif").read_bytes(), padding="p" * (2 << 20))
    status, answer = await post(gateway, body, signed_request(body), content_type)
    assert (status, answer["pages"]) == (200, 3)


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (
            b'--b\r\nContent-Disposition: form-data; name="commid"\r\n\r\n1\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
            "no 'fax' file",
        ),
        (b"--b\r\nno end", "multipart/form-data; boundary=b", "malformed multipart"),
        (b"II*\x00", "image/tiff", "expected multipart/form-data"),
    ],
    ids=["no-fax", "unterminated", "not-multipart"],
)
async def test_signed_but_malformed_uploads_are_bad_requests(
    gateway: Gateway, body: bytes, content_type: str, reason: str
) -> None:
    status, answer = await post(gateway, body, signed_request(body), content_type)
    assert status == 400 and reason in answer["error"]
    assert gateway.faxes == []


# --- The pieces alone ------------------------------------------------------------------


def test_verify_signature_accepts_the_hooks_signature() -> None:
    body, now = b"payload", time.time()
    timestamp, nonce = str(int(now)), secrets.token_hex(16)
    headers = {
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: hook.sign(body, SECRET, timestamp, nonce),
    }
    nonces = NonceCache()
    verify_signature(headers, body, SECRET, now, 300, nonces)
    assert len(nonces) == 1  # the cache given, even while it is empty
    with pytest.raises(FaxAuthError, match="replayed nonce"):
        verify_signature(headers, body, SECRET, now + 1, 300, nonces)
    with pytest.raises(FaxAuthError, match="stale"):
        verify_signature(headers, body, SECRET, now + 301, 300, NonceCache())
    with pytest.raises(FaxAuthError, match="off"):
        verify_signature(headers, body, "", now, 300, NonceCache())


def test_nonce_cache_is_bounded_and_forgets_expired_nonces() -> None:
    cache = NonceCache(max_entries=3)
    assert cache.add("a", expires=10, now=0) and not cache.add("a", expires=10, now=5)
    for nonce, expires in (("b", 20), ("c", 30), ("d", 40)):
        assert cache.add(nonce, expires, now=5)
    assert len(cache) == 3  # "a", closest to expiry, went first
    assert cache.add("e", expires=50, now=25)  # "a" and "b" expired by now
    assert len(cache) == 3 and not cache.add("d", expires=40, now=26)


@CORRUPT_EXIF
def test_tiff_to_pdf_on_the_fixtures() -> None:
    g4 = tiff_to_pdf((FAX / "g4-3pages.tif").read_bytes())
    assert (g4.pages, pdf_page_count(g4.pdf), g4.problem) == (3, 3, "")
    g3 = tiff_to_pdf((FAX / "g3-2pages.tif").read_bytes())
    assert (g3.pages, pdf_page_count(g3.pdf)) == (2, 2)
    cut = tiff_to_pdf((FAX / "g4-truncated.tif").read_bytes())
    assert (cut.pages, pdf_page_count(cut.pdf)) == (2, 2) and "page 3" in cut.problem


def png() -> bytes:
    out = io.BytesIO()
    Image.new("1", (8, 8)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        ((FAX / "corrupt.tif").read_bytes(), "not a TIFF"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "not a TIFF"),
        ((FAX / "g4-3pages.tif").read_bytes()[:400], "not a TIFF"),
        (png(), "not a TIFF but PNG"),
    ],
    ids=["empty", "garbage", "pdf", "cut-in-page-1", "png"],
)
@CORRUPT_EXIF
def test_tiff_to_pdf_refuses_what_is_not_a_fax(data: bytes, message: str) -> None:
    with pytest.raises(CorruptFax, match=message):
        tiff_to_pdf(data)


# --- Bad metadata: archived first, then refused (422), never a 500 ----------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"received_at": "0001-01-01T00:00:00+14:00"}, "received_at"),  # before year 1 in UTC
        ({"received_at": "9999-12-31T23:59:59-14:00"}, "received_at"),  # after year 9999
        ({"received_at": "yesterday"}, "received_at"),
        ({"received_at": "2999-01-01T00:00:00+00:00"}, "received_at"),
        ({"received_at": "1970-01-01T00:00:00+00:00"}, "received_at"),
        ({"pages": "²"}, "pages"),  # a digit to str.isdigit, not to int()
        ({"pages": "9" * 40}, "pages"),
        ({"commid": "../../" + "x" * 300}, "commid"),
        ({"called": "9" * 60}, "called"),  # longer than any number (or the DDI column)
    ],
    ids=[
        "year-1",
        "year-9999",
        "words",
        "future",
        "epoch",
        "superscript",
        "huge-pages",
        "path",
        "long-called",
    ],
)
async def test_bad_metadata_is_archived_handed_on_and_answered_422(
    gateway: Gateway, extra: dict[str, str], field: str
) -> None:
    tiff = (FAX / "g4-3pages.tif").read_bytes()
    body, content_type = upload(tiff, **extra)
    before = datetime.now(UTC)
    status, answer = await post(gateway, body, signed_request(body), content_type)
    assert status == 422, answer
    assert answer["bad_metadata"].startswith(field) and answer["pages"] == 3
    # Kept, converted and handed on all the same, dated when it reached the gateway.
    [fax] = gateway.faxes
    assert fax.tiff_path.read_bytes() == tiff and fax.tiff_path.name == answer["archived"]
    assert fax.pages == 3 and fax.pdf is not None and fax.bad_metadata == answer["bad_metadata"]
    assert before <= fax.received_at <= datetime.now(UTC)
    assert fax.tiff_path.resolve().is_relative_to(gateway.archive.resolve())
    assert fax.reported_pages is None or fax.reported_pages < 100_000


async def test_good_metadata_is_taken_as_sent(gateway: Gateway) -> None:
    body, content_type = upload(
        (FAX / "g4-3pages.tif").read_bytes(), received_at="2024-03-01T10:00:00+02:00", pages="3"
    )
    status, answer = await post(gateway, body, signed_request(body), content_type)
    assert status == 200 and "bad_metadata" not in answer
    [fax] = gateway.faxes
    assert fax.received_at == datetime(2024, 3, 1, 8, tzinfo=UTC) and fax.reported_pages == 3
    assert fax.bad_metadata == ""


def test_the_hook_explains_a_422_for_bad_fields() -> None:
    bad = json.dumps({"ok": False, "bad_metadata": "received_at '1-1-1' is not ..."})
    assert "refused some of this hook's fields (received_at" in hook.warning_422("q.tif", bad)
    unreadable = json.dumps({"ok": False, "problem": "unreadable TIFF: no pages"})
    assert "cannot convert it (unreadable TIFF" in hook.warning_422("q.tif", unreadable)


# --- Memory: streamed uploads, pages checked before decoding, conversions capped --------


def g4_tiff(*sizes: tuple[int, int]) -> bytes:
    """A white G4 TIFF with one page of each size: tiny on disk, big once decoded."""
    return fuzz_g4_tiff(*sizes, lines=False)


async def test_uploads_stream_to_disk_instead_of_memory(gateway: Gateway) -> None:
    padding = "p" * (24 << 20)
    body, content_type = upload((FAX / "g4-3pages.tif").read_bytes(), padding=padding)
    del padding
    headers = {**signed_request(body), "Content-Type": content_type}
    tracemalloc.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                gateway.url + "/hooks/fax", data=_chunks(body, 1 << 16), headers=headers
            ) as response,
        ):
            assert response.status == 200
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The 24 MB body is never held whole, let alone in several copies.
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MB"
    [fax] = gateway.faxes
    assert fax.pages == 3 and fax.tiff_path.read_bytes() == (FAX / "g4-3pages.tif").read_bytes()


async def test_a_page_over_max_pixels_is_refused_before_it_decodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[tuple[int, int]] = []
    load = TiffImagePlugin.TiffImageFile.load

    def recording_load(self: TiffImagePlugin.TiffImageFile) -> Any:
        decoded.append(self.size)
        return load(self)

    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "load", recording_load)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    gw, server = await _start(tmp_path, max_pixels=5_000_000)
    try:
        assert Image.MAX_IMAGE_PIXELS == 5_000_000  # Pillow's own guard follows the setting
        huge = g4_tiff((3000, 3000))
        body, content_type = upload(huge)
        status, answer = await post(gw, body, signed_request(body), content_type)
        assert status == 422 and "page 1 is too large (3000 x 3000 pixels" in answer["problem"]
        # Page 2 of a fax over the limit: page 1 goes out, the fax is marked incomplete.
        body, content_type = upload(g4_tiff((1728, 2292), (3000, 3000)))
        status, answer = await post(gw, body, signed_request(body), content_type)
        assert (status, answer["pages"]) == (200, 1) and "page 2 is too large" in answer["problem"]
    finally:
        await server.close()
    assert (3000, 3000) not in decoded and (1728, 2292) in decoded
    unreadable, partial = gw.faxes
    assert unreadable.pdf_path is None and unreadable.tiff_path.read_bytes() == huge
    assert partial.pdf is not None and pdf_page_count(partial.pdf) == 1 and not partial.complete


async def test_conversions_wait_for_a_free_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    running, peak = [0], [0]
    lock = threading.Lock()
    convert = fax_module.convert_tiff

    def blocking_convert(source: Path, out: Any, max_pixels: int) -> tuple[int, str]:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            release.wait(timeout=30)
            return convert(source, out, max_pixels)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(fax_module, "convert_tiff", blocking_convert)
    gate = ConversionGate(1)
    settings = FaxSettings(secret=SECRET, archive=str(tmp_path / "archive"), conversions=1)
    received: list[ReceivedFax] = []

    async def on_fax(fax: ReceivedFax) -> None:
        received.append(fax)

    app = web.Application()
    app.router.add_post("/hooks/fax", fax_handler(settings, on_fax, gate))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    gw = Gateway(str(server.make_url("")).rstrip("/"), tmp_path / "archive", settings)
    try:
        bodies = [upload((FAX / "g4-3pages.tif").read_bytes(), commid=str(n)) for n in range(3)]
        posts = [
            asyncio.create_task(post(gw, body, signed_request(body), kind)) for body, kind in bodies
        ]
        await asyncio.wait_for(gate.wait_until(lambda g: g.busy + g.waiting == 3), 30)
        assert (gate.busy, gate.waiting) == (1, 2)
        release.set()
        assert [status for status, _ in await asyncio.gather(*posts)] == [200] * 3
    finally:
        release.set()
        await server.close()
    assert peak[0] == 1 and len(received) == 3
