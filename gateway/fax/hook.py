"""Received faxes: HylaFAX's hook (deploy/hylafax/faxrcvd-frontdesk) posts each TIFF to
/hooks/fax, signed with HMAC-SHA256; we archive the TIFF before anything else, convert it
to PDF losslessly and hand the result to the gateway. A fax must never be lost: a TIFF we
cannot convert, or one whose fields are wrong, is still archived, handed on and reported
(422), and any failure before the archive is written answers 5xx so the hook keeps the
TIFF and retries.

Memory stays flat whatever is posted: the body is streamed to an anonymous file while it
is hashed, the form is read in place, at most `fax.conversions` faxes convert at once,
and a page over `fax.max_pixels` is refused from its directory, before it is decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import logging
import math
import mmap
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import BinaryIO

import aiohttp
import img2pdf
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from PIL import Image, TiffImagePlugin, UnidentifiedImageError

from models.settings import FaxSettings

log = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Frontdesk-Timestamp"
NONCE_HEADER = "X-Frontdesk-Nonce"
SIGNATURE_HEADER = "X-Frontdesk-Signature"
SIGNATURE_VERSION = "frontdesk-fax-v1"
_TIMESTAMP = re.compile(r"\d{1,12}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_SIGNATURE = re.compile(r"sha256=([0-9a-f]{64})")
_TEXT_LIMIT = 1000  # metadata fields are short; the body is signed, this only bounds memory


# --- Signature -------------------------------------------------------------------------


class FaxAuthError(Exception):
    """The request is not a fresh one signed with our secret (the text is the reason)."""


def canonical_string(timestamp: str, nonce: str, body_sha256: str) -> bytes:
    """What is signed: the body by its hash, so headers can be checked before it is read."""
    return f"{SIGNATURE_VERSION}\n{timestamp}\n{nonce}\n{body_sha256}".encode("ascii")


def sign(body: bytes, secret: str, timestamp: str, nonce: str) -> str:
    """The X-Frontdesk-Signature value for a body (the hook has its own copy of this)."""
    message = canonical_string(timestamp, nonce, hashlib.sha256(body).hexdigest())
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class NonceCache:
    """Nonces seen in valid requests, each kept until its timestamp can no longer pass the
    age check. Only correctly signed requests add to it, so only a holder of the secret can
    fill it; when full the entry closest to expiry goes first."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._expiry: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, nonce: str, expires: float, now: float) -> bool:
        """Record a nonce; False if it was already there (a replay)."""
        if self._expiry.get(nonce, -math.inf) > now:
            return False
        self._expiry[nonce] = expires
        if len(self._expiry) > self.max_entries:
            self._expiry = {n: e for n, e in self._expiry.items() if e > now}
        while len(self._expiry) > self.max_entries:
            del self._expiry[min(self._expiry, key=self._expiry.__getitem__)]
        return True


_SHARED_NONCES = NonceCache()


@dataclass(frozen=True)
class _SignedHeaders:
    timestamp: str
    nonce: str
    signature: str


def _check_headers(
    headers: Mapping[str, str], secret: str, now: float, max_age: float
) -> _SignedHeaders:
    """Everything that can be checked before the body is read."""
    if not secret:
        raise FaxAuthError("fax hook is off (no secret configured)")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    nonce = headers.get(NONCE_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not (timestamp or nonce or signature):
        raise FaxAuthError("unsigned request")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise FaxAuthError("missing or malformed timestamp")
    if not _NONCE.fullmatch(nonce):
        raise FaxAuthError("missing or malformed nonce")
    match = _SIGNATURE.fullmatch(signature.strip().lower())
    if match is None:
        raise FaxAuthError("missing or malformed signature")
    age = now - int(timestamp)
    if age > max_age:
        raise FaxAuthError("stale timestamp")
    if age < -max_age:
        raise FaxAuthError("timestamp in the future")
    return _SignedHeaders(timestamp, nonce, match.group(1))


def _check_signature(
    signed: _SignedHeaders,
    body_sha256: str,
    secret: str,
    max_age: float,
    now: float,
    nonces: NonceCache,
) -> None:
    message = canonical_string(signed.timestamp, signed.nonce, body_sha256)
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signed.signature.encode()):
        raise FaxAuthError("bad signature")
    # Only after the signature holds: a forger must not be able to burn nonces.
    if not nonces.add(signed.nonce, int(signed.timestamp) + max_age, now):
        raise FaxAuthError("replayed nonce")


def verify_signature(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    now: float,
    max_age: float,
    nonces: NonceCache | None = None,
) -> None:
    """Raise FaxAuthError unless the request is signed with `secret`, at most `max_age`
    seconds from `now`, and its nonce was not seen before (in `nonces`, by default a
    process-wide cache)."""
    signed = _check_headers(headers, secret, now, max_age)
    digest = hashlib.sha256(body).hexdigest()
    _check_signature(
        signed, digest, secret, max_age, now, _SHARED_NONCES if nonces is None else nonces
    )


# --- TIFF to PDF -----------------------------------------------------------------------

# A fine-mode A4 page is 1728 x 2292 pixels (4 M), superfine 3456 x 4592 (16 M); Pillow
# holds a decoded bilevel page at a byte a pixel.
DEFAULT_MAX_PIXELS = 40_000_000


class CorruptFax(ValueError):
    """The upload is not a TIFF whose pages can be decoded."""


@dataclass(frozen=True)
class FaxDocument:
    pdf: bytes
    pages: int
    # Set when only the first `pages` pages of the TIFF could be decoded.
    problem: str = ""


def limit_pillow(max_pixels: int) -> None:
    """Pillow's own guard, for any decode we do not check first (img2pdf transcoding G3):
    it warns past this many pixels and refuses twice as many. Process-wide; only the fax
    code uses Pillow."""
    Image.MAX_IMAGE_PIXELS = max_pixels


def _oversized(image: Image.Image, max_pixels: int) -> str:
    """Why the current page must not be decoded ("" if it may). The size comes from the
    page's directory: Pillow opens and seeks lazily."""
    width, height = image.size
    if width * height <= max_pixels:
        return ""
    return f"{width} x {height} pixels, over the {max_pixels} allowed"


def _decodable_pages(image: Image.Image, max_pixels: int) -> tuple[int, str]:
    """How many pages decode, front to back, and why the next one did not ("" if none).
    A page too large is refused before it is decoded."""
    count = 0
    while True:
        try:
            image.seek(count)
        except EOFError:
            return count, ""
        except Exception as exc:  # Pillow raises anything from a damaged directory
            return count, f"page {count + 1} is unreadable ({exc})"
        too_big = _oversized(image, max_pixels)
        if too_big:
            return count, f"page {count + 1} is too large ({too_big})"
        try:
            image.load()
        except Exception as exc:
            return count, f"page {count + 1} does not decode ({exc})"
        count += 1


def _pages_as_tiffs(image: Image.Image, count: int) -> list[bytes]:
    """The first `count` pages, each re-encoded alone (G4 when bilevel, so still lossless):
    one decoded page in memory at a time."""
    pages = []
    for index in range(count):
        image.seek(index)
        out = io.BytesIO()
        image.save(
            out,
            format="TIFF",
            compression="group4" if image.mode == "1" else "tiff_deflate",
            dpi=image.info.get("dpi", (204, 196)),
            # One strip per page lets img2pdf embed the G4 data as it is.
            tiffinfo={TiffImagePlugin.ROWSPERSTRIP: image.height},
        )
        pages.append(out.getvalue())
    return pages


def _open(source: bytes | Path) -> Image.Image:
    if isinstance(source, bytes):
        if not source:
            raise CorruptFax("empty file")
        opened: BinaryIO | Path = io.BytesIO(source)
    else:
        if source.stat().st_size == 0:
            raise CorruptFax("empty file")
        opened = source
    try:
        return Image.open(opened)
    except UnidentifiedImageError as exc:
        raise CorruptFax("not a TIFF, or its first page's directory is missing") from exc
    except Image.DecompressionBombError as exc:
        raise CorruptFax(f"page 1 is too large ({exc})") from exc
    except Exception as exc:
        raise CorruptFax(f"not a readable image ({exc})") from exc


def convert_tiff(
    source: bytes | Path, out: BinaryIO, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[int, str]:
    """Write a PDF of the fax to `out`, one page per TIFF page at the fax's own (often
    non-square) resolution; img2pdf embeds G4 data as it is and transcodes G3 to G4
    losslessly. Returns (pages, problem): a TIFF cut short, or with a page over
    `max_pixels`, gives the pages before it and `problem` says why. Blocking (tens of ms a
    page): run it in a thread."""
    with _open(source) as image:
        if image.format != "TIFF":
            raise CorruptFax(f"not a TIFF but {image.format}")
        pages, problem = _decodable_pages(image, max_pixels)
        if pages == 0:
            raise CorruptFax(problem or "no pages")
        try:
            parts = _pages_as_tiffs(image, pages) if problem else None
        except Exception as exc:  # a page that decoded but will not encode: still a bad TIFF
            raise CorruptFax(f"cannot re-encode the pages that decode ({exc})") from exc
    try:
        if parts is None:
            img2pdf.convert(str(source) if isinstance(source, Path) else source, outputstream=out)
        else:
            img2pdf.convert(*parts, outputstream=out)
    except Exception as exc:
        raise CorruptFax(f"cannot convert to PDF ({exc})") from exc
    if problem:
        problem = f"only the first {pages} page(s) could be read: {problem}"
    return pages, problem


def tiff_to_pdf(tiff: bytes | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> FaxDocument:
    """convert_tiff into memory."""
    out = io.BytesIO()
    pages, problem = convert_tiff(tiff, out, max_pixels)
    return FaxDocument(pdf=out.getvalue(), pages=pages, problem=problem)


# --- The hook's request ----------------------------------------------------------------


class _BadRequest(Exception):
    pass


_MAX_PARTS = 64  # the hook sends ten
_MAX_PART_HEAD = 8192
_MAX_BOUNDARY = 200  # RFC 2046 allows 70


def _header_params(name: str, value: str) -> tuple[str, Mapping[str, str]]:
    """A MIME header's main value and parameters, e.g. form-data and {"name": "fax"}."""
    try:
        header = EmailMessage()
        header[name] = value
        return header.get_content_type(), header[name].params
    except Exception as exc:  # the email package raises many kinds on malformed headers
        raise _BadRequest(f"malformed {name} header") from exc


@dataclass(frozen=True)
class _Form:
    # Each field's first _TEXT_LIMIT bytes, by name.
    fields: dict[str, bytes]
    # Where the `fax` file lies in the spooled body: (start, end), or None.
    fax: tuple[int, int] | None


def _part_spans(body: mmap.mmap, boundary: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each part between delimiters, up to the close delimiter."""
    dash = b"--" + boundary
    delimiter = b"\r\n" + dash
    if body[: len(dash)] == dash:  # the first delimiter opens the body (no preamble)
        start = len(dash)
    else:
        found = body.find(delimiter)
        if found < 0:
            raise _BadRequest("malformed multipart body")
        start = found + len(delimiter)
    while body[start : start + 2] != b"--":
        end = body.find(delimiter, start)
        if end < 0:
            raise _BadRequest("malformed multipart body")
        yield start, end
        start = end + len(delimiter)


def _field_name(head: bytes) -> str | None:
    disposition = ""
    for line in head.decode("utf-8", "replace").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-disposition":
            disposition = value.strip()
    _, params = _header_params("Content-Disposition", disposition)
    return params.get("name")


def _split_form(body: mmap.mmap, boundary: bytes) -> _Form:
    fields: dict[str, bytes] = {}
    fax: tuple[int, int] | None = None
    for count, (start, end) in enumerate(_part_spans(body, boundary), 1):
        if count > _MAX_PARTS:
            raise _BadRequest("too many multipart parts")
        head_end = body.find(b"\r\n\r\n", start, min(end, start + _MAX_PART_HEAD))
        if head_end < 0:
            raise _BadRequest("malformed multipart part")
        name = _field_name(body[start:head_end])
        data = head_end + 4
        if name == "fax":
            fax = (data, end)
        elif name is not None:
            fields[name] = body[data : min(end, data + _TEXT_LIMIT)]
    return _Form(fields, fax)


def _parse_form(spooled: BinaryIO, content_type: str) -> _Form:
    """multipart/form-data as the hook writes it (parsed only once the signature holds),
    read in place from the spooled body: only the small fields are copied."""
    kind, params = _header_params("Content-Type", content_type)
    boundary = params.get("boundary", "")
    if (
        kind != "multipart/form-data"
        or not boundary
        or not boundary.isascii()
        or len(boundary) > _MAX_BOUNDARY
    ):
        raise _BadRequest("expected multipart/form-data")
    if os.fstat(spooled.fileno()).st_size == 0:
        raise _BadRequest("malformed multipart body")
    with mmap.mmap(spooled.fileno(), 0, access=mmap.ACCESS_READ) as body:
        return _split_form(body, boundary.encode("ascii"))


class _Incomplete(Exception):
    """The client went away or broke the body's framing before it was all sent."""


# What reading a request body raises when the peer hangs up or garbles its framing.
BODY_ERRORS = (aiohttp.ClientError, ConnectionError, HttpProcessingError, EOFError)
_SPOOL_CHUNK = 1 << 20  # written to disk a megabyte at a time


async def _spool_body(request: web.Request, limit: int, out: BinaryIO) -> str:
    """Stream the body to `out`, hashing it on the way (413 past `limit` bytes); its
    SHA-256. Read from the stream, not request.read(): the app's client_max_size is sized
    for small hooks, and a fax is never held whole in memory."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    digest = hashlib.sha256()
    size = 0
    pending = bytearray()
    try:
        async for chunk in request.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > limit:
                raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
            digest.update(chunk)
            pending += chunk
            if len(pending) >= _SPOOL_CHUNK:
                await asyncio.to_thread(out.write, pending)
                pending = bytearray()
    except BODY_ERRORS as exc:
        raise _Incomplete(str(exc) or type(exc).__name__) from exc
    await asyncio.to_thread(_finish_spool, out, pending)
    return digest.hexdigest()


def _finish_spool(out: BinaryIO, rest: bytes | bytearray) -> None:
    out.write(rest)
    out.flush()  # read back by file descriptor (pread, mmap), not through this buffer


# --- Conversions at once ---------------------------------------------------------------


class ConversionGate:
    """At most `limit` faxes converted at once: each holds its TIFF and a decoded page in
    memory. Counts what it holds and queues, for operators and tests."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)
        self.busy = 0
        self.waiting = 0
        self._changed = asyncio.Condition()

    async def _note(self, busy: int, waiting: int) -> None:
        self.busy += busy
        self.waiting += waiting
        async with self._changed:
            self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self._note(0, 1)
        try:
            await self._slots.acquire()
        finally:
            await self._note(0, -1)
        try:
            await self._note(1, 0)
            yield
        finally:
            self._slots.release()
            await self._note(-1, 0)

    async def wait_until(self, predicate: Callable[[ConversionGate], bool]) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: predicate(self))


# --- What the gateway gets -------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedFax:
    # The number dialled (DDI), digits only ("302100000001"); "" if HylaFAX did not know it
    # (or sent something too long to be a number).
    called: str
    called_raw: str
    # The caller as HylaFAX reported it ("+302101234567", "anonymous", "").
    caller: str
    caller_name: str
    # Pages in the PDF (0 when the TIFF is unreadable).
    pages: int
    # HylaFAX received everything and every page converted.
    complete: bool
    # HylaFAX's error message ("" when the receive completed).
    error: str
    # HylaFAX's commid ("" when the hook sent none, or one that is not a commid).
    commid: str
    devid: str
    # When HylaFAX received it, else (no or bad received_at) when the gateway did.
    received_at: datetime
    tiff_path: Path
    pdf_path: Path | None
    # Why (part of) the TIFF could not be converted; "" when it all converted.
    problem: str
    # The page count HylaFAX's faxinfo gave the hook, if it had one.
    reported_pages: int | None = None
    # What was wrong with the hook's fields ("" when nothing): the fax is kept and handed
    # on all the same, and the hook is answered 422.
    bad_metadata: str = ""

    @property
    def pdf(self) -> bytes | None:
        """The PDF's bytes, read from the archive (None when the TIFF was unreadable)."""
        return self.pdf_path.read_bytes() if self.pdf_path else None


FaxHook = Callable[[ReceivedFax], Awaitable[None]]


def digits(number: str) -> str:
    return re.sub(r"\D", "", number)


def _text(fields: Mapping[str, bytes], name: str) -> str:
    return fields.get(name, b"")[:_TEXT_LIMIT].decode("utf-8", "replace").strip()


_COMMID = re.compile(r"[0-9A-Za-z_.-]{1,64}")
_PAGES = re.compile(r"[0-9]{1,5}")
# A fax received before this is a clock or a hook gone wrong; so is one from tomorrow.
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_CLOCK_SKEW = timedelta(days=1)


# No phone number has more digits, even with an international prefix (E.164: 15).
_MAX_NUMBER_DIGITS = 20


@dataclass(frozen=True)
class _Metadata:
    commid: str
    called: str  # digits
    received_at: datetime
    reported_pages: int | None
    problems: tuple[str, ...]


def _received_at(text: str, arrived: datetime) -> tuple[datetime, str]:
    """HylaFAX's receive time, or the arrival time and what was wrong with the text."""
    if not text:
        return arrived, ""
    try:
        when = datetime.fromisoformat(text)
        when = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # year 1 at +14:00 is before year 1 in UTC
        return arrived, f"received_at {text[:40]!r} is not an ISO 8601 time"
    if not _EARLIEST <= when <= arrived + _CLOCK_SKEW:
        return arrived, f"received_at {text[:40]!r} is not between 2000 and now"
    return when, ""


def _metadata(fields: Mapping[str, bytes], arrived: datetime) -> _Metadata:
    """The hook's fields checked; never raises: a bad value is replaced and reported."""
    problems = []
    commid = _text(fields, "commid")
    if commid and not _COMMID.fullmatch(commid):
        problems.append(f"commid {commid[:40]!r} is not a HylaFAX commid")
        commid = ""
    called = digits(_text(fields, "called"))
    if len(called) > _MAX_NUMBER_DIGITS:
        problems.append(f"called has {len(called)} digits: not a phone number")
        called = ""
    received_at, problem = _received_at(_text(fields, "received_at"), arrived)
    problems += [problem] if problem else []
    pages = _text(fields, "pages")
    if pages and not _PAGES.fullmatch(pages):
        problems.append(f"pages {pages[:40]!r} is not a page count")
    reported = int(pages) if _PAGES.fullmatch(pages) else None
    return _Metadata(commid, called, received_at, reported, tuple(problems))


def _write_new(directory: Path, stem: str, suffix: str, write: Callable[[BinaryIO], None]) -> Path:
    """Write to a name not used before (stem, stem-2, ...), durably: a retried hook call
    for the same fax gets a second file rather than overwriting the first. A failed write
    leaves no file."""
    directory.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        path = directory / f"{stem if attempt == 1 else f'{stem}-{attempt}'}{suffix}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except FileExistsError:
            continue
        try:
            with open(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path
    raise FileExistsError(f"no free archive name for {stem} in {directory}")


def _copy_span(source: BinaryIO, span: tuple[int, int]) -> Callable[[BinaryIO], None]:
    """A writer of bytes [start, end) of `source`, a megabyte at a time."""

    def write(out: BinaryIO) -> None:
        position, end = span
        while position < end:
            chunk = os.pread(source.fileno(), min(_SPOOL_CHUNK, end - position), position)
            if not chunk:
                raise OSError("the spooled upload is shorter than its parts")
            out.write(chunk)
            position += len(chunk)

    return write


def _archive_stem(commid: str) -> str:
    return "fax-" + (re.sub(r"[^0-9A-Za-z_-]", "_", commid)[:64] or "unknown")


@dataclass(frozen=True)
class _Converted:
    pdf_path: Path | None
    pages: int
    problem: str


def _convert_archived(tiff_path: Path, max_pixels: int) -> _Converted:
    """The archived TIFF to a PDF beside it; an unreadable TIFF gives no PDF."""
    outcome: list[tuple[int, str]] = []

    def write(out: BinaryIO) -> None:
        outcome.append(convert_tiff(tiff_path, out, max_pixels))

    try:
        pdf_path = _write_new(tiff_path.parent, tiff_path.stem, ".pdf", write)
    except CorruptFax as exc:
        return _Converted(None, 0, f"unreadable TIFF: {exc}")
    [(pages, problem)] = outcome
    return _Converted(pdf_path, pages, problem)


def _reply(status: int, **body: object) -> web.Response:
    return web.json_response(body, status=status)


class _Endpoint:
    """POST /hooks/fax: headers checked, the body spooled to disk while it is hashed, the
    signature checked, then the form parsed in place and the fax archived and converted."""

    def __init__(self, settings: FaxSettings, on_fax: FaxHook, gate: ConversionGate) -> None:
        self.settings = settings
        self.on_fax = on_fax
        self.gate = gate
        self.archive = Path(settings.archive)
        self.nonces = NonceCache()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        now = time.time()
        try:
            signed = _check_headers(
                request.headers, self.settings.secret, now, self.settings.max_age
            )
        except FaxAuthError as exc:
            return _refused(request, exc)
        # Anonymous and on the archive's disk: gone when closed, even after a crash.
        incoming = self.archive / ".incoming"
        await asyncio.to_thread(incoming.mkdir, parents=True, exist_ok=True)
        spooled: BinaryIO = await asyncio.to_thread(_anonymous_file, incoming)
        try:
            return await self._signed_upload(request, signed, spooled, now)
        finally:
            await asyncio.to_thread(spooled.close)

    async def _signed_upload(
        self, request: web.Request, signed: _SignedHeaders, spooled: BinaryIO, now: float
    ) -> web.StreamResponse:
        settings = self.settings
        try:
            body_sha256 = await _spool_body(request, settings.max_bytes, spooled)
            _check_signature(
                signed, body_sha256, settings.secret, settings.max_age, now, self.nonces
            )
        except FaxAuthError as exc:
            return _refused(request, exc)
        except web.HTTPRequestEntityTooLarge:
            log.warning("fax hook: refused an upload over %d bytes", settings.max_bytes)
            return _reply(413, ok=False, error=f"upload over {settings.max_bytes} bytes")
        except _Incomplete as exc:
            log.warning("fax hook: the upload from %s broke off: %s", request.remote, exc)
            return _reply(400, ok=False, error="incomplete upload")
        try:
            form = await asyncio.to_thread(
                _parse_form, spooled, request.headers.get("Content-Type", "")
            )
        except _BadRequest as exc:
            return _reply(400, ok=False, error=str(exc))
        if form.fax is None:
            return _reply(400, ok=False, error="no 'fax' file in the upload")
        return await self._receive(spooled, form)

    async def _receive(self, spooled: BinaryIO, form: _Form) -> web.Response:
        assert form.fax is not None
        arrived = datetime.now(UTC)
        # The original first, under the gateway's own date and a name made safe: nothing
        # the request says can stop the fax reaching our disk. Then the fields are checked.
        tiff_path = await asyncio.to_thread(
            _write_new,
            self.archive / arrived.strftime("%Y/%m/%d"),
            _archive_stem(_text(form.fields, "commid")),
            ".tif",
            _copy_span(spooled, form.fax),
        )
        meta = _metadata(form.fields, arrived)
        async with self.gate.slot():
            converted = await asyncio.to_thread(
                _convert_archived, tiff_path, self.settings.max_pixels
            )
        fax = _received(form.fields, meta, tiff_path, converted)
        log.info(
            "fax %s: %d page(s)%s, archived as %s",
            meta.commid or "(no commid)",
            fax.pages,
            f" ({fax.problem})" if fax.problem else "",
            tiff_path,
        )
        try:
            await self.on_fax(fax)
        except Exception:
            # The TIFF is archived; a 5xx makes the hook try again: the fax is not dropped.
            log.exception("fax %s: handing it on failed; asking the hook to retry", tiff_path)
            return _reply(500, ok=False, error="the gateway could not hand the fax on; retry")
        return _answer(fax)


def fax_handler(
    settings: FaxSettings, on_fax: FaxHook, gate: ConversionGate | None = None
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The POST /hooks/fax handler. on_fax gets every fax that was archived, readable or
    not, with good metadata or not; if it raises, the hook is answered 500 and will deliver
    the same fax again (same commid), so it should store what it needs first."""
    limit_pillow(settings.max_pixels)
    return _Endpoint(settings, on_fax, gate or ConversionGate(settings.conversions)).handle


def _anonymous_file(directory: Path) -> BinaryIO:
    return tempfile.TemporaryFile(mode="w+b", dir=directory)


def _refused(request: web.Request, exc: FaxAuthError) -> web.Response:
    log.warning("fax hook: refused a request from %s: %s", request.remote, exc)
    return _reply(401, ok=False, error=str(exc))


def _received(
    fields: Mapping[str, bytes], meta: _Metadata, tiff_path: Path, converted: _Converted
) -> ReceivedFax:
    error = _text(fields, "error")
    return ReceivedFax(
        called=meta.called,
        called_raw=_text(fields, "called"),
        caller=_text(fields, "caller"),
        caller_name=_text(fields, "caller_name"),
        pages=converted.pages,
        complete=converted.pdf_path is not None and not error and not converted.problem,
        error=error,
        commid=meta.commid,
        devid=_text(fields, "devid"),
        received_at=meta.received_at,
        tiff_path=tiff_path,
        pdf_path=converted.pdf_path,
        problem=converted.problem,
        reported_pages=meta.reported_pages,
        bad_metadata="; ".join(meta.problems),
    )


def _answer(fax: ReceivedFax) -> web.Response:
    """200 when all went well; 422 (archived, handed on, admins told) for an unreadable
    TIFF or bad fields: sending it again would not help."""
    archived = fax.tiff_path.name
    if fax.bad_metadata:
        log.warning("fax %s: bad metadata from the hook: %s", archived, fax.bad_metadata)
        return _reply(
            422,
            ok=False,
            pages=fax.pages,
            problem=fax.problem,
            bad_metadata=fax.bad_metadata,
            archived=archived,
        )
    if fax.pdf_path is None:
        return _reply(422, ok=False, pages=0, problem=fax.problem, archived=archived)
    reply: dict[str, object] = {"ok": True, "pages": fax.pages, "archived": archived}
    if fax.problem:
        reply["problem"] = fax.problem
    return _reply(200, **reply)
