"""A private PostgreSQL cluster on loopback for the tests: initdb into a scratch folder,
pg_ctl start on a free port, stop at the end. Nothing of the machine's own PostgreSQL is
used or changed; the server binaries come from Debian's packages (`make pgdeps`).

    python -m tests.pg_cluster start DIR   # prints the URL of its `postgres` database
    python -m tests.pg_cluster stop DIR

The test suite takes its server from FRONTDESK_TEST_PG_URL when set (`.ci/run` starts one
this way), else starts its own for the session. `FRONTDESK_TEST_DB=postgres` runs the
integration tests on it instead of SQLite: each test gets its own database, a copy of
one migrated template (CREATE DATABASE ... TEMPLATE), as each SQLite test gets a file.
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

PG_URL_ENV = "FRONTDESK_TEST_PG_URL"
BACKEND_ENV = "FRONTDESK_TEST_DB"  # "sqlite" (default) or "postgres"
REQUIRED_ENV = "FRONTDESK_PG_REQUIRED"  # CI: a missing PostgreSQL fails instead of skipping
# The migrated template the test databases are copied from: one per test process, as
# several runs (or helpers) may share one server and each migrates its own tree.
TEMPLATE = f"frontdesk_template_{os.getpid()}"
T = TypeVar("T")


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl: Debian keeps them out of PATH, per major version."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user() -> list[str]:
    """initdb and postgres refuse to run as root: run them as `postgres` when we are root."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def start(folder: Path) -> str:
    """A new cluster in `folder`, started; returns the URL of its `postgres` database."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL server binaries not found: run `make pgdeps`")
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    data, port = folder / "data", _free_port()
    run = _as_server_user()
    subprocess.run(
        [
            *run,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        ],
        check=True,
        capture_output=True,
    )
    serve(folder, port)
    return f"postgres://postgres@127.0.0.1:{port}/postgres"


def serve(folder: Path, port: int) -> None:
    """Start the cluster in `folder` on `port` (again, after a stop: the same URL)."""
    bin_dir = binaries()
    assert bin_dir is not None
    data = folder / "data"
    # Durability is not what these tests are about: fsync off makes CREATE DATABASE cheap.
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
    )
    subprocess.run(
        [
            *_as_server_user(),
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        capture_output=True,
    )


def stop(folder: Path, mode: str = "immediate") -> None:
    """Stop the cluster in `folder` (mode: pg_ctl's smart, fast or immediate)."""
    bin_dir = binaries()
    if bin_dir is None or not (folder / "data").exists():
        return
    subprocess.run(
        [
            *_as_server_user(),
            str(bin_dir / "pg_ctl"),
            "-D",
            str(folder / "data"),
            "-m",
            mode,
            "-w",
            "stop",
        ],
        check=False,
        capture_output=True,
    )


def backend() -> str:
    return os.environ.get(BACKEND_ENV, "sqlite")


def on_postgres() -> bool:
    return backend() == "postgres"


def url_of(server: str, database: str) -> str:
    return server.rsplit("/", 1)[0] + "/" + database


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """A coroutine to its end from sync code, even inside a running loop (a thread)."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


async def _execute(server: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def make_template(server: str) -> None:
    """The migrated template every test database is copied from (made once per server)."""
    from models.database import migrate

    run_sync(_execute(server, f"DROP DATABASE IF EXISTS {TEMPLATE}", f"CREATE DATABASE {TEMPLATE}"))
    run_sync(migrate(url_of(server, TEMPLATE)))


def fresh_database(server: str, hint: str) -> str:
    """A new database copied from the template, named after `hint` (a test's path)."""
    name = "t_" + hashlib.sha1(hint.encode()).hexdigest()[:16]
    run_sync(
        _execute(
            server,
            f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
            f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}",
        )
    )
    return url_of(server, name)


def empty_database(path: Path) -> str:
    """A new database with no tables at all, named after `path`: for a test that migrates
    an old schema itself (the template is at the head already)."""
    server = os.environ.get(PG_URL_ENV)
    if not server:
        raise RuntimeError("no PostgreSQL server: the pg_server fixture starts one")
    name = "e_" + hashlib.sha1(str(path).encode()).hexdigest()[:16]
    run_sync(
        _execute(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}")
    )
    return url_of(server, name)


_templates: set[str] = set()
_made: dict[str, str] = {}  # path -> URL: the same path names the same database again


def database_url_for(path: Path) -> str:
    """The database a test names by a file path: that SQLite file, or (FRONTDESK_TEST_DB=
    postgres) a fresh migrated PostgreSQL database on the session's server."""
    if not on_postgres():
        return f"sqlite://{path}"
    return postgres_url_for(path)


def postgres_url_for(path: Path) -> str:
    """A fresh migrated PostgreSQL database named after `path`, on the session's server
    (the pg_server fixture); the same path names the same database again."""
    server = os.environ.get(PG_URL_ENV)
    if not server:
        raise RuntimeError("no PostgreSQL server: the pg_server fixture starts one")
    if server not in _templates:
        make_template(server)
        _templates.add(server)
    key = f"{server} {path}"
    if key not in _made:
        _made[key] = fresh_database(server, str(path))
    return _made[key]


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    folder = Path(argv[1]).resolve()
    if argv[0] == "start":
        print(start(folder))
    else:
        stop(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
