"""Fuzz every route of the gateway's HTTP app for a bounded time; count 500s, exceptions, RSS.

    python bench/http_fuzz.py [--seconds 60] [--concurrency 8] [--seed N] [--rss-limit 300]

The gateway's real aiohttp app (`Gateway.web`: the routes of gateway/http.py, listed from its
router) runs in a child process on a throw-away SQLite database with one subscriber, so the
RSS measured is the gateway's alone (VmRSS of /proc/<pid>/status). The fuzzer sends, to
every route and to paths that do not exist: random methods, garbage request lines, huge
headers, broken chunked framing, unsigned and wrongly signed fax uploads, correctly signed
ones that are malformed (random multipart, bad fields, mutated or oversized TIFFs, a huge
G4 page that would decode to 144 MB), truncated bodies, and oversized ones. It prints the
requests sent, the answers by status, the 500s, the exceptions the gateway logged and its
RSS before and after; it exits 1 on any 500 or exception, or RSS after over the limit.

tests/e2e/test_http_fuzz.py runs the same fuzz in-process with a small bound.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import logging
import os
import random
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402
from PIL import Image  # noqa: E402

from gateway.app import Gateway  # noqa: E402
from gateway.control import admin  # noqa: E402
from gateway.fax.hook import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign  # noqa: E402
from models.database import close_db, migrate, open_db  # noqa: E402
from models.settings import Settings, load_settings, with_section  # noqa: E402
from notifiers.mms import reports as mm7_hook  # noqa: E402

SECRET = "http-fuzz-secret-" + "f" * 16
MM7_USER, MM7_PASSWORD = "mmsc", "http-fuzz-mm7"
MM7_AUTH = "Basic " + base64.b64encode(f"{MM7_USER}:{MM7_PASSWORD}".encode()).decode()
DDI = "2100001"
HOST = "127.0.0.1"
ANSWER_TIMEOUT = 60.0  # a bound, not a pace: every probe is answered or closed long before


# --- The gateway under test ---------------------------------------------------------------


class ServerLog(logging.Handler):
    """What the gateway's side saw: each answer's status (aiohttp's access log, so also
    answers a client hung up on) and each exception logged with a traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.statuses: Counter[int] = Counter()
        self.exceptions: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        status = getattr(record, "response_status", None)
        if status is not None:
            self.statuses[int(status)] += 1
        elif record.levelno >= logging.ERROR and (
            record.exc_info or record.name.startswith("asyncio")
        ):
            self.exceptions.append(f"{record.name}: {record.getMessage()[:300]}")

    @contextlib.contextmanager
    def listening(self) -> Iterator[ServerLog]:
        access = logging.getLogger("aiohttp.access")
        level = access.level
        access.setLevel(logging.INFO)
        logging.getLogger().addHandler(self)
        try:
            yield self
        finally:
            logging.getLogger().removeHandler(self)
            access.setLevel(level)


def fuzz_settings(workdir: Path, **fax: Any) -> Settings:
    s = load_settings(None, environ={})
    s = with_section(s, "database", url=f"sqlite://{workdir / 'fuzz.sqlite3'}")
    s = with_section(s, "http", host=HOST, port=0)
    # The MMSC's credentials for /hooks/mm7, so that reports reach the parser.
    s = with_section(s, "mms", report_username=MM7_USER, report_password=MM7_PASSWORD)
    return with_section(s, "fax", secret=SECRET, archive=str(workdir / "fax"), **fax)


@dataclass
class Served:
    port: int
    routes: list[tuple[str, str]]  # (method, path) from the app's router
    settings: Settings
    log: ServerLog


@contextlib.asynccontextmanager
async def serve_gateway(workdir: Path, **fax: Any) -> AsyncIterator[Served]:
    """The gateway's HTTP app (AMI and the loops stay off) on a loopback port."""
    settings = fuzz_settings(workdir, **fax)
    await migrate(settings.database.url)
    await open_db(settings.database.url)
    runner: web.AppRunner | None = None
    try:
        with ServerLog().listening() as server_log:
            await admin.add_subscriber(name="Fuzz", ddis=[DDI], language="el", timezone="UTC")
            gateway = Gateway(settings)
            mm7_hook.install(gateway.web, settings.mms)  # as bot/runtime.py does
            runner = web.AppRunner(gateway.web, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, HOST, 0)
            await site.start()
            port = runner.addresses[0][1]
            routes = [
                (route.method, route.resource.canonical)
                for route in gateway.web.router.routes()
                if route.resource is not None
            ]
            yield Served(port, routes, settings, server_log)
    finally:
        if runner is not None:
            await runner.cleanup()
        await close_db()


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size from /proc (no psutil)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- Faxes worth sending ------------------------------------------------------------------


def g4_tiff(*sizes: tuple[int, int], lines: bool = True) -> bytes:
    """A G4 TIFF, one page of each size: white with a few black lines (so it has content)."""
    out = io.BytesIO()
    pages = []
    for width, height in sizes:
        page = Image.new("1", (width, height), 1)
        if lines:
            for y in range(0, min(height, 2000), 97):
                page.paste(0, (0, y, width, y + 2))
        pages.append(page)
    pages[0].save(
        out,
        format="TIFF",
        save_all=True,
        append_images=pages[1:],
        compression="group4",
        dpi=(204, 196),
    )
    return out.getvalue()


@dataclass(frozen=True)
class Samples:
    good: bytes
    g3: bytes
    huge_page: bytes  # decodes to (side x side) bytes if nobody checks first

    @classmethod
    def make(cls, huge_side: int) -> Samples:
        g3 = io.BytesIO()
        Image.new("1", (1728, 1146), 1).save(g3, format="TIFF", compression="group3")
        return cls(
            good=g4_tiff((1728, 2292), (1728, 2292)),
            g3=g3.getvalue(),
            huge_page=g4_tiff((huge_side, huge_side), lines=False),
        )


# --- Probes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    kind: str
    raw: bytes
    # Half-close after sending: the server sees the body end early.
    cut: bool = False


def request(
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    length: int | None = None,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if length is not None or body:
        lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    stamp, nonce = str(int(time.time())), secrets.token_hex(16)
    return {
        TIMESTAMP_HEADER: stamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: sign(body, secret, stamp, nonce),
    }


def multipart(fields: dict[str, bytes], boundary: str = "") -> tuple[bytes, str]:
    boundary = boundary or "fz-" + secrets.token_hex(8)
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'.encode()
        out += b'; filename="f.tif"\r\n\r\n' if name == "fax" else b"\r\n\r\n"
        out += value + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


ODD_TEXT = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "²",
    "9" * 60,
    "-1",
    "\x00",
    "../../etc/passwd",
    "٣٣",
    "NaN",
    "1e400",
    "",
    "ü" * 3000,
]


class Fuzzer:
    def __init__(
        self, routes: list[tuple[str, str]], max_bytes: int, rng: random.Random, samples: Samples
    ) -> None:
        self.rng = rng
        self.routes = routes
        self.max_bytes = max_bytes
        self.samples = samples
        self.kinds: list[Callable[[], Probe]] = [
            self.random_method,
            self.unknown_path,
            self.garbage_line,
            self.huge_header,
            self.bad_chunked,
            self.fax_unsigned,
            self.fax_wrong_signature,
            self.fax_odd_headers,
            self.fax_signed_malformed,
            self.fax_signed_tiff,
            self.fax_signed_tiff,  # twice as often: the expensive path
            self.fax_truncated,
            self.fax_oversized,
            self.mm7_random,
            self.mm7_report,
            self.mm7_oversized,
            self.health,
        ]

    def probe(self) -> Probe:
        return self.rng.choice(self.kinds)()

    def _bytes(self, most: int) -> bytes:
        return self.rng.randbytes(self.rng.randint(0, most))

    def _text(self) -> str:
        return self.rng.choice(ODD_TEXT) if self.rng.random() < 0.5 else secrets.token_hex(4)

    def random_method(self) -> Probe:
        method = self.rng.choice(
            ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO", "get"]
        )
        _, path = self.rng.choice(self.routes)
        query = self.rng.choice(["", "?a=1", "?" + "x" * 5000, "?%ff%00=%zz", "#frag"])
        return Probe("random-method", request(method, path + query, body=self._bytes(2000)))

    def unknown_path(self) -> Probe:
        path = self.rng.choice(["/", "/hooks", "/hooks/fax/../mm7", "/%00", "//healthz", "/ä"])
        return Probe("unknown-path", request("GET", path + secrets.token_hex(2)))

    def garbage_line(self) -> Probe:
        return Probe("garbage", self._bytes(3000) + b"\r\n\r\n")

    def huge_header(self) -> Probe:
        _, path = self.rng.choice(self.routes)
        if self.rng.random() < 0.5:
            headers = {"X-Big": "a" * self.rng.randint(8_000, 200_000)}
        else:
            headers = {f"X-H{n}": "v" for n in range(self.rng.randint(100, 2_000))}
        return Probe("huge-header", request("POST", path, headers))

    def bad_chunked(self) -> Probe:
        _, path = self.rng.choice(self.routes)
        head = request("POST", path, {"Transfer-Encoding": "chunked", **signed(b"")})
        chunks = self.rng.choice(
            [b"zz\r\nabc\r\n0\r\n\r\n", b"ffffffffffffffffffff\r\n", b"5\r\nab"]
        )
        return Probe("bad-chunked", head + chunks, cut=True)

    def fax_unsigned(self) -> Probe:
        body = self._bytes(50_000)
        return Probe("fax-unsigned", request("POST", "/hooks/fax", body=body))

    def fax_wrong_signature(self) -> Probe:
        body, kind = multipart({"fax": self.samples.good})
        headers = {**signed(body, secret="not-the-secret"), "Content-Type": kind}
        return Probe("fax-wrong-signature", request("POST", "/hooks/fax", headers, body))

    def fax_odd_headers(self) -> Probe:
        body = self._bytes(1000)
        headers = {
            TIMESTAMP_HEADER: self.rng.choice([str(int(time.time())), "9" * 40, "٣٣", "", "-5"]),
            NONCE_HEADER: self.rng.choice([secrets.token_hex(16), "x", "ü" * 20, "a" * 500]),
            SIGNATURE_HEADER: self.rng.choice(["sha256=" + "0" * 64, "md5=1", "sha256=zz", ""]),
        }
        return Probe("fax-odd-headers", request("POST", "/hooks/fax", headers, body))

    def fax_signed_malformed(self) -> Probe:
        choice = self.rng.randrange(6)
        kind = "multipart/form-data; boundary=b"
        if choice == 0:
            body = self._bytes(20_000)
        elif choice == 1:  # cut in the middle of a part: no close delimiter
            body, kind = multipart({"commid": b"1", "fax": self.samples.good})
            body = body[: self.rng.randint(0, len(body) - 1)]
        elif choice == 2:
            body, kind = multipart({"commid": b"1", "caller": b"2"})
        elif choice == 3:
            body, kind = multipart({f"f{n}": b"x" for n in range(self.rng.randint(50, 3000))})
        elif choice == 4:
            body = b"--b\r\nContent-Disposition: form-data; name=fax" + b"x" * 20_000 + b"\r\n"
        else:
            body, kind = (
                b"--b\r\n\r\n--b--\r\n",
                self.rng.choice(
                    [
                        "multipart/form-data",
                        "text/plain",
                        "multipart/form-data; boundary=" + "b" * 300,
                    ]
                ),
            )
        headers = {**signed(body), "Content-Type": kind}
        return Probe("fax-signed-malformed", request("POST", "/hooks/fax", headers, body))

    def _tiff(self) -> bytes:
        roll = self.rng.random()
        if roll < 0.25:
            return self.samples.huge_page
        if roll < 0.4:
            return self.samples.g3
        tiff = bytearray(self.samples.good)
        if roll < 0.75:  # flip bytes, mostly in the header and directories
            for _ in range(self.rng.randint(1, 12)):
                spot = self.rng.randrange(
                    min(len(tiff), 400) if self.rng.random() < 0.7 else len(tiff)
                )
                tiff[spot] = self.rng.randrange(256)
        return bytes(tiff)

    def _fields(self) -> dict[str, str]:
        """The hook's fields: as HylaFAX gives them, or odd ones."""
        if self.rng.random() < 0.5:
            return {
                "commid": f"{self.rng.randrange(10**9):09d}",
                "called": self.rng.choice([DDI, "+30 210 000 1", "2109999999", ""]),
                "caller": "+302101234567",
                "pages": "2",
                "received_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        names = ["commid", "called", "caller", "caller_name", "pages", "received_at", "error"]
        return {name: self._text() for name in names}

    def fax_signed_tiff(self) -> Probe:
        fields = {k: v.encode("utf-8", "surrogateescape") for k, v in self._fields().items()}
        fields["fax"] = self._tiff()
        body, kind = multipart(fields)
        headers = {**signed(body), "Content-Type": kind}
        return Probe("fax-signed-tiff", request("POST", "/hooks/fax", headers, body))

    def fax_truncated(self) -> Probe:
        body, kind = multipart({"commid": b"7", "fax": self.samples.good})
        headers = {**signed(body), "Content-Type": kind}
        raw = request("POST", "/hooks/fax", headers, body[: len(body) // 2], length=len(body))
        return Probe("fax-truncated", raw, cut=True)

    def fax_oversized(self) -> Probe:
        if self.rng.random() < 0.5:  # said up front
            headers = {**signed(b""), "Content-Type": "multipart/form-data; boundary=b"}
            raw = request("POST", "/hooks/fax", headers, b"x", length=self.max_bytes + 1)
            return Probe("fax-oversized-declared", raw)
        body = b"\0" * (self.max_bytes + 1)
        head = request("POST", "/hooks/fax", {**signed(body), "Transfer-Encoding": "chunked"})
        chunked = b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)
        return Probe("fax-oversized-streamed", head + chunked)

    def mm7_random(self) -> Probe:
        kind = self.rng.choice(["text/xml", "multipart/related; boundary=x", "", "a/b; c=\x01"])
        headers = {"Content-Type": kind, "Authorization": self._mm7_auth()}
        return Probe("mm7-random", request("POST", "/hooks/mm7", headers, self._bytes(5000)))

    def mm7_report(self) -> Probe:
        values = [self._text() for _ in range(4)]
        xml = (
            '<?xml version="1.0"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/'
            'envelope/"><env:Header><mm7:TransactionID xmlns:mm7="http://www.3gpp.org/ftp/'
            f'Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4">{values[0]}</mm7:'
            'TransactionID></env:Header><env:Body><DeliveryReportReq xmlns="http://www.3gpp'
            '.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"><MM7Version>6.8.0'
            f"</MM7Version><MessageID>{values[1]}</MessageID><Recipient><Number>{values[2]}"
            f"</Number></Recipient><Date>{values[3]}</Date><MMStatus>"
            f"{self.rng.choice(['Retrieved', 'Rejected', 'x', ''])}</MMStatus>"
            "</DeliveryReportReq></env:Body></env:Envelope>"
        ).encode("utf-8", "surrogateescape")
        if self.rng.random() < 0.3:
            xml = xml[: self.rng.randrange(len(xml))]
        headers = {"Content-Type": 'text/xml; charset="utf-8"', "Authorization": self._mm7_auth()}
        return Probe("mm7-report", request("POST", "/hooks/mm7", headers, xml))

    def _mm7_auth(self) -> str:
        return self.rng.choice([MM7_AUTH, MM7_AUTH, "", "Basic !!!", "Basic " + "A" * 5000])

    def mm7_oversized(self) -> Probe:
        headers = {"Content-Type": "text/xml", "Authorization": MM7_AUTH}
        return Probe("mm7-oversized", request("POST", "/hooks/mm7", headers, b"<" * (2 << 20)))

    def health(self) -> Probe:
        return Probe("health", request(self.rng.choice(["GET", "HEAD"]), "/healthz"))


async def send(port: int, probe: Probe) -> int | None:
    """The answer's status, or None when the server closed without one (as it may for
    framing it cannot read)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(probe.raw)
            await writer.drain()
            if probe.cut and writer.can_write_eof():
                writer.write_eof()
        line = await asyncio.wait_for(reader.readline(), ANSWER_TIMEOUT)
    except (ConnectionError, TimeoutError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    parts = line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


@dataclass
class Tally:
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    kind_status: Counter[str] = field(default_factory=Counter)
    five_hundreds: list[str] = field(default_factory=list)

    def add(self, probe: Probe, status: int | None) -> None:
        answer = str(status) if status else "closed"
        self.requests += 1
        self.statuses[answer] += 1
        self.by_kind[probe.kind] += 1
        self.kind_status[f"{probe.kind} {answer}"] += 1
        if status == 500:
            self.five_hundreds.append(probe.kind)


async def fuzz(
    fuzzer: Fuzzer, port: int, concurrency: int, count: int | None, seconds: float | None
) -> Tally:
    """`concurrency` clients sending probes until `count` were sent or `seconds` passed."""
    tally = Tally()
    deadline = time.monotonic() + seconds if seconds is not None else None
    issued = 0

    def more() -> bool:
        nonlocal issued
        if count is not None and issued >= count:
            return False
        if deadline is not None and time.monotonic() >= deadline:
            return False
        issued += 1
        return True

    async def client() -> None:
        while more():
            probe = fuzzer.probe()
            tally.add(probe, await send(port, probe))

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return tally


# --- The bench: gateway in a child process ------------------------------------------------


async def child_serve(workdir: Path) -> None:
    """--serve: announce the port and routes on stdout, serve until stdin closes, then print
    the exceptions logged."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    async with serve_gateway(workdir) as served:
        hello = {
            "port": served.port,
            "routes": served.routes,
            "max_bytes": served.settings.fax.max_bytes,
        }
        print(json.dumps(hello), flush=True)
        await asyncio.to_thread(sys.stdin.read)
        seen = {"statuses": served.log.statuses, "exceptions": served.log.exceptions}
        print(json.dumps(seen), flush=True)


async def bench(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="http-fuzz-") as tmp:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve",
            tmp,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL if not args.verbose else None,
        )
        assert child.stdin is not None and child.stdout is not None
        hello = json.loads(await child.stdout.readline())
        routes = [(method, path) for method, path in hello["routes"]]
        print(f"routes: {', '.join(f'{m} {p}' for m, p in routes)}")
        samples = await asyncio.to_thread(Samples.make, args.huge_side)
        fuzzer = Fuzzer(routes, hello["max_bytes"], random.Random(args.seed), samples)
        before = rss_mb(child.pid)
        started = time.monotonic()
        tally = await fuzz(fuzzer, hello["port"], args.concurrency, None, args.seconds)
        elapsed = time.monotonic() - started
        after = rss_mb(child.pid)
        child.stdin.close()
        seen = json.loads(await child.stdout.readline())
        await child.wait()
    server = Counter({int(k): n for k, n in seen["statuses"].items()})
    report(tally, server, seen["exceptions"], (before, after), elapsed)
    ok = not tally.five_hundreds and not server[500] and not seen["exceptions"]
    return 0 if ok and after < args.rss_limit else 1


def report(
    tally: Tally,
    server: Counter[int],
    exceptions: list[str],
    rss: tuple[float, float],
    elapsed: float,
) -> None:
    print(f"requests: {tally.requests} in {elapsed:.1f} s")
    print("by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(tally.by_kind.items())))
    print(
        "by kind and answer: "
        + ", ".join(f"{k} x{n}" for k, n in sorted(tally.kind_status.items()))
    )
    print("answers received: " + ", ".join(f"{k} x{n}" for k, n in sorted(tally.statuses.items())))
    print("answers the gateway gave: " + ", ".join(f"{k} x{n}" for k, n in sorted(server.items())))
    print(f"500s: {server[500]} given, {len(tally.five_hundreds)} received")
    print(f"exceptions logged by the gateway: {len(exceptions)}")
    for sample in exceptions[:5]:
        print(f"  {sample}")
    print(f"gateway RSS: {rss[0]:.0f} MB before, {rss[1]:.0f} MB after")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4)))
    parser.add_argument("--rss-limit", type=float, default=300.0, help="MB")
    parser.add_argument("--huge-side", type=int, default=12_000, help="huge page: side, pixels")
    parser.add_argument("--verbose", action="store_true", help="show the gateway's log")
    parser.add_argument("--serve", metavar="WORKDIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(child_serve(Path(args.serve)))
        return 0
    print(f"seed {args.seed}")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
