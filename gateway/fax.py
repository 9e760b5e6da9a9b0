"""Received faxes: HylaFAX's hook (deploy/hylafax/faxrcvd-frontdesk) posts each TIFF to
/hooks/fax, signed with HMAC-SHA256; we archive the TIFF before anything else, convert it
to PDF losslessly and hand the result to the gateway. A fax must never be lost: a TIFF we
cannot convert is still archived and reported, and any failure before the archive is
written answers 5xx so the hook keeps the TIFF and retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import logging
import math
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import img2pdf
from aiohttp import web
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


class CorruptFax(ValueError):
    """The upload is not a TIFF whose pages can be decoded."""


@dataclass(frozen=True)
class FaxDocument:
    pdf: bytes
    pages: int
    # Set when only the first `pages` pages of the TIFF could be decoded.
    problem: str = ""


def _decodable_pages(image: Image.Image) -> tuple[int, str]:
    """How many pages decode, front to back, and why the next one did not ("" if none)."""
    count = 0
    while True:
        try:
            image.seek(count)
        except EOFError:
            return count, ""
        except Exception as exc:  # Pillow raises anything from a damaged directory
            return count, f"page {count + 1} is unreadable ({exc})"
        try:
            image.load()
        except Exception as exc:
            return count, f"page {count + 1} does not decode ({exc})"
        count += 1


def _first_pages_as_tiff(image: Image.Image, count: int) -> bytes:
    """Re-encode the pages that decode as a G4 TIFF (bilevel, so still lossless)."""
    frames = []
    for index in range(count):
        image.seek(index)
        frames.append(image.copy())
    out = io.BytesIO()
    mono = all(frame.mode == "1" for frame in frames)
    frames[0].save(
        out,
        format="TIFF",
        save_all=True,
        append_images=frames[1:],
        compression="group4" if mono else "tiff_deflate",
        dpi=image.info.get("dpi", (204, 196)),
        # One strip per page lets img2pdf embed the G4 data as it is.
        tiffinfo={TiffImagePlugin.ROWSPERSTRIP: max(frame.height for frame in frames)},
    )
    return out.getvalue()


def tiff_to_pdf(tiff: bytes) -> FaxDocument:
    """A PDF of the fax, one page per TIFF page at the fax's own (often non-square)
    resolution; img2pdf embeds G4 data as it is and transcodes G3 to G4 losslessly.
    A TIFF truncated after some pages gives a PDF of those, with `problem` saying so.
    Blocking (tens of ms a page): run it in a thread."""
    if not tiff:
        raise CorruptFax("empty file")
    try:
        image = Image.open(io.BytesIO(tiff))
    except UnidentifiedImageError as exc:
        raise CorruptFax("not a TIFF, or its first page's directory is missing") from exc
    except Exception as exc:
        raise CorruptFax(f"not a readable image ({exc})") from exc
    with image:
        if image.format != "TIFF":
            raise CorruptFax(f"not a TIFF but {image.format}")
        pages, problem = _decodable_pages(image)
        if pages == 0:
            raise CorruptFax(problem or "no pages")
        source = _first_pages_as_tiff(image, pages) if problem else tiff
    try:
        pdf = img2pdf.convert(source)
    except Exception as exc:
        raise CorruptFax(f"cannot convert to PDF ({exc})") from exc
    if problem:
        problem = f"only the first {pages} page(s) could be read: {problem}"
    return FaxDocument(pdf=pdf, pages=pages, problem=problem)


# --- The hook's request ----------------------------------------------------------------


class _BadRequest(Exception):
    pass


def _header_params(name: str, value: str) -> tuple[str, Mapping[str, str]]:
    """A MIME header's main value and parameters, e.g. form-data and {"name": "fax"}."""
    try:
        header = EmailMessage()
        header[name] = value
        return header.get_content_type(), header[name].params
    except (ValueError, TypeError, IndexError) as exc:
        raise _BadRequest(f"malformed {name} header") from exc


def _parse_form(body: bytes, content_type: str) -> dict[str, bytes]:
    """multipart/form-data as the hook writes it (parsed only once the signature holds),
    by field name."""
    kind, params = _header_params("Content-Type", content_type)
    boundary = params.get("boundary", "")
    if kind != "multipart/form-data" or not boundary or not boundary.isascii():
        raise _BadRequest("expected multipart/form-data")
    chunks = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("ascii"))
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise _BadRequest("malformed multipart body")
    parts: dict[str, bytes] = {}
    for chunk in chunks[1:-1]:
        head, separator, data = chunk.partition(b"\r\n\r\n")
        if not separator:
            raise _BadRequest("malformed multipart part")
        disposition = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = value.strip()
        _, params = _header_params("Content-Disposition", disposition)
        if "name" in params:
            parts[params["name"]] = data
    return parts


async def _read_body(request: web.Request, limit: int) -> tuple[bytes, str]:
    """The body and its SHA-256, hashed as it streams in (413 past `limit` bytes). Read
    from the stream, not request.read(): the app's client_max_size is sized for small hooks.
    """
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    digest = hashlib.sha256()
    body = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
        digest.update(chunk)
    return bytes(body), digest.hexdigest()


# --- What the gateway gets -------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedFax:
    # The number dialled (DDI), digits only ("302100000001"); "" if HylaFAX did not know it.
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
    commid: str
    devid: str
    received_at: datetime
    tiff_path: Path
    pdf: bytes | None
    pdf_path: Path | None
    # Why (part of) the TIFF could not be converted; "" when it all converted.
    problem: str
    # The page count HylaFAX's faxinfo gave the hook, if it had one.
    reported_pages: int | None = None


FaxHook = Callable[[ReceivedFax], Awaitable[None]]


def digits(number: str) -> str:
    return re.sub(r"\D", "", number)


def _text(parts: Mapping[str, bytes], name: str) -> str:
    return parts.get(name, b"")[:_TEXT_LIMIT].decode("utf-8", "replace").strip()


def _received_at(text: str, fallback: datetime) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return fallback
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _write_new(directory: Path, stem: str, suffix: str, data: bytes) -> Path:
    """Write to a name not used before (stem, stem-2, ...), durably: a retried hook call
    for the same fax gets a second file rather than overwriting the first."""
    directory.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        path = directory / f"{stem if attempt == 1 else f'{stem}-{attempt}'}{suffix}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except FileExistsError:
            continue
        with open(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        return path
    raise FileExistsError(f"no free archive name for {stem} in {directory}")


def _archive_stem(commid: str) -> str:
    return "fax-" + (re.sub(r"[^0-9A-Za-z_-]", "_", commid)[:64] or "unknown")


def _reply(status: int, **body: object) -> web.Response:
    return web.json_response(body, status=status)


def fax_handler(
    settings: FaxSettings, on_fax: FaxHook
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The POST /hooks/fax handler. on_fax gets every fax that was archived, readable or
    not; if it raises, the hook is answered 500 and will deliver the same fax again (same
    commid), so it should store what it needs first."""
    nonces = NonceCache()
    archive = Path(settings.archive)

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            now = time.time()
            signed = _check_headers(request.headers, settings.secret, now, settings.max_age)
            body, body_sha256 = await _read_body(request, settings.max_bytes)
            _check_signature(signed, body_sha256, settings.secret, settings.max_age, now, nonces)
        except FaxAuthError as exc:
            log.warning("fax hook: refused a request from %s: %s", request.remote, exc)
            return _reply(401, ok=False, error=str(exc))
        except web.HTTPRequestEntityTooLarge:
            log.warning("fax hook: refused an upload over %d bytes", settings.max_bytes)
            return _reply(413, ok=False, error=f"upload over {settings.max_bytes} bytes")
        try:
            parts = await asyncio.to_thread(
                _parse_form, body, request.headers.get("Content-Type", "")
            )
        except _BadRequest as exc:
            return _reply(400, ok=False, error=str(exc))
        if "fax" not in parts:
            return _reply(400, ok=False, error="no 'fax' file in the upload")
        return await _receive(parts, archive, on_fax)

    return handle


async def _receive(parts: Mapping[str, bytes], archive: Path, on_fax: FaxHook) -> web.Response:
    tiff = parts["fax"]
    commid = _text(parts, "commid")
    received_at = _received_at(_text(parts, "received_at"), datetime.now(UTC))
    directory = archive / received_at.astimezone(UTC).strftime("%Y/%m/%d")
    stem = _archive_stem(commid)
    # The original first: whatever happens next, the fax is on our disk.
    tiff_path = await asyncio.to_thread(_write_new, directory, stem, ".tif", tiff)
    pdf: bytes | None = None
    pdf_path: Path | None = None
    pages = 0
    try:
        document = await asyncio.to_thread(tiff_to_pdf, tiff)
    except CorruptFax as exc:
        problem = f"unreadable TIFF: {exc}"
    else:
        pdf, pages, problem = document.pdf, document.pages, document.problem
        pdf_path = await asyncio.to_thread(_write_new, directory, tiff_path.stem, ".pdf", pdf)
    error = _text(parts, "error")
    called_raw = _text(parts, "called")
    reported = _text(parts, "pages")
    fax = ReceivedFax(
        called=digits(called_raw),
        called_raw=called_raw,
        caller=_text(parts, "caller"),
        caller_name=_text(parts, "caller_name"),
        pages=pages,
        complete=pdf is not None and not error and not problem,
        error=error,
        commid=commid,
        devid=_text(parts, "devid"),
        received_at=received_at,
        tiff_path=tiff_path,
        pdf=pdf,
        pdf_path=pdf_path,
        problem=problem,
        reported_pages=int(reported) if reported.isdigit() else None,
    )
    log.info(
        "fax %s: %d page(s)%s, archived as %s",
        commid or "(no commid)",
        pages,
        f" ({problem})" if problem else "",
        tiff_path,
    )
    try:
        await on_fax(fax)
    except Exception:
        # The TIFF is archived; a 5xx makes the hook try again, so the fax is not dropped.
        log.exception("fax %s: handing it on failed; asking the hook to retry", commid)
        return _reply(500, ok=False, error="the gateway could not hand the fax on; retry")
    if pdf is None:
        return _reply(422, ok=False, pages=0, problem=problem, archived=tiff_path.name)
    reply: dict[str, object] = {"ok": True, "pages": pages, "archived": tiff_path.name}
    if problem:
        reply["problem"] = problem
    return _reply(200, **reply)
